// What may be stored, for how long, and how stale it may be served: RFC 9111 shared-cache rules through
// http-cache-semantics, plus this cache's stricter rules for anything that could leak between users.
// Pure: no I/O; entry-life functions take the time as `now`.
import CachePolicy from 'http-cache-semantics';
import { ENTRY_NO_TRANSFORM } from './entry';
import { deltaSeconds, headerString, parseCacheControl, parseTags, SURROGATE_KEY } from './headers';

type HeaderValue = string | number | readonly string[] | undefined;
export type Headers = Readonly<Record<string, HeaderValue>>;

/** `--cache-statuses any`: every final status with explicit freshness may be stored (RFC 9111 §3). */
export const ANY_STATUS = 'any';

/** Which statuses may be stored: a list of codes, or ANY_STATUS. */
export type StorableStatuses = ReadonlySet<number> | typeof ANY_STATUS;

export interface StorePolicyOptions {
  /** Freshness for a cacheable response that states none (nginx proxy_cache_valid); 0: store only what states one. */
  readonly defaultTtlSeconds: number;
  /** Stale-while-revalidate window when the response gives none (RFC 5861). */
  readonly defaultStaleWhileRevalidateSeconds: number;
  /** Stale-if-error window when the response gives none (RFC 5861); the edge's "grace". */
  readonly defaultStaleIfErrorSeconds: number;
  /** Status codes that may be stored, or ANY_STATUS. */
  readonly statuses: StorableStatuses;
  /** Longest freshness accepted, in seconds (caps a far-future Expires). */
  readonly maxTtlSeconds: number;
  /** Cap on the RFC 9111 §4.2.2 heuristic lifetime used when defaultTtlSeconds is 0; absent or 0: no heuristic (the middleware caches only what the app states). */
  readonly maxHeuristicTtlSeconds?: number;
  /** RFC 9213 field that targets this cache above CDN-Cache-Control, lower-case (default 'edge-cache-control'). */
  readonly targetedField?: string;
  /** Seconds memcached keeps a page with a validator past its stale windows, to revalidate it (--keep; default the table's). */
  readonly keepSeconds?: number;
  /**
   * The door stores Vary variants (RFC 9111 §4.1, variants.ts): a Vary on other headers than Accept-Encoding
   * and Cookie is stored per variant instead of refused. `Vary: *` is refused either way.
   */
  readonly variants?: boolean;
}

export type NotStoredReason =
  | 'method'
  | 'authorization'
  | 'status'
  | 'no-store'
  | 'request-no-store'
  | 'private'
  | 'no-cache'
  | 'set-cookie'
  | 'vary'
  | 'request-cookie'
  | 'not-storable'
  | 'no-freshness'
  | 'too-large'
  /** A 304 answered a revalidation but does not describe the stored response (RFC 9111 §4.3.4). */
  | 'not-modified-mismatch'
  /** The body ended short of its own Content-Length: the client got a cut page; never stored. */
  | 'truncated';

export type StoreDecision =
  | {
      readonly store: true;
      /** Freshness left now (lifetime less the Age the response arrived with). */
      readonly ttlSeconds: number;
      /** The Age it arrived with (RFC 9111 §4.2.3), so delivered Age = this + time stored here. */
      readonly initialAgeSeconds: number;
      readonly staleWhileRevalidateSeconds: number;
      readonly staleIfErrorSeconds: number;
      readonly tags: readonly string[];
      /** ENTRY_* bits to keep in the entry (decided here once, read by a field check on every hit). */
      readonly flags: number;
    }
  | { readonly store: false; readonly reason: NotStoredReason };

export const DEFAULT_STORABLE_STATUSES: readonly number[] = [200, 203, 204, 300, 301, 308, 404, 410];

/** RFC 9110 §15.1: statuses heuristically cacheable (a lifetime may be guessed when none is stated). */
const HEURISTIC_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);

/** RFC 9213 §2.1: targeted fields this cache obeys, most specific first (the edge's own name goes in front). */
export const CDN_CACHE_CONTROL = 'cdn-cache-control';
/** Edge Architecture 1.0: Surrogate-Control, read as a targeted field for this cache (max-age, no-store). */
export const SURROGATE_CONTROL = 'surrogate-control';
export const DEFAULT_TARGETED_FIELD = 'edge-cache-control';
/** RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31. */
const DELTA_MAX = 2147483648;

/**
 * RFC 9111 §5.1: the Age a response arrived with. A list (or several lines) counts by its first member;
 * anything but a non-negative integer (negative, fractional, suffixed, with parameters) is ignored (0).
 */
export function parseAge(value: string | number | readonly string[] | undefined): number {
  if (value === undefined) return 0;
  const s = typeof value === 'number' ? String(value) : Array.isArray(value) ? (value as readonly string[])[0] ?? '' : (value as string);
  const comma = s.indexOf(',');
  const first = (comma === -1 ? s : s.slice(0, comma)).trim();
  if (first === '' || !/^\d+$/.test(first)) return 0;
  const n = Number(first);
  return n > DELTA_MAX ? DELTA_MAX : n;
}

/**
 * RFC 9213 §2.2: the Cache-Control that governs this cache. The first targeted field present (this edge's
 * own, then CDN-Cache-Control, then Surrogate-Control) replaces Cache-Control and Expires altogether for
 * storing and freshness; the response's Cache-Control still goes to clients, which it targets.
 */
export function governingCacheControl(headers: Headers, targetedField: string): { readonly value: HeaderValue; readonly targeted: boolean } {
  const own = headers[targetedField];
  if (own !== undefined) return { value: own, targeted: true };
  const cdn = headers[CDN_CACHE_CONTROL];
  if (cdn !== undefined) return { value: cdn, targeted: true };
  const sc = headers[SURROGATE_CONTROL];
  if (sc !== undefined) return { value: surrogateDirectives(headerString(sc)!), targeted: true };
  return { value: headers['cache-control'], targeted: false };
}

/** Surrogate-Control directives without `;target` designators (Edge Architecture 1.0 §3). */
function surrogateDirectives(value: string): string {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const semi = part.indexOf(';');
    out.push(semi === -1 ? part : part.slice(0, semi));
  }
  return out.join(',');
}

/**
 * Whether a Vary value names Cookie (ASCII case-insensitive), the one varying header besides
 * Accept-Encoding this cache can store: every request it looks up for carries no cookie that reaches the
 * page (others pass), so what it stores and serves is always the cookie-less variant.
 */
export function variesOnCookie(vary: string | undefined): boolean {
  if (vary === undefined) return false;
  for (const part of vary.split(',')) if (part.trim().toLowerCase() === 'cookie') return true;
  return false;
}

/** Whether a stored header list varies on Cookie, over every Vary line it holds. */
export function headersVaryOnCookie(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'vary' && variesOnCookie(headers[i + 1])) return true;
  return false;
}

/**
 * Vary values the cache handles: it normalises Accept-Encoding itself, and a request with no cookie that
 * reaches the origin (none, or only ignored ones, which are never forwarded) gets the cookie-less variant
 * of a `Vary: Cookie` page (Django's sessions and CSRF add it to every page). Other names are stored as
 * variants where the door keeps them (`variants`), else not stored; `*` never is, so no variant reaches a
 * request it does not match.
 */
function varyVerdict(vary: string | undefined, cookieFree: boolean, variants: boolean): 'ok' | 'vary' | 'request-cookie' {
  if (vary === undefined) return 'ok';
  let cookie = false;
  for (const part of vary.split(',')) {
    const t = part.trim().toLowerCase();
    if (t === 'cookie') cookie = true;
    else if (t === '*' || (t !== '' && t !== 'accept-encoding' && !variants)) return 'vary';
  }
  return cookie && !cookieFree ? 'request-cookie' : 'ok';
}

type StoreRequest = {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  /** No cookie of this request reaches the page (none, or only ignored ones); default: no Cookie header. */
  readonly cookieFree?: boolean;
};

/**
 * The rules that refuse a response outright, in decideStore's order. With `all` undefined it returns the
 * first that applies (decideStore's path: no allocation); with an array it pushes every one that applies
 * (notStoredReasons, for explain), so both read the same conditions.
 */
function refusal(request: StoreRequest, response: { readonly status: number; readonly headers: Headers }, opts: StorePolicyOptions, all: NotStoredReason[] | undefined): NotStoredReason | undefined {
  if (request.method !== 'GET') {
    if (all === undefined) return 'method';
    all.push('method');
  }
  if (request.headers['authorization'] !== undefined) {
    if (all === undefined) return 'authorization';
    all.push('authorization');
  }
  // RFC 9111 §3: only final statuses, and 206/304 only when understood (they never are stored here).
  if (opts.statuses === ANY_STATUS ? response.status < 200 || response.status === 206 || response.status === 304 : !opts.statuses.has(response.status)) {
    if (all === undefined) return 'status';
    all.push('status');
  }
  const governing = governingCacheControl(response.headers, opts.targetedField ?? DEFAULT_TARGETED_FIELD);
  const cc = parseCacheControl(governing.value);
  if (cc.has('no-store')) {
    if (all === undefined) return 'no-store';
    all.push('no-store');
  }
  // private in the response's own Cache-Control always counts: a targeted field cannot make a user's page shared.
  if (cc.has('private') || (governing.targeted && parseCacheControl(response.headers['cache-control']).has('private'))) {
    if (all === undefined) return 'private';
    all.push('private');
  }
  if (response.headers['set-cookie'] !== undefined) {
    if (all === undefined) return 'set-cookie';
    all.push('set-cookie');
  }
  const vary = varyVerdict(headerString(response.headers['vary']), request.cookieFree ?? request.headers['cookie'] === undefined, opts.variants === true);
  if (vary !== 'ok') {
    if (all === undefined) return vary;
    all.push(vary);
  }
  // The client's own no-store: this response is not stored, but the page is not uncacheable for others.
  if (parseCacheControl(request.headers['cache-control']).has('no-store')) {
    if (all === undefined) return 'request-no-store';
    all.push('request-no-store');
  }
  return undefined;
}

/**
 * Every reason a response would not be stored (decideStore stops at the first): the outright refusals
 * above, then, when none applies, decideStore's own verdict on freshness; and 'too-large' when the body is
 * over maxEntryBytes (the edge's fill checks the body as received against --max-entry-size). Empty: stored.
 */
export function notStoredReasons(
  request: StoreRequest,
  response: { readonly status: number; readonly headers: Headers; readonly bodyBytes?: number },
  opts: StorePolicyOptions,
  maxEntryBytes = Infinity,
): NotStoredReason[] {
  const all: NotStoredReason[] = [];
  refusal(request, response, opts, all);
  if (all.length === 0) {
    const d = decideStore(request, response, opts);
    if (!d.store) all.push(d.reason);
  }
  if (response.bodyBytes !== undefined && response.bodyBytes > maxEntryBytes) all.push('too-large');
  return all;
}

/**
 * Decides whether a response may be stored in the shared cache, one rule per line:
 * - RFC 9111 §3: only GET; a response to a request with Authorization is not stored (we are stricter
 *   than §3.5 and never store those, even with `public`);
 * - RFC 9111 §5.2.2.5 no-store, §5.2.2.7 private, §5.2.2.4 no-cache (we do not store what must be
 *   revalidated on every use);
 * - Set-Cookie: never shared (RFC 9111 §7.3 leaves it to the cache; a cookie is always someone's);
 * - Vary on anything but Accept-Encoding and Cookie (or `*`): not stored, so no variant reaches a request it
 *   does not match; Vary: Cookie only for a request whose cookies never reach the page (`cookieFree`);
 * - freshness from s-maxage, max-age or Expires (RFC 9111 §4.2.1, less Age), else the default TTL.
 */
export function decideStore(
  request: {
    readonly method: string;
    readonly url: string;
    readonly headers: Headers;
    /** No cookie of this request reaches the page (none, or only ignored ones); default: no Cookie header. */
    readonly cookieFree?: boolean;
  },
  response: { readonly status: number; readonly headers: Headers },
  opts: StorePolicyOptions,
): StoreDecision {
  const first = refusal(request, response, opts, undefined);
  if (first !== undefined) return { store: false, reason: first };
  const anyStatus = opts.statuses === ANY_STATUS;
  const governing = governingCacheControl(response.headers, opts.targetedField ?? DEFAULT_TARGETED_FIELD);
  const cc = parseCacheControl(governing.value);

  // http-cache-semantics reads Cache-Control and Expires: give it the governing directives (RFC 9213 §2.2:
  // a targeted field replaces both), so maxAge() and storable() judge what this cache was told.
  const policyHeaders = toPolicyHeaders(response.headers);
  if (governing.targeted) {
    const v = headerString(governing.value);
    if (v === undefined) delete policyHeaders['cache-control'];
    else policyHeaders['cache-control'] = v;
    delete policyHeaders['expires'];
  }
  // The Age is ours to read (RFC 9111 §5.1 parsing): the policy's own parseInt would take '1200a' as 1200.
  delete policyHeaders['age'];
  const policy = new CachePolicy(
    { method: request.method, url: request.url, headers: toPolicyHeaders(request.headers) },
    { status: response.status, headers: policyHeaders },
    { shared: true },
  );
  // 'any' also stores statuses the library does not know (a 500 with max-age), which RFC 9111 §3 allows
  // with explicit freshness; for those the library answers "not storable" and a lifetime of 0, so the
  // lifetime is read here (explicitMaxAge) and our own checks above are the storability rules.
  const known = LIBRARY_STATUSES.has(response.status);
  if (known && !policy.storable()) return { store: false, reason: 'not-storable' };

  const initialAge = parseAge(response.headers['age']);
  const explicit = cc.has('s-maxage') || cc.has('max-age') || (!governing.targeted && response.headers['expires'] !== undefined);
  const validator = response.headers['etag'] !== undefined || response.headers['last-modified'] !== undefined;
  // RFC 9111 §5.2.2.4: no-cache may be stored, but is never used without revalidation: with a validator it
  // is stored stale from the start (each use is a conditional request); without one, revalidating would be
  // a full fetch each time, so it is not stored. A qualified no-cache="field" is taken as the whole response.
  const noCache = cc.has('no-cache');
  if (noCache && !validator) return { store: false, reason: 'no-cache' };
  if (anyStatus && !explicit && !noCache && !DEFAULT_STATUS_SET.has(response.status)) return { store: false, reason: 'no-freshness' };

  let ttl: number;
  let age = 0;
  if (noCache) {
    ttl = 0;
    age = initialAge;
  } else if (explicit) {
    // RFC 9111 §4.2.3: what is left of the lifetime once the Age the response already has is taken off
    // (the response arrives now, so its resident time here is zero). maxAge() is s-maxage, max-age or
    // Expires - Date (RFC 9111 §4.2.1), as the library reads them.
    ttl = Math.floor(explicitMaxAge(cc, policy, known, response.headers, governing.targeted) - initialAge);
    age = initialAge;
  } else if (opts.defaultTtlSeconds > 0) {
    ttl = opts.defaultTtlSeconds;
  } else if (HEURISTIC_STATUSES.has(response.status) && response.headers['last-modified'] !== undefined && (opts.maxHeuristicTtlSeconds ?? 0) > 0) {
    // RFC 9111 §4.2.2: 10 % of the time since Last-Modified (the library's cacheHeuristic), capped.
    ttl = Math.floor(Math.min(policy.maxAge(), opts.maxHeuristicTtlSeconds ?? 0) - initialAge);
    age = initialAge;
  } else {
    ttl = 0;
  }
  // RFC 9111 §4.2: a response already as old as its lifetime is stale on arrival: never served as fresh. With a
  // validator it is stored to be revalidated (a 304 is cheaper than the page), else not stored.
  if (!(ttl > 0)) {
    if (!validator || (!explicit && !noCache)) return { store: false, reason: 'no-freshness' };
    ttl = 0;
  }
  ttl = Math.min(ttl, opts.maxTtlSeconds);

  // RFC 9111 §4.2.4 / §5.2.2.2: must-revalidate, proxy-revalidate (§5.2.2.8) and no-cache (§5.2.2.4)
  // forbid serving stale at all. §5.2.2.10: s-maxage implies proxy-revalidate, so our configured defaults
  // do not apply to it; a stale-while-revalidate or stale-if-error directive the origin sends alongside is
  // its explicit leave (RFC 5861), and the response's own windows always win over the defaults.
  const noStale = noCache || cc.has('must-revalidate') || cc.has('proxy-revalidate');
  const defaultsApply = !cc.has('s-maxage');
  const swr = noStale ? 0 : (deltaSeconds(cc, 'stale-while-revalidate') ?? (defaultsApply ? opts.defaultStaleWhileRevalidateSeconds : 0));
  const sie = noStale ? 0 : (deltaSeconds(cc, 'stale-if-error') ?? (defaultsApply ? opts.defaultStaleIfErrorSeconds : 0));
  // RFC 9110 §7.7 / RFC 9111 §5.2.2.6: no-transform in the response's Cache-Control (it targets every
  // intermediary) or the governing field: stored and served as received.
  const noTransform = cc.has('no-transform') || (governing.targeted && parseCacheControl(response.headers['cache-control']).has('no-transform'));
  return {
    store: true,
    ttlSeconds: ttl,
    initialAgeSeconds: age,
    staleWhileRevalidateSeconds: swr,
    staleIfErrorSeconds: sie,
    tags: parseTags(response.headers[SURROGATE_KEY]),
    flags: noTransform ? ENTRY_NO_TRANSFORM : 0,
  };
}

const DEFAULT_STATUS_SET: ReadonlySet<number> = new Set(DEFAULT_STORABLE_STATUSES);

/**
 * The stated lifetime (RFC 9111 §4.2.1). The library's maxAge() answers 0 for proxy-revalidate (it reads
 * it as "always revalidate"); here proxy-revalidate only forbids serving stale (§5.2.2.8), so s-maxage /
 * max-age are read directly then.
 */
function explicitMaxAge(cc: Map<string, string | true>, policy: CachePolicy, known: boolean, headers: Headers, targeted: boolean): number {
  if (known && !cc.has('proxy-revalidate')) return policy.maxAge();
  const stated = deltaSeconds(cc, 's-maxage') ?? deltaSeconds(cc, 'max-age');
  if (stated !== undefined) return stated;
  if (targeted) return 0;
  // RFC 9111 §5.3: Expires - Date; an invalid Expires is in the past.
  const expires = Date.parse(headerString(headers['expires']) ?? '');
  const date = Date.parse(headerString(headers['date']) ?? '');
  if (!Number.isFinite(expires)) return 0;
  return (expires - (Number.isFinite(date) ? date : Date.now())) / 1000;
}

/** The statuses http-cache-semantics understands (its storable() refuses any other). */
const LIBRARY_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);

function toPolicyHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers)) {
    const v = headerString(headers[name]);
    if (v !== undefined) out[name.toLowerCase()] = v;
  }
  return out;
}

/** Where an entry is in its life at `now` (RFC 9111 §4.2, RFC 5861). */
export type Freshness = 'fresh' | 'stale-while-revalidate' | 'stale-if-error' | 'expired';

export function freshness(
  entry: { readonly storedAt: number; readonly ttlSeconds: number; readonly staleWhileRevalidateSeconds: number; readonly staleIfErrorSeconds: number },
  now: number,
): Freshness {
  // Raw entries have no stored time: memcached's expiry is their only lifetime, so they are fresh while present.
  if (entry.storedAt === 0) return 'fresh';
  const age = now - entry.storedAt;
  const ttl = entry.ttlSeconds * 1000;
  if (age < ttl) return 'fresh';
  if (age < ttl + entry.staleWhileRevalidateSeconds * 1000) return 'stale-while-revalidate';
  if (age < ttl + entry.staleIfErrorSeconds * 1000) return 'stale-if-error';
  return 'expired';
}

/** Whether a stale entry may stand in for an origin failure at `now` (RFC 5861 §4). */
export function canServeStaleOnError(
  entry: { readonly storedAt: number; readonly ttlSeconds: number; readonly staleIfErrorSeconds: number },
  now: number,
): boolean {
  if (entry.storedAt === 0) return true;
  return now - entry.storedAt < (entry.ttlSeconds + entry.staleIfErrorSeconds) * 1000;
}

/** Age in whole seconds (RFC 9111 §4.2.3, our resident time; the origin's Age was taken off the TTL). */
export function ageSeconds(storedAt: number, now: number): number {
  if (storedAt === 0) return 0;
  const a = Math.floor((now - storedAt) / 1000);
  return a > 0 ? a : 0;
}

/** Reasons that come from the response itself: the page would not be storable for anyone (hit-for-miss). */
export function isResponseReason(reason: NotStoredReason): boolean {
  // A cut body is a fault of this one response, like an origin error: the next fill should still be coalesced.
  return reason !== 'request-no-store' && reason !== 'request-cookie' && reason !== 'method' && reason !== 'authorization' && reason !== 'truncated';
}
