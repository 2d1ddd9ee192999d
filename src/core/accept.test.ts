import { acceptsEncoding } from './accept';

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
