// What may be stored, for how long, and how stale it may be served: RFC 9111 shared-cache rules through
// http-cache-semantics, plus this cache's stricter rules for anything that could leak between users.
// Pure: no I/O; entry-life functions take the time as `now`.
import CachePolicy from 'http-cache-semantics';
import { deltaSeconds, headerString, parseCacheControl, parseTags, SURROGATE_KEY } from './headers';

type HeaderValue = string | number | readonly string[] | undefined;
export type Headers = Readonly<Record<string, HeaderValue>>;

export interface StorePolicyOptions {
  /** Freshness for a cacheable response that states none (nginx proxy_cache_valid); 0: store only what states one. */
  readonly defaultTtlSeconds: number;
  /** Stale-while-revalidate window when the response gives none (RFC 5861). */
  readonly defaultStaleWhileRevalidateSeconds: number;
  /** Stale-if-error window when the response gives none (RFC 5861); the edge's "grace". */
  readonly defaultStaleIfErrorSeconds: number;
  /** Status codes that may be stored. */
  readonly statuses: ReadonlySet<number>;
  /** Longest freshness accepted, in seconds (caps a far-future Expires). */
  readonly maxTtlSeconds: number;
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
    }
  | { readonly store: false; readonly reason: NotStoredReason };

export const DEFAULT_STORABLE_STATUSES: readonly number[] = [200, 203, 204, 300, 301, 308, 404, 410];

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
 * of a `Vary: Cookie` page (Django's sessions and CSRF add it to every page). Anything else (or `*`) is
 * not stored, so no variant reaches a request it does not match.
 */
function varyVerdict(vary: string | undefined, cookieFree: boolean): 'ok' | 'vary' | 'request-cookie' {
  if (vary === undefined) return 'ok';
  let cookie = false;
  for (const part of vary.split(',')) {
    const t = part.trim().toLowerCase();
    if (t === 'cookie') cookie = true;
    else if (t !== '' && t !== 'accept-encoding') return 'vary';
  }
  return cookie && !cookieFree ? 'request-cookie' : 'ok';
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
  if (request.method !== 'GET') return { store: false, reason: 'method' };
  if (request.headers['authorization'] !== undefined) return { store: false, reason: 'authorization' };
  if (!opts.statuses.has(response.status)) return { store: false, reason: 'status' };
  const cc = parseCacheControl(response.headers['cache-control']);
  if (cc.has('no-store')) return { store: false, reason: 'no-store' };
  if (cc.has('private')) return { store: false, reason: 'private' };
  if (cc.has('no-cache')) return { store: false, reason: 'no-cache' };
  if (response.headers['set-cookie'] !== undefined) return { store: false, reason: 'set-cookie' };
  const vary = varyVerdict(headerString(response.headers['vary']), request.cookieFree ?? request.headers['cookie'] === undefined);
  if (vary !== 'ok') return { store: false, reason: vary };
  const reqCc = parseCacheControl(request.headers['cache-control']);
  // The client's own no-store: this response is not stored, but the page is not uncacheable for others.
  if (reqCc.has('no-store')) return { store: false, reason: 'request-no-store' };

  const policy = new CachePolicy(
    { method: request.method, url: request.url, headers: toPolicyHeaders(request.headers) },
    { status: response.status, headers: toPolicyHeaders(response.headers) },
    { shared: true },
  );
  if (!policy.storable()) return { store: false, reason: 'not-storable' };

  let ttl: number;
  const ageHeader = Number(headerString(response.headers['age']) ?? 0);
  const initialAge = Number.isFinite(ageHeader) && ageHeader > 0 ? Math.floor(ageHeader) : 0;
  const explicit = cc.has('s-maxage') || cc.has('max-age') || response.headers['expires'] !== undefined;
  if (explicit) {
    // RFC 9111 §4.2.3: what is left of the lifetime once the Age the response already has is taken off
    // (the response arrives now, so its resident time here is zero).
    ttl = Math.floor(policy.maxAge() - initialAge);
  } else {
    ttl = opts.defaultTtlSeconds;
  }
  if (!(ttl > 0)) return { store: false, reason: 'no-freshness' };
  ttl = Math.min(ttl, opts.maxTtlSeconds);

  // RFC 9111 §4.2.4 / §5.2.2.2: must-revalidate and proxy-revalidate forbid serving stale at all.
  // §5.2.2.10: s-maxage implies proxy-revalidate, so our configured defaults do not apply to it; a
  // stale-while-revalidate or stale-if-error directive the origin sends alongside is its explicit leave.
  const noStale = cc.has('must-revalidate') || cc.has('proxy-revalidate');
  const defaultsApply = !cc.has('s-maxage');
  const swr = noStale ? 0 : (deltaSeconds(cc, 'stale-while-revalidate') ?? (defaultsApply ? opts.defaultStaleWhileRevalidateSeconds : 0));
  const sie = noStale ? 0 : (deltaSeconds(cc, 'stale-if-error') ?? (defaultsApply ? opts.defaultStaleIfErrorSeconds : 0));
  return {
    store: true,
    ttlSeconds: ttl,
    initialAgeSeconds: explicit ? initialAge : 0,
    staleWhileRevalidateSeconds: swr,
    staleIfErrorSeconds: sie,
    tags: parseTags(response.headers[SURROGATE_KEY]),
  };
}

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
