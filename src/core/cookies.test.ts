import { DEFAULT_IGNORED_COOKIES, hasAnyCookie, hasCookie, ignoredCookies, onlyIgnoredCookies } from './cookies';

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

describe('hasCookie', () => {
  it.each<[string, string, boolean]>([
    ['connect.sid=abc', 'connect.sid', true],
    ['a=1; connect.sid=abc', 'connect.sid', true],
    ['a=1;connect.sid=abc', 'connect.sid', true],
    ['a=1; connect.sid =abc', 'connect.sid', true],
    ['xconnect.sid=abc', 'connect.sid', false],
    ['connect.sidx=abc', 'connect.sid', false],
    ['a=connect.sid', 'connect.sid', false],
    ['theme=dark; sid_pref=1', 'sid', false],
    ['theme=dark; sid=1', 'sid', true],
    ['', 'sid', false],
  ])('%j has %s: %s', (header, name, want) => {
    expect(hasCookie(header, name)).toBe(want);
  });

  it('checks a list', () => {
    expect(hasAnyCookie('theme=dark; session=1', ['sid', 'session'])).toBe(true);
    expect(hasAnyCookie('theme=dark', ['sid', 'session'])).toBe(false);
  });
});
