import { hasAnyCookie, hasCookie } from './request';

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
