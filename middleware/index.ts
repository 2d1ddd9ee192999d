// pageCache(options): the Express full-page cache middleware. recv (bypass rules) -> hash (contract key) ->
// lookup (in-process tier synchronously, then memcached) -> HIT delivered here, or MISS: next() with the
// response captured and stored after it has finished. A cache fault is a miss, never an error for the site.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pageCacheFor } from '../src/core/cache';
// An edge on the same memcached stores pages that vary on request headers as variants under an index at the
// page's key; the middleware does not select variants, so such a page is the app's to render (bypassed).
import { isVariantIndex } from '../src/core/variants';
import { decodedCopiesFor } from '../src/core/decoded';
import type { DecodedCopies } from '../src/core/decoded';
import type { PageCache } from '../src/core/cache';
import { createSingleFlight } from '../src/core/coalesce';
import type { SingleFlight } from '../src/core/coalesce';
import { deliverDecoded, deliverEntry, isNodeWriteHead } from '../src/core/deliver';
import { EntryDecodeError } from '../src/core/errors';
import { ENTRY_NO_TRANSFORM, entryHeader } from '../src/core/entry';
import type { CacheEntry } from '../src/core/entry';
import { headerString, parseTags, STORED_BY_ORIGIN, storableHeaders, SURROGATE_KEY, EDGE_VIA } from '../src/core/headers';
import { normalizeHost, normalizeRequestUri } from '../src/core/key';
import { DEVICE_CLASS_HEADER, deviceClass, keyVariant, matchRule, ruleTags, storePolicyFor, withRuleHeaders } from '../src/core/rules';
import type { Rule } from '../src/core/rules';
import { pageTags, prefixPurgeTag, sitePurgeTag } from '../src/core/tags';
import { componentLogger, RateLimitedLog } from '../src/core/logger';
import { cacheMetrics } from '../src/core/metrics';
import type { CacheMetrics } from '../src/core/metrics';
import { decideStore, freshness, headersVaryOnCookie, isResponseReason, variesOnCookie } from '../src/core/policy';
import type { NotStoredReason, StoreDecision } from '../src/core/policy';
import { CACHE_STATUS, CACHE_STATUS_HEADER, CACHE_STATUSES, X_CACHE } from '../src/core/status';
import type { CacheStatus } from '../src/core/status';
import type { CacheStore } from '../src/core/store';
import { createStore } from '../src/core/stores/factory';
import { captureResponse } from './capture';
import type { CaptureSink, CaptureSkipReason, ResponseCapture } from './capture';
import { resolveMiddlewareOptions } from './options';
import type { MiddlewareOptions, ResolvedMiddlewareOptions } from './options';
import { acceptsEncoding } from '../src/core/accept';
import { endFill, takeFillTurn } from '../src/core/fill';
import type { FillEnd } from '../src/core/fill';
import { HitForMiss } from '../src/core/hit-for-miss';
import { decideRequest, invalidatedUris, isCookieFree, isUnsafeMethod } from '../src/core/request-policy';

export { DEFAULT_BYPASS_COOKIES, resolveMiddlewareOptions } from './options';
export type { CacheableMethod, MiddlewareOptions, ResolvedMiddlewareOptions } from './options';
export { purgeTags, purgeUrls } from './purge';
export type { PurgeOptions } from './purge';

/**
 * The request as the middleware reads it: Node's own, with Express's `originalUrl` (the target as received,
 * also under a mounted router). Typed without Express, so the middleware's types compile against
 * `@types/express` 4 and 5 alike, or none.
 */
export type CacheRequest = IncomingMessage & { readonly originalUrl?: string };
/** Express's `next` as the middleware calls it. */
export type NextFunction = (err?: unknown) => void;

/** The middleware function, plus purge and shutdown for the cache it owns. */
export interface PageCacheMiddleware {
  (req: CacheRequest, res: ServerResponse, next: NextFunction): void;
  /** The page cache (key function, get/put, purge) this middleware reads and writes. */
  readonly cache: PageCache;
  /** The store underneath (in-process, memcached behind an L1, or the one given as `store`). */
  readonly store: CacheStore;
  readonly options: ResolvedMiddlewareOptions;
  /**
   * Deletes the pages of these absolute URLs here and in memcached; resolves to how many URLs were valid.
   * soft: marks them stale instead (this middleware renders them again; an edge in front serves them while one refresh runs).
   */
  purgeUrls(urls: readonly string[], options?: { readonly soft?: boolean }): Promise<number>;
  /** Deletes (or, soft, marks stale) every page stored with one of these tags; resolves to how many pages. */
  purgeTags(tags: readonly string[], options?: { readonly soft?: boolean }): Promise<number>;
  /** Deletes every page under these directory URLs ('https://example.com/blog/'); throws a ConfigError for a bad one. */
  purgePrefixes(prefixes: readonly string[]): Promise<number>;
  /** Deletes every page of these hosts ('example.com'). */
  purgeSites(sites: readonly string[]): Promise<number>;
  /** Closes the store it created (memcached connections); a store passed in as `store` is left open. */
  close(): Promise<void>;
}

const NOT_STORED_REASONS = [
  'method', 'authorization', 'status', 'no-store', 'request-no-store', 'private', 'no-cache', 'set-cookie', 'vary', 'request-cookie', 'not-storable', 'no-freshness', 'too-large', 'truncated', 'not-modified-mismatch',
] as const satisfies readonly NotStoredReason[];

/** Everything the request path needs, built once in the factory. */
interface Context {
  readonly opts: ResolvedMiddlewareOptions;
  readonly cache: PageCache;
  /** False for the embedded in-process store: a getSync miss is final, no promise needed. */
  readonly hasAsyncTier: boolean;
  readonly flight: SingleFlight<undefined>;
  /** Pages whose last render may not be shared: their misses render at once, without coalescing. */
  readonly hitForMiss: HitForMiss;
  /** Inflated copies of small compressed pages for clients that take only identity (bounded in bytes). */
  readonly decoded: DecodedCopies;
  readonly sink: CaptureSink<MissState>;
  readonly metrics: CacheMetrics;
  readonly requests: Readonly<Record<CacheStatus, { inc(): void }>>;
  readonly notStored: Readonly<Record<NotStoredReason, { inc(): void }>>;
  readonly aborted: { inc(): void };
  readonly log: RateLimitedLog;
}

/** Per-miss state carried by the capture (fixed shape). */
interface MissState {
  readonly ctx: Context;
  readonly req: CacheRequest;
  readonly key: string;
  readonly now: number;
  decision: StoreDecision | undefined;
  /** Wakes the requests in this process coalesced onto this render (undefined: none can be). */
  readonly wake: ((value: undefined) => void) | undefined;
  /** Whether this render holds the page's fill lock in memcached. */
  readonly locked: boolean;
  /** Several paths may report the end of one render (not stored at head time, then skipped); the first counts. */
  ended: boolean;
}

function noop(): void {}

/**
 * Creates the middleware. Options are validated here (ConfigError naming the option), the store is
 * created here, and nothing is re-read per request.
 */
export function pageCache(options: Readonly<MiddlewareOptions> = {}): PageCacheMiddleware {
  const opts = resolveMiddlewareOptions(options);
  const metrics = cacheMetrics(opts.registry);
  // L1 in front of memcached by default (memoryBytes 32 MiB, l1TtlSeconds 2): a hit then never leaves the
  // process (several times the req/s of a memcached round trip, see bench/middleware.ts), and holding a
  // page at most 2 s bounds how long a purge made through another process goes unseen here.
  const ownsStore = opts.store === undefined;
  const store =
    opts.store ??
    createStore(
      {
        memcached: opts.memcached,
        memcachedTimeoutMs: opts.memcachedTimeoutMs,
        memcachedRetryAfterMs: opts.memcachedRetryAfterMs,
        memoryBytes: opts.memoryBytes,
        l1TtlSeconds: opts.l1TtlSeconds,
        maxEntryBytes: opts.maxEntryBytes,
      },
      metrics,
    );
  const cache = pageCacheFor(store, opts, metrics);
  const requests = {} as Record<CacheStatus, { inc(): void }>;
  for (const s of CACHE_STATUSES) requests[s] = metrics.requests.labels(s);
  const notStored = {} as Record<NotStoredReason, { inc(): void }>;
  for (const r of NOT_STORED_REASONS) notStored[r] = metrics.notStored.labels(r);
  const ctx: Context = {
    opts,
    cache,
    hasAsyncTier: store.kind !== 'memory',
    hitForMiss: new HitForMiss(),
    decoded: decodedCopiesFor(opts.memoryBytes),
    flight: createSingleFlight<undefined>(function joined() {
      metrics.coalesced.inc();
    }),
    sink: MISS_SINK,
    metrics,
    requests,
    notStored,
    aborted: metrics.notStored.labels('aborted'),
    log: new RateLimitedLog(componentLogger('middleware')),
  };

  const middleware = function pageCacheMiddleware(req: CacheRequest, res: ServerResponse, next: NextFunction): void {
    recv(ctx, req, res, next);
  };
  return Object.assign(middleware, {
    cache,
    store,
    options: opts,
    purgeUrls(urls: readonly string[], options?: { readonly soft?: boolean }): Promise<number> {
      return cache.purgeUrls(urls, options);
    },
    purgeTags(tags: readonly string[], options?: { readonly soft?: boolean }): Promise<number> {
      return cache.purgeTags(tags, options);
    },
    purgePrefixes(prefixes: readonly string[]): Promise<number> {
      return cache.purgeTags(prefixes.map((p) => prefixPurgeTag(p)));
    },
    purgeSites(sites: readonly string[]): Promise<number> {
      return cache.purgeTags(sites.map((s) => sitePurgeTag(s)));
    },
    close(): Promise<void> {
      return ownsStore ? store.close() : Promise.resolve();
    },
  });
}

/** Adds purge tags to a response (sent as Surrogate-Key, read by this middleware and by the edge). */
export function cacheTags(res: ServerResponse, ...tags: readonly string[]): void {
  for (const tag of tags) {
    if (tag === '' || /[\s,]/.test(tag)) throw new TypeError(`cache tags must be non-empty and hold no spaces or commas, got '${tag}'`);
  }
  const existing = headerString(res.getHeader(SURROGATE_KEY) as string | number | readonly string[] | undefined);
  const joined = tags.join(' ');
  res.setHeader(SURROGATE_KEY, existing === undefined || existing === '' ? joined : `${existing} ${joined}`);
}

/** Tags set on a response so far (Surrogate-Key), for apps that add to them in several places. */
export function responseCacheTags(res: ServerResponse): string[] {
  return parseTags(res.getHeader(SURROGATE_KEY) as string | number | readonly string[] | undefined);
}

function requestTarget(req: CacheRequest): string {
  return req.originalUrl ?? req.url ?? '/';
}

function markStatus(ctx: Context, res: ServerResponse, status: CacheStatus): void {
  ctx.requests[status].inc();
  res.setHeader(X_CACHE, status);
  res.setHeader(CACHE_STATUS, CACHE_STATUS_HEADER[status]);
}

function bypass(ctx: Context, res: ServerResponse, next: NextFunction): void {
  markStatus(ctx, res, 'BYPASS');
  next();
}

/** Where recv leaves a request's cache rule for the store step (set only on requests a rule matched). */
const RULE = Symbol('edge-page-cache rule');
type RuledRequest = CacheRequest & { [RULE]?: Rule };

function ruleOf(req: IncomingMessage): Rule | undefined {
  return (req as RuledRequest)[RULE];
}

/**
 * A normalising rule's URI is what the page is keyed by and what the app renders from: req.url and
 * originalUrl are rewritten (under a mounted router, req.url keeps its part below the mount point).
 */
function normalizedTarget(req: CacheRequest, target: string, rule: Rule): string {
  const normalized = normalizeRequestUri(target, rule.normalize!);
  if (normalized === target) return target;
  const base = (req as { baseUrl?: unknown }).baseUrl;
  req.url = typeof base === 'string' && req.url !== target && normalized.startsWith(base) ? normalized.slice(base.length) || '/' : normalized;
  if (req.originalUrl !== undefined) (req as { originalUrl: string }).originalUrl = normalized;
  return normalized;
}

/** A device-class rule: the app sees the class (X-Device-Class), never the raw User-Agent or client hints. */
function byDeviceClass(req: IncomingMessage): void {
  const headers = req.headers;
  const cls = deviceClass(headers);
  for (const name of Object.keys(headers)) if (name === 'user-agent' || name.startsWith('sec-ch-ua')) Reflect.deleteProperty(headers, name);
  headers[DEVICE_CLASS_HEADER] = cls;
}

/** recv: the shared request policy decides lookup or bypass (src/core/request-policy.ts), then hash and look up. */
function recv(ctx: Context, req: CacheRequest, res: ServerResponse, next: NextFunction): void {
  const method = req.method;
  const headers = req.headers;
  const host = normalizeHost(headers.host);
  // originalUrl is the request target as received (nginx's $request_uri), also under a mounted router.
  let target = requestTarget(req);
  // A Host nginx would refuse is never a key; the app, not the cache, answers such a request.
  if (host === undefined) {
    bypass(ctx, res, next);
    return;
  }
  if (isUnsafeMethod(method)) invalidateOnSuccess(ctx, req, res, host, target);
  let request = ctx.opts.request;
  let keyed = target;
  // Cache rules (src/core/rules.ts): one length check when there are none.
  if (ctx.opts.rules.length > 0) {
    const rule = matchRule(ctx.opts.rules, host, method, target, headers);
    if (rule !== undefined) {
      if (rule.normalize !== undefined) target = normalizedTarget(req, target, rule);
      if (rule.bypass) {
        bypass(ctx, res, next);
        return;
      }
      (req as RuledRequest)[RULE] = rule;
      request = rule.request;
      keyed = target + keyVariant(rule, headers);
      if (rule.deviceClass) byDeviceClass(req);
    }
  }
  const secure = isSecure(req);
  if (decideRequest(request, method, headers, target, host, secure) !== 'lookup') {
    bypass(ctx, res, next);
    return;
  }
  // A page rendered for https is kept apart from the http one (its key derived from nginx's).
  const key = secure ? ctx.cache.secureKeyFor(host, keyed) : ctx.cache.keyFor(host, keyed);
  const now = Date.now();
  let entry: CacheEntry | undefined;
  try {
    entry = ctx.cache.getSync(key, now);
  } catch (err) {
    // Only a broken custom store gets here; the cache still must not fail the page.
    lookupFailed(ctx, err);
  }
  if (entry !== undefined) {
    if (cookieVariantRefused(ctx, req, entry) || isVariantIndex(entry)) {
      bypass(ctx, res, next);
      return;
    }
    if (serveIfFresh(ctx, req, res, next, key, entry, now)) return;
    miss(ctx, req, res, next, key, now, 'EXPIRED');
    return;
  }
  if (ctx.hasAsyncTier) {
    lookupAsync(ctx, req, res, next, key, now).catch(noop);
    return;
  }
  miss(ctx, req, res, next, key, now, 'MISS');
}

function lookupFailed(ctx: Context, err: unknown): void {
  ctx.metrics.storeErrors.labels('l1', 'get', 'ERR_STORE').inc();
  ctx.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cache lookup failed; treated as a miss');
}

/** lookup past the in-process tier (memcached); never rejects: a store fault is a miss. */
async function lookupAsync(ctx: Context, req: CacheRequest, res: ServerResponse, next: NextFunction, key: string, now: number): Promise<void> {
  let entry: CacheEntry | undefined;
  try {
    entry = await ctx.cache.get(key);
  } catch (err) {
    lookupFailed(ctx, err);
  }
  if (entry !== undefined && (cookieVariantRefused(ctx, req, entry) || isVariantIndex(entry))) {
    bypass(ctx, res, next);
    return;
  }
  if (entry !== undefined && !isVariantIndex(entry) && serveIfFresh(ctx, req, res, next, key, entry, now)) return;
  miss(ctx, req, res, next, key, now, entry === undefined ? 'MISS' : 'EXPIRED');
}

function cookieFree(ctx: Context, req: IncomingMessage): boolean {
  // A cache rule's ignoreCookies count as the door's do for the requests it matched.
  return isCookieFree(ruleOf(req)?.request ?? ctx.opts.request, req.headers);
}

/**
 * A stored page that varies on Cookie is the cookie-less variant: never served to a request with a cookie
 * that reaches the page (possible when bypassCookies names only some session cookies). Costs nothing for
 * requests without cookies.
 */
function cookieVariantRefused(ctx: Context, req: IncomingMessage, entry: CacheEntry): boolean {
  return req.headers.cookie !== undefined && headersVaryOnCookie(entry.headers) && !cookieFree(ctx, req);
}

/** hit -> deliver when the entry is fresh and this client can take its encoding; false: go to the miss path. */
function serveIfFresh(ctx: Context, req: IncomingMessage, res: ServerResponse, next: NextFunction, key: string, stored: CacheEntry, now: number): boolean {
  if (freshness(stored, now) !== 'fresh' || cookieVariantRefused(ctx, req, stored)) return false;
  // Middlewares mounted before this one may have wrapped writeHead/end (morgan, compression, response-time):
  // if theirs throws, the app answers instead, with the headers it had before this hit touched them.
  let before = isNodeWriteHead(res) ? undefined : res.getHeaders();
  // The hit carries the headers the app sent on the miss, no more: one set earlier in this request that
  // the stored response lacks was removed downstream then (helmet after the cache drops X-Powered-By).
  const prior = res.getHeaderNames();
  for (let i = 0; i < prior.length; i++) {
    const name = prior[i]!;
    if (entryHeader(stored, name) !== undefined) continue;
    before ??= res.getHeaders();
    res.removeHeader(name);
  }
  try {
    const coding = entryHeader(stored, 'content-encoding');
    if (coding !== undefined && coding !== 'identity' && !acceptsEncoding(req.headers['accept-encoding'], coding.toLowerCase())) {
      // RFC 9111 §5.2.2.6: a no-transform page is never decoded; the app renders it for this client.
      if (((stored.flags ?? 0) & ENTRY_NO_TRANSFORM) !== 0) return false;
      // Stored compressed (compression() mounted after the cache) and this client did not ask for it:
      // decoded on the fly and streamed, as nginx's `gunzip on` does, rather than re-rendered.
      const onCorrupt = function corruptBody(err: Error): void {
        ctx.cache.discard(key, err);
      };
      if (!deliverDecoded(res, req, stored, coding.toLowerCase(), 'HIT', now, onCorrupt, ctx.decoded)) return false;
    } else {
      deliverEntry(res, req, stored, 'HIT', now);
    }
  } catch (err) {
    return hitFailed(ctx, res, next, key, err, before);
  }
  ctx.requests.HIT.inc();
  return true;
}

/**
 * A hit that threw while being written. Before its head went out: a stored header Node refuses is the
 * entry's fault (deleted, counted, a miss: false); anything else came from a wrapper, says nothing about
 * the entry, and falls through to the app as if there were no cache. After the head: the response can
 * only be ended, as the edge ends a broken entry.
 */
function hitFailed(ctx: Context, res: ServerResponse, next: NextFunction, key: string, err: unknown, before: OutgoingHttpHeaders | undefined): boolean {
  const broken = err instanceof EntryDecodeError;
  if (broken) ctx.cache.discard(key, err);
  if (res.headersSent) {
    if (!broken) ctx.metrics.hitFailures.labels('after-head').inc();
    ctx.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'hit failed after its head was sent; response ended');
    res.destroy();
    return true;
  }
  if (before !== undefined) restoreHeaders(res, before);
  if (broken) return false;
  ctx.metrics.hitFailures.labels('before-head').inc();
  ctx.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'hit could not be written; passed to the app');
  bypass(ctx, res, next);
  return true;
}

function restoreHeaders(res: ServerResponse, headers: OutgoingHttpHeaders): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) res.setHeader(name, value);
  }
}

/**
 * miss: coalesce onto a render in flight, or lead one. The leader's render is the one fill path of the
 * core: single-flight here, the fill lock across processes (src/core/fill.ts), hit-for-miss for pages
 * that may not be shared. A HEAD miss is rendered by the app and never stored (RFC 9111 §3).
 */
function miss(ctx: Context, req: CacheRequest, res: ServerResponse, next: NextFunction, key: string, now: number, status: CacheStatus): void {
  if (!ctx.opts.coalesce || ctx.hitForMiss.has(key, now)) {
    render(ctx, req, res, next, key, now, status, undefined, false);
    return;
  }
  const pending = ctx.flight.pending(key);
  if (pending !== undefined) {
    follow(ctx, req, res, next, key, pending, status).catch(noop);
    return;
  }
  if (req.method !== 'GET') {
    render(ctx, req, res, next, key, now, status, undefined, false);
    return;
  }
  const wake = ctx.flight.hold(key);
  if (!ctx.hasAsyncTier) {
    render(ctx, req, res, next, key, now, status, wake, false);
    return;
  }
  leadShared(ctx, req, res, next, key, now, status, wake).catch(function leadFailed(err: unknown) {
    // Only a broken custom store gets here; the page is rendered as if there were no cache.
    lookupFailed(ctx, err);
    if (!res.headersSent) render(ctx, req, res, next, key, now, status, wake, false);
    else wake(undefined);
  });
}

/**
 * The leader of a miss when the store is shared (memcached): takes its turn under the page's fill lock, so
 * one process among all those sharing memcached renders it; a page another stored meanwhile is served.
 * Followers in this process wait on this leader through the single-flight map meanwhile.
 */
async function leadShared(ctx: Context, req: CacheRequest, res: ServerResponse, next: NextFunction, key: string, now: number, status: CacheStatus, wake: (value: undefined) => void): Promise<void> {
  if (fillOfAnEdge(req)) {
    // An edge in front, on the same memcached, holds this page's fill lock while it asks us: waiting for the
    // lock would wait for ourselves (until it expired). The edge coalesces its clients; render at once.
    render(ctx, req, res, next, key, now, status, wake, false);
    return;
  }
  const turn = await takeFillTurn(ctx.cache, key, ctx.opts.lockTimeoutMs, function clientGone() {
    return res.destroyed;
  });
  if (turn.kind === 'found' && serveIfFresh(ctx, req, res, next, key, turn.entry, Date.now())) {
    wake(undefined);
    return;
  }
  const locked = turn.kind === 'produce' && turn.locked;
  if (res.destroyed) {
    endFill(ctx.cache, key, locked, 'other');
    wake(undefined);
    return;
  }
  render(ctx, req, res, next, key, now, status, wake, locked);
}

function render(
  ctx: Context,
  req: CacheRequest,
  res: ServerResponse,
  next: NextFunction,
  key: string,
  now: number,
  status: CacheStatus,
  wake: ((value: undefined) => void) | undefined,
  locked: boolean,
): void {
  markStatus(ctx, res, status);
  if (req.method === 'GET') {
    const state: MissState = { ctx, req, key, now, decision: undefined, wake, locked, ended: false };
    captureResponse(res, state, ctx.sink, ctx.opts.maxEntryBytes);
  }
  next();
}

/** The end of a render: hit-for-miss if its page may not be shared, the fill lock let go, waiters woken. */
function endRender(state: MissState, end: FillEnd): void {
  if (state.ended) return;
  state.ended = true;
  if (end === 'uncacheable') state.ctx.hitForMiss.mark(state.key, Date.now());
  endFill(state.ctx.cache, state.key, state.locked, end);
  state.wake?.(undefined);
}

/** Waits (bounded) for the render in flight, then serves what it stored, or renders itself. */
async function follow(ctx: Context, req: CacheRequest, res: ServerResponse, next: NextFunction, key: string, pending: Promise<undefined>, status: CacheStatus): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>(function bounded(resolve) {
    timer = setTimeout(resolve, ctx.opts.lockTimeoutMs);
  });
  await Promise.race([pending, waited]);
  clearTimeout(timer);
  if (res.destroyed) return;
  const now = Date.now();
  let entry: CacheEntry | undefined;
  try {
    entry = ctx.cache.getSync(key, now) ?? (ctx.hasAsyncTier ? await ctx.cache.get(key) : undefined);
  } catch (err) {
    lookupFailed(ctx, err);
  }
  if (entry !== undefined && serveIfFresh(ctx, req, res, next, key, entry, now)) return;
  render(ctx, req, res, next, key, now, status, undefined, false);
}

/**
 * RFC 9111 §4.4: a successful unsafe request (POST, PUT, DELETE, ...) invalidates the stored responses for
 * its target URI and its same-host Location / Content-Location, so an edit is visible at once here.
 */
function invalidateOnSuccess(ctx: Context, req: IncomingMessage, res: ServerResponse, host: string, target: string): void {
  res.once('finish', function invalidate() {
    const uris = invalidatedUris(req.method, res.statusCode, host, target, headerString(res.getHeader('location') as string | undefined), headerString(res.getHeader('content-location') as string | undefined));
    for (const uri of uris) ctx.cache.deletePage(ctx.cache.keyFor(host, uri));
  });
}

/** Whether the connection itself is TLS (the scheme the request implies when no proxy says otherwise). */
/**
 * Whether the client spoke https: Express's req.protocol when present (it believes X-Forwarded-Proto only
 * from the proxies the app's `trust proxy` names), else a TLS socket.
 */
/** The request is an edge's cache fill (its Via says so). A client faking it only skips the fill lock's coalescing. */
function fillOfAnEdge(req: IncomingMessage): boolean {
  const via = req.headers.via;
  return via !== undefined && via.includes(EDGE_VIA);
}

function isSecure(req: IncomingMessage): boolean {
  const protocol = (req as { protocol?: unknown }).protocol;
  if (typeof protocol === 'string') return protocol === 'https';
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
}

function notStored(state: MissState, reason: NotStoredReason): void {
  state.ctx.notStored[reason].inc();
  endRender(state, isResponseReason(reason) ? 'uncacheable' : 'other');
}

function storedTags(rule: Rule | undefined, own: readonly string[], req: CacheRequest): readonly string[] {
  const host = normalizeHost(req.headers.host);
  if (host === undefined) return own;
  const uri = requestTarget(req);
  return pageTags(ruleTags(rule, own, host, uri), host, uri);
}

/** The store step of a miss, as a capture sink: decide at headers time, write after 'finish'. */
const MISS_SINK: CaptureSink<MissState> = {
  onHead(capture: ResponseCapture<MissState>): boolean {
    const state = capture.data;
    const { ctx, req } = state;
    const headers = capture.headers;
    const decision = decideStore({ method: req.method ?? 'GET', url: requestTarget(req), headers: req.headers, cookieFree: cookieFree(ctx, req) }, { status: capture.status, headers }, storePolicyFor(ruleOf(req), ctx.opts.policy, capture.status));
    if (!decision.store) {
      notStored(state, decision.reason);
      return false;
    }
    // A page stale on arrival (no-cache or max-age=0 with a validator) is stored by the edge to revalidate
    // with a 304; the middleware could never serve it, so it leaves the writing to an edge in front.
    if (decision.ttlSeconds === 0) {
      notStored(state, 'no-freshness');
      return false;
    }
    const declared = Number(headers['content-length']);
    if (declared > ctx.opts.maxEntryBytes) {
      notStored(state, 'too-large');
      return false;
    }
    state.decision = decision;
    // Tells an edge in front that this page is stored in the memcached it reads, so it does not write it
    // again. Only for a shared store: with the in-process one the edge would never see the page, and must
    // store it itself. (The write comes after the response; if it fails, the edge misses once more.)
    if (ctx.hasAsyncTier) capture.res.setHeader(STORED_BY_ORIGIN, '1');
    // The tags are in the entry now; an edge in front will not store this page, so the header stays internal.
    if (headers[SURROGATE_KEY] !== undefined) capture.res.removeHeader(SURROGATE_KEY);
    return true;
  },
  onBody(capture: ResponseCapture<MissState>, body: Buffer): void {
    const state = capture.data;
    const decision = state.decision;
    if (decision === undefined || !decision.store) {
      endRender(state, 'other');
      return;
    }
    // Middlewares mounted before this one (express-session, cookie-session, helmet...) add their headers in
    // on-headers hooks that run after our snapshot; a Set-Cookie or `private` added there must still
    // forbid storing. So the final headers are judged again, now that the response is out.
    const { ctx, req } = state;
    const finalHeaders = capture.res.getHeaders();
    const final = decideStore({ method: req.method ?? 'GET', url: requestTarget(req), headers: req.headers, cookieFree: cookieFree(ctx, req) }, { status: capture.status, headers: finalHeaders }, storePolicyFor(ruleOf(req), ctx.opts.policy, capture.status));
    if (!final.store) {
      notStored(state, final.reason);
      return;
    }
    // A route that declared more bytes than it wrote sent its client a cut page: never a HIT for the next.
    const declared = capture.headers['content-length'];
    if (declared !== undefined && capture.status !== 204 && Number(declared) !== body.length) {
      notStored(state, 'truncated');
      return;
    }
    const rule = ruleOf(req);
    const headers = withRuleHeaders(rule, storableHeaders(capture.headers));
    // A Vary: Cookie added after the snapshot (an on-headers hook) would be missing from the entry, and the
    // page would then reach requests whose cookies it varies on: not stored.
    if (variesOnCookie(headerString(finalHeaders['vary'])) && !headersVaryOnCookie(headers)) {
      notStored(state, 'vary');
      return;
    }
    const entry: CacheEntry = {
      status: capture.status,
      headers,
      body,
      storedAt: state.now - decision.initialAgeSeconds * 1000,
      ttlSeconds: decision.ttlSeconds + decision.initialAgeSeconds,
      staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
      staleIfErrorSeconds: decision.staleIfErrorSeconds,
      // The response's and the rule's tags, and the automatic site and path-prefix ones (purgePrefixes / purgeSites).
      tags: storedTags(rule, decision.tags, req),
      format: state.ctx.opts.format,
      flags: decision.flags,
    };
    // Off the client's path: the response has finished. put() never rejects; a fault is counted by the store.
    state.ctx.cache.put(state.key, entry).then(function putDone(ok: boolean) {
      endRender(state, ok ? 'stored' : 'other');
    }, function putFailed(err: unknown) {
      state.ctx.metrics.storeErrors.labels('l2', 'set', 'ERR_STORE').inc();
      state.ctx.log.warn({ key: state.key, err: err instanceof Error ? err.message : String(err) }, 'cache write failed');
      endRender(state, 'other');
    });
  },
  onSkip(capture: ResponseCapture<MissState>, reason: CaptureSkipReason): void {
    const state = capture.data;
    if (reason === 'too-large') state.ctx.notStored['too-large'].inc();
    else if (reason === 'aborted') state.ctx.aborted.inc();
    endRender(state, reason === 'too-large' ? 'uncacheable' : 'other');
  },
};
