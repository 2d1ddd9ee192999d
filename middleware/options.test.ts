import { ConfigError } from '../src/core/errors';
import { createMemoryStore } from '../src/core/stores/memory';
import { DEFAULT_BYPASS_COOKIES, resolveMiddlewareOptions } from './options';
import type { MiddlewareOptions } from './options';

const MiB = 1024 * 1024;

describe('resolveMiddlewareOptions defaults', () => {
  it('matches the README table', () => {
    const o = resolveMiddlewareOptions();
    expect(o.memcached).toEqual([]);
    expect(o.store).toBeUndefined();
    expect(o.keyPrefix).toBe('');
    expect(o.format).toBe('envelope');
    expect(o.request.cacheGet && o.request.cacheHead).toBe(true);
    // Any cookie but analytics ones bypasses by default (an unknown cookie may be a session).
    expect(o.request.bypassAnyCookie).toBe(true);
    expect(o.request.ignoreCookies.names.has('_gid')).toBe(true);
    expect(resolveMiddlewareOptions({ bypassCookies: DEFAULT_BYPASS_COOKIES }).request.bypassCookies).toContain('connect.sid');
    expect(o.maxEntryBytes).toBe(MiB);
    expect(o.policy.defaultTtlSeconds).toBe(0);
    expect([...o.policy.statuses]).toEqual([200, 203, 204, 300, 301, 308, 404, 410]);
    expect(o.memcachedTimeoutMs).toBe(100);
    expect(o.memcachedRetryAfterMs).toBe(2000);
    expect(o.memoryBytes).toBe(64 * MiB);
    expect(o.l1TtlSeconds).toBe(2);
    expect(o.defaultContentType).toBe('text/html; charset=utf-8');
    expect(o.gzipFlag).toBe(2);
    expect(o.coalesce).toBe(true);
    expect(o.lockTimeoutMs).toBe(10_000);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('uses a 32 MiB L1 in front of memcached, and parses the node list', () => {
    const o = resolveMiddlewareOptions({ memcached: '127.0.0.1:11211, 127.0.0.1:11212', ttl: 300 });
    expect(o.memcached.map((s) => s.name)).toEqual(['127.0.0.1:11211', '127.0.0.1:11212']);
    expect(o.memoryBytes).toBe(32 * MiB);
    expect(o.policy.defaultTtlSeconds).toBe(300);
    expect(resolveMiddlewareOptions({ memcached: ['127.0.0.1:11211'], memoryBytes: 0 }).memoryBytes).toBe(0);
  });

  it('splits bypassPaths into prefixes and stateless RegExps', () => {
    const o = resolveMiddlewareOptions({ bypassPaths: ['/admin', /\/preview$/g], bypassCookies: 'all', methods: ['GET'] });
    expect(o.request.bypassPathPrefixes).toEqual(['/admin']);
    const re = o.request.bypassPathPatterns[0]!;
    expect(re.flags).toBe('');
    expect(re.test('/a/preview') && re.test('/a/preview')).toBe(true);
    expect(o.request.bypassAnyCookie).toBe(true);
    expect(o.request.cacheHead).toBe(false);
  });

  it('does not mutate the caller object', () => {
    const input = { ttl: 5, bypassPaths: ['/x'] };
    resolveMiddlewareOptions(input);
    expect(input).toEqual({ ttl: 5, bypassPaths: ['/x'] });
  });
});

describe('resolveMiddlewareOptions rejects bad input, naming the option', () => {
  it.each<[string, unknown, RegExp]>([
    ['ttl', -1, /^ttl must be an integer from 0 to 31536000, got -1$/],
    ['ttl', 'soon', /^ttl must be an integer/],
    ['format', 'json', /^format must be one of 'envelope', 'raw', got 'json'$/],
    ['maxEntryBytes', '2g', /^maxEntryBytes must be a byte size from 1024 to 134217728/],
    ['maxEntryBytes', 'big', /^maxEntryBytes must be a byte size/],
    ['memcached', 'localhost', /^memcached: 'localhost' is not host:port/],
    ['memcachedTimeoutMs', 0, /^memcachedTimeoutMs must be an integer from 1 to 60000, got 0$/],
    ['methods', ['GET', 'POST'], /^methods must list only 'GET' and 'HEAD'/],
    ['bypassCookies', 'sid', /^bypassCookies must be a list of cookie names or 'all', got 'sid'$/],
    ['bypassCookies', ['bad name'], /^bypassCookies must hold cookie names/],
    ['bypassPaths', ['admin'], /^bypassPaths items must be path prefixes starting with '\/' or RegExps, got 'admin'$/],
    ['statuses', [200, 99], /^statuses must be an integer from 200 to 599, got 99$/],
    ['memoryBytes', 1000, /^memoryBytes must be a byte size from 1024/],
    ['gzipFlag', 0x100, /^gzipFlag must not use the envelope bit/],
    ['coalesce', 'maybe', /^coalesce must be true or false, got 'maybe'$/],
    ['keyPrefix', 42, /^keyPrefix must be a string, got 42$/],
    ['store', { get: 1 }, /^store must be a CacheStore/],
  ])('%s = %j', (name, value, message) => {
    const input = { [name]: value } as MiddlewareOptions;
    expect(() => resolveMiddlewareOptions(input)).toThrow(ConfigError);
    expect(() => resolveMiddlewareOptions(input)).toThrow(message);
  });

  it('rejects unknown keys and suggests the near one', () => {
    expect(() => resolveMiddlewareOptions({ keyprefx: 'a' } as MiddlewareOptions)).toThrow('unknown option keyprefx (did you mean keyPrefix?)');
  });

  it('refuses memcached and store together', () => {
    const store = createMemoryStore({ maxBytes: MiB });
    expect(() => resolveMiddlewareOptions({ memcached: '127.0.0.1:11211', store })).toThrow(/memcached and store are exclusive/);
  });

  it('refuses an embedded store smaller than one page', () => {
    expect(() => resolveMiddlewareOptions({ memoryBytes: '512k', maxEntryBytes: '1m' })).toThrow(
      'memoryBytes (524288) must be at least maxEntryBytes (1048576) for the in-process store',
    );
  });
});
