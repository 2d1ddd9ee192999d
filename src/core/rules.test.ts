// Rule compilation (one ConfigError per kind of mistake, naming the rule and field), matching order, the
// URI normaliser, the device classifier and the per-status policies: pure logic, no I/O.
import { ConfigError } from './errors';
import { normalizeRequestUri } from './key';
import type { StorePolicyOptions } from './policy';
import { resolveRequestPolicy } from './request-policy';
import { compileRules, deviceClass, keyVariant, matchRule, nginxIncompatibility, ruleTags, storePolicyFor, withRuleHeaders } from './rules';
import { autoTags, prefixPurgeTag, sitePurgeTag } from './tags';

const BASE = {
  request: resolveRequestPolicy({}, 'strip'),
  policy: { defaultTtlSeconds: 120, defaultStaleWhileRevalidateSeconds: 0, defaultStaleIfErrorSeconds: 3600, statuses: new Set([200, 404]), maxTtlSeconds: 31536000 } as StorePolicyOptions,
};

describe('compileRules refuses, naming the rule and field', () => {
  it.each<[string, unknown, RegExp]>([
    ['not a list', { host: 'a.com' }, /^rules must be a list of rules/],
    ['a rule that is not an object', [1], /^rules\[0\] must be an object/],
    ['an unknown field, with a hint', [{}, { tll: 5 }], /^unknown option rules\[1\]\.tll \(did you mean rules\[1\]\.ttl\?\)/],
    ['a negative ttl', [{ ttl: -1 }], /^rules\[0\]\.ttl must be/],
    ['a host with a port', [{ host: 'a.com:80' }], /^rules\[0\]\.host must be a host name without port/],
    ['a wildcard in the middle of a host', [{ host: 'a.*.com' }], /^rules\[0\]\.host must be/],
    ['a path without a leading slash', [{ path: 'blog' }], /^rules\[0\]\.path must be a path prefix or glob starting with '\/'/],
    ['a path with a query', [{ path: '/a?b' }], /^rules\[0\]\.path must be/],
    ['a bad ttlByStatus key', [{ ttlByStatus: { '6xx': 5 } }], /^rules\[0\]\.ttlByStatus\.6xx must be keyed by a status code/],
    ['a bad ttlByStatus value', [{ ttlByStatus: { '404': 'soon' } }], /^rules\[0\]\.ttlByStatus\.404 must be/],
    ['a status out of range', [{ cacheStatuses: [100] }], /^rules\[0\]\.cacheStatuses must be/],
    ['a cookie name with a space', [{ cookie: 'a b' }], /^rules\[0\]\.cookie must be a cookie name/],
    ['a header name with a colon', [{ header: 'x:y' }], /^rules\[0\]\.header must be an HTTP header name/],
    ['a bypass that also caches', [{ bypass: true, ttl: 5 }], /^rules\[0\]\.ttl has no effect with bypass: true/],
    ['bypass not a boolean', [{ bypass: 5 }], /^rules\[0\]\.bypass must be/],
    ['bypassCookies not a list', [{ bypassCookies: 5 }], /^rules\[0\]\.bypassCookies must be a list of cookie names/],
    ['a tag with an unknown placeholder', [{ tags: ['{path}'] }], /^rules\[0\]\.tags\[0\] must be a tag with \{host\} or \{segment:N\}/],
    ['a tag with a space', [{ tags: ['a b'] }], /^rules\[0\]\.tags\[0\] must be a tag without spaces/],
    ['an unknown key option', [{ key: { sortParam: true } }], /^unknown option rules\[0\]\.key\.sortParam \(did you mean rules\[0\]\.key\.sortParams\?\)/],
    ['dropping every parameter', [{ key: { dropParams: ['*'] } }], /^rules\[0\]\.key\.dropParams must be query parameter names/],
    ['a framing header', [{ headers: { 'content-length': '5' } }], /^rules\[0\]\.headers\.content-length must be a header the cache does not own/],
    ['a header value on two lines', [{ headers: { 'x-a': 'a\r\nb' } }], /^rules\[0\]\.headers\.x-a must be a header value on one line/],
  ])('%s', (_name, value, message) => {
    expect(() => compileRules(value, BASE)).toThrow(ConfigError);
    expect(() => compileRules(value, BASE)).toThrow(message);
  });
});

describe('matchRule', () => {
  const rules = compileRules(
    [
      { host: '*.example.com', path: '/a/', ttl: 1 },
      { host: 'example.com', ttl: 2 },
      { path: '/docs/**', method: ['GET'], ttl: 3 },
      { path: '/p/*/edit', header: 'x-preview', cookie: 'beta', ttl: 4 },
    ],
    BASE,
  );
  it.each<[string, string, string, Record<string, string>, number | undefined]>([
    ['sub.example.com', 'GET', '/a/x', {}, 0],
    ['example.com', 'GET', '/a/x', {}, 1],
    ['other.com', 'GET', '/docs/a/b.pdf?x', {}, 2],
    ['other.com', 'POST', '/docs/a', {}, undefined],
    ['other.com', 'GET', '/p/1/edit', { 'x-preview': '1', cookie: 'a=1; beta=2' }, 3],
    ['other.com', 'GET', '/p/1/edit', { 'x-preview': '1' }, undefined],
    ['other.com', 'GET', '/p/1/2/edit', { 'x-preview': '1', cookie: 'beta=2' }, undefined],
  ])('%s %s %s -> rule %s', (host, method, target, headers, index) => {
    expect(matchRule(rules, host, method, target, headers)?.index).toBe(index);
  });
});

describe('normalizeRequestUri', () => {
  const n = { drop: { names: new Set(['gclid']), prefixes: ['utm_'] }, sortParams: true, lowercasePath: false };
  it.each<[string, string]>([
    ['/a?utm_source=x&b=2&a=1&gclid=9', '/a?a=1&b=2'],
    ['/a?utm_source=&b=1', '/a?b=1&utm_source='],
    ['/a?utm_source=x', '/a'],
    ['/a?b=2&a=1&b=1', '/a?a=1&b=2&b=1'],
    ['/A/B', '/A/B'],
  ])('%s -> %s', (uri, out) => {
    expect(normalizeRequestUri(uri, n)).toBe(out);
  });
  it('lower-cases the path, never the query', () => {
    expect(normalizeRequestUri('/A/B?Q=X', { ...n, lowercasePath: true })).toBe('/a/b?Q=X');
  });
});

describe('device classes', () => {
  it.each<[Record<string, string>, string]>([
    [{ 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148' }, 'mobile'],
    [{ 'user-agent': 'Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36' }, 'mobile'],
    [{ 'user-agent': 'Mozilla/5.0 (Linux; Android 13; SM-X700) Safari/537.36' }, 'tablet'],
    [{ 'user-agent': 'Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)' }, 'tablet'],
    [{ 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120' }, 'desktop'],
    [{ 'user-agent': 'Mozilla/5.0 (Windows NT 10.0) Chrome/120', 'sec-ch-ua-mobile': '?1' }, 'mobile'],
    [{ 'user-agent': 'Mozilla/5.0 (iPhone) Mobile', 'sec-ch-ua-mobile': '?0' }, 'desktop'],
    [{}, 'desktop'],
  ])('%j -> %s', (headers, cls) => {
    expect(deviceClass(headers)).toBe(cls);
  });
  it('adds the class to the key only under a deviceClass rule', () => {
    const [plain, byDevice] = compileRules([{ ttl: 1 }, { key: { deviceClass: true } }], BASE);
    expect(keyVariant(plain, { 'user-agent': 'iPhone' })).toBe('');
    expect(keyVariant(byDevice, { 'user-agent': 'iPhone' })).toBe('#device=mobile');
  });
});

describe('what a rule changes', () => {
  const [r] = compileRules([{ ttl: 30, ttlByStatus: { '404': 60, '4xx': 0, '5xx': 5 }, tags: ['s-{segment:1}', 'h-{host}', 'x-{segment:4}'], headers: { 'Cache-Control': 'max-age=10' } }], BASE);
  it('ttlByStatus: an exact code over its class; 5xx only with explicit freshness, capped', () => {
    expect(storePolicyFor(r, BASE.policy, 200).defaultTtlSeconds).toBe(30);
    const p404 = storePolicyFor(r, BASE.policy, 404);
    expect([p404.defaultTtlSeconds, p404.maxTtlSeconds, (p404.statuses as Set<number>).has(404)]).toEqual([60, 60, true]);
    expect((storePolicyFor(r, BASE.policy, 410).statuses as Set<number>).has(410)).toBe(false);
    const p503 = storePolicyFor(r, BASE.policy, 503);
    expect([p503.defaultTtlSeconds, p503.maxHeuristicTtlSeconds, p503.maxTtlSeconds, (p503.statuses as Set<number>).has(503)]).toEqual([0, 0, 5, true]);
    expect(storePolicyFor(undefined, BASE.policy, 200)).toBe(BASE.policy);
  });
  it('tags from the path and host; a segment past the end gives no tag', () => {
    expect(ruleTags(r, ['own'], 'example.com', '/blog/2024/x?y=1')).toEqual(['own', 's-blog', 'h-example.com']);
  });
  it('headers replace the same names', () => {
    expect(withRuleHeaders(r, ['cache-control', 's-maxage=600', 'content-type', 'text/html'])).toEqual(['content-type', 'text/html', 'cache-control', 'max-age=10']);
  });
  it('nginx-conf is told which rule nginx cannot key', () => {
    expect(nginxIncompatibility(compileRules([{ ttl: 1 }], BASE))).toBeUndefined();
    expect(nginxIncompatibility(compileRules([{ ttl: 1 }, { key: { sortParams: true } }], BASE))).toMatch(/^rules\[1\]\.key normalises/);
    expect(nginxIncompatibility(compileRules([{ key: { deviceClass: true } }], BASE))).toMatch(/^rules\[0\]\.key\.deviceClass/);
  });
});

describe('automatic site and prefix tags', () => {
  it('tags a page with its host and up to three directories', () => {
    expect(autoTags('example.com', '/a/b/c/d/e?x=/y/')).toEqual(['epc:site:example.com', 'epc:prefix:example.com/a/', 'epc:prefix:example.com/a/b/', 'epc:prefix:example.com/a/b/c/']);
    expect(autoTags('example.com', '/')).toEqual(['epc:site:example.com']);
  });
  it('maps purge prefixes and sites to those tags, refusing what no tag covers', () => {
    expect(prefixPurgeTag('https://Example.com/blog/')).toBe('epc:prefix:example.com/blog/');
    expect(prefixPurgeTag('http://example.com/')).toBe('epc:site:example.com');
    expect(sitePurgeTag('example.com')).toBe('epc:site:example.com');
    expect(() => prefixPurgeTag('https://example.com/blog')).toThrow(/must end with '\/'/);
    expect(() => prefixPurgeTag('https://example.com/a/b/c/d/')).toThrow(/4 directories deep/);
    expect(() => prefixPurgeTag('example.com/blog/')).toThrow(/absolute http\(s\) URL/);
    expect(() => sitePurgeTag('example.com:8080')).toThrow(/host name/);
  });
});
