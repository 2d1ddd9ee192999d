import { ConfigError } from '../core/errors';
import { resolveEdgeOptions } from './options';

describe('resolveEdgeOptions', () => {
  it('fills the documented defaults', () => {
    const o = resolveEdgeOptions({ origin: 'http://127.0.0.1:3000' });
    expect(o.port).toBe(8080);
    expect(o.host).toBe('0.0.0.0');
    expect(o.origins.map((x) => x.base)).toEqual(['http://127.0.0.1:3000']);
    expect(o.store.memcached).toEqual([]);
    expect(o.store.memoryBytes).toBe(256 * 1024 * 1024);
    expect(o.store.l1TtlSeconds).toBe(2);
    expect(o.workers).toBe(1);
    expect(o.adminPort).toBeUndefined();
    expect(o.adminHost).toBe('127.0.0.1');
    expect(o.keyPrefix).toBe('');
    expect(o.format).toBe('envelope');
    expect(o.maxEntryBytes).toBe(8 * 1024 * 1024);
    expect(o.store.memcachedItemBytes).toBe(1024 * 1024);
    expect(o.policy.defaultTtlSeconds).toBe(120);
    expect(o.policy.defaultStaleIfErrorSeconds).toBe(3600);
    expect(o.compression).toBe('gzip');
    expect(o.hosts).toBeUndefined();
    expect(o.keepAliveTimeoutMs).toBe(5000);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('sizes L1 smaller in front of memcached', () => {
    expect(resolveEdgeOptions({ origin: 'http://a:1', memcached: '127.0.0.1:11211' }).store.memoryBytes).toBe(64 * 1024 * 1024);
  });

  it.each([
    [{}, /origin is required/],
    [{ origin: 'http://a:1', port: '-1' }, /port must be an integer from 0 to 65535, got '-1'/],
    [{ origin: 'http://a:1', memcached: 'a:1,a:1' }, /listed twice/],
    [{ origin: 'http://a:1', maxEntryBytes: '10m', memoryBytes: '5m' }, /memoryBytes .* at least maxEntryBytes/],
    [{ origin: 'http://a:1', memcachedItemBytes: '1k' }, /memcachedItemBytes must be/],
    [{ origin: 'http://a:1', memcachedItemBytes: 'big' }, /memcachedItemBytes .*got 'big'/],
    [{ origin: 'http://a:1', format: 'raw', compression: 'br' }, /compression 'br' needs format 'envelope'/],
    [{ origin: 'http://a:1', accessLogSample: 2 }, /accessLogSample must be a number from 0 to 1/],
    [{ origin: 'http://a:1', originHealthPath: 'health' }, /originHealthPath must be a path starting with '\/'/],
    [{ origin: 'http://a:1', ttlSecond: 1 } as never, /unknown option ttlSecond/],
    [{ origin: 'http://a:1', coalesce: 'maybe' }, /coalesce must be true or false/],
    [{ origin: 'http://a:1', keepAliveTimeoutMs: '0' }, /keepAliveTimeoutMs must be an integer from 1 to 3600000/],
  ])('rejects %j', (input, message) => {
    expect(() => resolveEdgeOptions(input)).toThrow(ConfigError);
    expect(() => resolveEdgeOptions(input)).toThrow(message);
  });

  // Bug: the edge took a gzipFlag with the envelope bit (0x100), so with format 'raw' every gzip page was
  // stored flagged as an envelope, failed to decode on its first read and was deleted. The middleware refused it.
  it.each([256, '258', 0x1102])('refuses gzipFlag %j, which sets the envelope bit (raw pages were deleted on their first read)', (gzipFlag) => {
    const input = { origin: 'http://a:1', format: 'raw', gzipFlag };
    expect(() => resolveEdgeOptions(input)).toThrow(ConfigError);
    expect(() => resolveEdgeOptions(input)).toThrow(/^gzipFlag must not use the envelope bit 0x100 \(raw entries would read as envelopes\), got \d+$/);
  });

  it('takes a gzipFlag clear of the envelope bit', () => {
    expect(resolveEdgeOptions({ origin: 'http://a:1', format: 'raw', gzipFlag: 4 }).gzipFlag).toBe(4);
    expect(resolveEdgeOptions({ origin: 'http://a:1', gzipFlag: '0' }).gzipFlag).toBe(0);
  });

  it('does not change the caller’s object', () => {
    const input = { origin: ['http://a:1', 'http://b:2'], hosts: 'Example.com,www.example.com' };
    const copy = JSON.parse(JSON.stringify(input)) as unknown;
    const o = resolveEdgeOptions(input);
    expect(input).toEqual(copy);
    expect([...(o.hosts ?? [])]).toEqual(['example.com', 'www.example.com']);
  });
});
