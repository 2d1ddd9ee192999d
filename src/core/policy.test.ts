import { parseAge, ageSeconds, canServeStaleOnError, decideStore, DEFAULT_STORABLE_STATUSES, freshness, headersVaryOnCookie, isResponseReason, variesOnCookie } from './policy';
import type { StorePolicyOptions } from './policy';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const opts: StorePolicyOptions = {
  defaultTtlSeconds: 60,
  defaultStaleWhileRevalidateSeconds: 10,
  defaultStaleIfErrorSeconds: 3600,
  statuses: new Set(DEFAULT_STORABLE_STATUSES),
  maxTtlSeconds: 86400 * 365,
};
const GET: { method: string; url: string; headers: Record<string, string> } = { method: 'GET', url: '/', headers: { host: 'example.com' } };
const date = new Date(NOW).toUTCString();

function decide(resHeaders: Record<string, string | string[]>, status = 200, req = GET, o = opts) {
  return decideStore(req, { status, headers: { date, ...resHeaders } }, o);
}

describe('storable (RFC 9111 §3, shared cache)', () => {
  it.each([
    ['no-store', { 'cache-control': 'no-store' }],
    ['private', { 'cache-control': 'private, max-age=60' }],
    ['no-cache', { 'cache-control': 'no-cache' }],
    ['set-cookie', { 'set-cookie': 'sid=1', 'cache-control': 'public, max-age=60' }],
    ['vary', { vary: 'Accept-Language', 'cache-control': 'max-age=60' }],
    ['vary', { vary: 'Cookie, Accept-Language', 'cache-control': 'max-age=60' }],
    ['vary', { vary: '*', 'cache-control': 'max-age=60' }],
  ])('not stored: %s', (reason, headers) => {
    expect(decide(headers)).toEqual({ store: false, reason });
  });

  it('never stores a response to a request with Authorization, even if public', () => {
    expect(decide({ 'cache-control': 'public, max-age=60' }, 200, { ...GET, headers: { host: 'x', authorization: 'Basic eDp5' } })).toEqual({
      store: false,
      reason: 'authorization',
    });
  });

  it.each([['POST'], ['PUT'], ['DELETE'], ['HEAD']])('never stores %s', (method) => {
    expect(decide({ 'cache-control': 'max-age=60' }, 200, { ...GET, method })).toEqual({ store: false, reason: 'method' });
  });

  it.each([[500], [502], [302], [206]])('does not store status %i', (status) => {
    expect(decide({ 'cache-control': 'max-age=60' }, status)).toEqual({ store: false, reason: 'status' });
  });

  it('stores Vary: Accept-Encoding (the cache normalises it)', () => {
    expect(decide({ vary: 'Accept-Encoding', 'cache-control': 'max-age=60' }).store).toBe(true);
  });

  it('stores Vary: Cookie as the cookie-less variant, only for a request whose cookies never reach the page', () => {
    const varies = { vary: 'Accept-Encoding, Cookie', 'cache-control': 'max-age=60' };
    expect(decide(varies).store).toBe(true);
    const withCookie = { ...GET, headers: { host: 'x', cookie: 'sessionid=abc' } };
    expect(decide(varies, 200, withCookie)).toEqual({ store: false, reason: 'request-cookie' });
    // The caller knows the cookies are all ignored ones (analytics, never forwarded).
    expect(decide(varies, 200, { ...withCookie, cookieFree: true } as typeof GET).store).toBe(true);
    // A request's own cookies say nothing about the page: no hit-for-miss mark for the others.
    expect(isResponseReason('request-cookie')).toBe(false);
    expect(isResponseReason('vary')).toBe(true);
  });

  it.each([
    ['Cookie', true],
    [' accept-encoding ,COOKIE', true],
    ['Accept-Encoding', false],
    ['X-Cookie', false],
    [undefined, false],
  ])('variesOnCookie(%s) is %s', (vary, want) => {
    expect(variesOnCookie(vary)).toBe(want);
  });

  it('headersVaryOnCookie reads every Vary line of a stored header list', () => {
    expect(headersVaryOnCookie(['vary', 'Accept-Encoding', 'content-type', 'text/html', 'vary', 'Cookie'])).toBe(true);
    expect(headersVaryOnCookie(['vary', 'Accept-Encoding'])).toBe(false);
  });

  it('honours a request no-store', () => {
    expect(decide({ 'cache-control': 'max-age=60' }, 200, { ...GET, headers: { host: 'x', 'cache-control': 'no-store' } })).toEqual({
      store: false,
      reason: 'request-no-store',
    });
  });
});

describe('freshness lifetime (RFC 9111 §4.2.1)', () => {
  it.each([
    [{ 'cache-control': 's-maxage=120, max-age=10' }, 120],
    [{ 'cache-control': 'max-age=300' }, 300],
    [{ 'cache-control': 'max-age=300', age: '100' }, 200],
    [{ expires: new Date(NOW + 90_000).toUTCString() }, 90],
    [{}, 60],
  ])('%j -> %i s', (headers, ttl) => {
    const d = decide(headers);
    expect(d.store && d.ttlSeconds).toBe(ttl);
  });

  it('keeps the Age a response arrived with', () => {
    const d = decide({ 'cache-control': 'max-age=60', age: '50' });
    expect(d.store && [d.ttlSeconds, d.initialAgeSeconds]).toEqual([10, 50]);
  });

  it('without a stated lifetime and a default of 0, does not store', () => {
    expect(decide({}, 200, GET, { ...opts, defaultTtlSeconds: 0 })).toEqual({ store: false, reason: 'no-freshness' });
  });

  it('an Expires in the past, or max-age=0, is not stored', () => {
    expect(decide({ expires: new Date(NOW - 1000).toUTCString() })).toEqual({ store: false, reason: 'no-freshness' });
    expect(decide({ 'cache-control': 'max-age=0' })).toEqual({ store: false, reason: 'no-freshness' });
  });
});

describe('stale windows (RFC 5861, RFC 9111 §4.2.4)', () => {
  it('takes the origin’s stale-while-revalidate and stale-if-error', () => {
    expect(decide({ 'cache-control': 'max-age=60, stale-while-revalidate=30, stale-if-error=600', 'surrogate-key': 'a b' })).toEqual({
      store: true,
      ttlSeconds: 60,
      initialAgeSeconds: 0,
      staleWhileRevalidateSeconds: 30,
      staleIfErrorSeconds: 600,
      tags: ['a', 'b'],
      flags: 0,
    });
  });

  it('falls back to the configured windows', () => {
    const d = decide({ 'cache-control': 'max-age=60' });
    expect(d.store && [d.staleWhileRevalidateSeconds, d.staleIfErrorSeconds]).toEqual([10, 3600]);
  });

  it('must-revalidate forbids serving stale', () => {
    const d = decide({ 'cache-control': 'max-age=60, must-revalidate, stale-if-error=600' });
    expect(d.store && [d.staleWhileRevalidateSeconds, d.staleIfErrorSeconds]).toEqual([0, 0]);
  });
});

describe('entry life', () => {
  const e = { storedAt: NOW, ttlSeconds: 10, staleWhileRevalidateSeconds: 5, staleIfErrorSeconds: 60 };
  it.each([
    [0, 'fresh'],
    [9_999, 'fresh'],
    [10_000, 'stale-while-revalidate'],
    [14_999, 'stale-while-revalidate'],
    [15_000, 'stale-if-error'],
    [69_999, 'stale-if-error'],
    [70_000, 'expired'],
  ])('at +%i ms it is %s', (dt, want) => {
    expect(freshness(e, NOW + dt)).toBe(want);
  });

  it('stale-if-error is bounded', () => {
    expect(canServeStaleOnError(e, NOW + 69_000)).toBe(true);
    expect(canServeStaleOnError(e, NOW + 71_000)).toBe(false);
  });

  it('age is whole seconds since stored', () => {
    expect(ageSeconds(NOW, NOW + 2_999)).toBe(2);
    expect(ageSeconds(0, NOW)).toBe(0);
  });
});

describe('Age (RFC 9111 §5.1)', () => {
  it.each([
    ['120', 120],
    ['abc', 0],
    ['-7200', 0],
    ['7200.0', 0],
    ['7200a', 0],
    ['7200;x=1', 0],
    ['7200, 0', 7200],
    [['0', '7200'], 0],
    ['99999999999', 2147483648],
    ['', 0],
  ])('Age %j counts as %i', (value, want) => {
    expect(parseAge(value as string)).toBe(want);
  });
});
