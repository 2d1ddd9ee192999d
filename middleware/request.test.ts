import { acceptsEncoding, hasAnyCookie, hasCookie } from './request';

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

describe('acceptsEncoding (RFC 9110 §12.5.3)', () => {
  it.each<[string | undefined, string, boolean]>([
    [undefined, 'gzip', false],
    ['', 'gzip', false],
    ['gzip', 'gzip', true],
    ['GZIP', 'gzip', true],
    ['deflate, gzip;q=0.8, br', 'gzip', true],
    ['gzip;q=0', 'gzip', false],
    ['gzip; q=0.000', 'gzip', false],
    ['gzip;q=0.001', 'gzip', true],
    ['*', 'br', true],
    ['*;q=0', 'br', false],
    ['*, gzip;q=0', 'gzip', false],
    ['identity', 'gzip', false],
    ['x-gzip', 'gzip', true],
    ['gzipx', 'gzip', false],
    ['br', 'gzip', false],
  ])('%j accepts %s: %s', (header, coding, want) => {
    expect(acceptsEncoding(header, coding)).toBe(want);
  });
});
