import { ConfigError } from './errors';
import { byteSize, integerIn, oneOf, port, rejectUnknownKeys, stringList } from './options';

describe('shared validators', () => {
  it('parses integers from numbers and strings', () => {
    expect(integerIn('x', '42', 0, 100)).toBe(42);
    expect(integerIn('x', 7, 0, 100)).toBe(7);
  });

  it.each([['abc'], ['1.5'], [1.5], [''], [null], [-1], [101]])('rejects %j with a message naming the option', (v) => {
    expect(() => integerIn('memcached.timeoutMs', v, 0, 100)).toThrow(ConfigError);
    expect(() => integerIn('memcached.timeoutMs', v, 0, 100)).toThrow(/^memcached\.timeoutMs must be an integer from 0 to 100, got /);
  });

  it('rejects ports out of range', () => {
    expect(() => port('--port', '70000')).toThrow("--port must be an integer from 1 to 65535, got '70000'");
    expect(port('--port', '8080')).toBe(8080);
  });

  it.each([
    [1048576, 1048576],
    ['1m', 1048576],
    ['512k', 524288],
    ['64 MiB', 67108864],
    ['100', 100],
  ])('byteSize(%j) = %d', (v, want) => {
    expect(byteSize('maxEntryBytes', v)).toBe(want);
  });

  it('rejects bad sizes', () => {
    expect(() => byteSize('maxEntryBytes', '1q')).toThrow(/maxEntryBytes must be a byte size/);
  });

  it('enums list the allowed values', () => {
    expect(() => oneOf('format', 'json', ['envelope', 'raw'])).toThrow("format must be one of 'envelope', 'raw', got 'json'");
  });

  it('lists split on commas', () => {
    expect(stringList('origin', ['http://a, http://b', 'http://c'])).toEqual(['http://a', 'http://b', 'http://c']);
  });

  it('suggests the nearest known key for a typo', () => {
    expect(() => rejectUnknownKeys('', { ttlSecond: 1 }, ['ttlSeconds', 'memcached'])).toThrow(
      'unknown option ttlSecond (did you mean ttlSeconds?)',
    );
    expect(() => rejectUnknownKeys('', { zzz: 1 }, ['ttlSeconds'])).toThrow(/^unknown option zzz$/);
  });
});
