import { DEFAULT_IGNORED_COOKIES, ignoredCookies, onlyIgnoredCookies } from './cookies';

describe('onlyIgnoredCookies', () => {
  const ignored = ignoredCookies(DEFAULT_IGNORED_COOKIES);
  it.each<[string, boolean]>([
    ['_ga=GA1.2.3', true],
    ['_ga=1; _gid=2; _ga_XYZ=3', true],
    ['_gid=2;__utma=1', true],
    ['', true],
    ['sid=abc', false],
    ['_ga=1; sid=abc', false],
    ['theme=dark', false],
    ['_gidx=1', false],
    ['jwt=eyJ', false],
  ])('%j -> %s', (header, want) => {
    expect(onlyIgnoredCookies(header, ignored)).toBe(want);
  });
});
