// fetch: a cache fill from the origin for a lookup that missed (or found only a stale entry). Concurrent
// fills for one key are coalesced into one origin request. The page is read up to maxEntryBytes, stored
// off the client's path, and delivered; what may not be shared streams to its own client only.
import { compressEntry } from '../../core/compress';
import { OriginError } from '../../core/errors';
import { storableHeaders } from '../../core/headers';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock, HIT_FOR_MISS_SECONDS, isMarkedUncacheable, lockKeyFor, markUncacheable, releaseLock } from '../../core/lock';
import { canServeStaleOnError, decideStore, freshness, isResponseReason } from '../../core/policy';
import type { CacheEntry } from '../../core/entry';
import type { EdgeContext, FetchOutcome } from '../context';
import { originRequestHeaders } from '../forward';
import { classifyOriginError } from '../origins';
import type { StepName, Transaction } from '../transaction';
import { storeEntry } from './store';
import { collectUpTo, streamResponse } from './stream';
import { originFailed } from './synth';

/** RFC 5861 §4: the errors stale-if-error covers. */
function isServerError(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
}

/** One origin fill: GET (also for a HEAD client, as nginx's proxy_cache_convert_head), neutral headers. */
export async function fillFromOrigin(ctx: EdgeContext, tx: Transaction): Promise<FetchOutcome> {
  const t0 = performance.now();
  const response = await ctx.origins.request({
    method: 'GET',
    path: tx.requestUri,
    headers: originRequestHeaders(tx, true),
    body: null,
    retryable: true,
  });
  tx.originMs = performance.now() - t0;
  const decision = decideStore(
    // Only ignored cookies (never forwarded) or none: the origin rendered the cookie-less variant.
    { method: 'GET', url: tx.requestUri, headers: tx.req.headers, cookieFree: tx.req.headers.cookie === undefined || !tx.keepCookies },
    { status: response.statusCode, headers: response.headers },
    ctx.opts.policy,
  );
  if (!decision.store) {
    ctx.metrics.notStored.labels(decision.reason).inc();
    return { kind: 'own', response, prefix: [], uncacheable: isResponseReason(decision.reason) && response.statusCode < 500 };
  }
  const limit = ctx.opts.maxEntryBytes;
  const declared = Number(response.headers['content-length'] ?? -1);
  if (declared > limit) {
    ctx.metrics.notStored.labels('too-large').inc();
    return { kind: 'own', response, prefix: [], uncacheable: true };
  }
  let body: Awaited<ReturnType<typeof collectUpTo>>;
  try {
    body = await collectUpTo(response.body, limit);
  } catch (err) {
    // A body cut off mid-way is the origin failing (stale-if-error applies), not a bug here.
    throw classifyOriginError(err, 'origin body');
  }
  if (!body.complete) {
    // Over the limit: not stored, and the rest of the body streams to this client (never buffered whole).
    ctx.metrics.notStored.labels('too-large').inc();
    return { kind: 'own', response, prefix: body.chunks, uncacheable: true };
  }
  const fetched: CacheEntry = {
    status: response.statusCode,
    headers: storableHeaders(response.headers),
    body: body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks, body.size),
    // RFC 9111 §4.2.3: dated back by the Age it arrived with and counted from when the request came in
    // (the origin's response time is part of the age); delivered Age and freshness count from this point.
    storedAt: tx.now - decision.initialAgeSeconds * 1000,
    ttlSeconds: decision.ttlSeconds + decision.initialAgeSeconds,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds,
    tags: decision.tags,
    format: ctx.cache.format,
  };
  // Compressed once here, then sent as stored to every client that accepts it.
  const entry = await compressEntry(fetched, ctx.opts.compression, ctx.opts.compressMinBytes);
  const written = storeEntry(ctx, tx.key, entry, response.headers);
  return { kind: 'page', entry, stored: written !== undefined, written: written ?? NOT_WRITTEN };
}

const POLL_MS = 10;

/**
 * The fill of this process's leader for a key. With a shared store, it first takes the key's fill lock in
 * memcached; if another edge or worker holds it, it waits for that one's page to appear (bounded by
 * lockTimeoutMs), taking the lock itself if it is released without a page, and fetches on its own when
 * the wait runs out rather than hang. A store fault (lock state unknown) means fetching at once.
 */
export async function fillShared(ctx: EdgeContext, tx: Transaction): Promise<FetchOutcome> {
  const { cache, opts } = ctx;
  if (!ctx.sharedStore || !opts.coalesce) return fillFromOrigin(ctx, tx);
  const store = cache.store;
  const lockKey = lockKeyFor(cache.keyPrefix, tx.key);
  const lockSeconds = opts.lockTimeoutMs / 1000;
  let state = await acquireLock(store, lockKey, lockSeconds);
  const deadline = Date.now() + opts.lockTimeoutMs;
  while (state === 'held' && Date.now() < deadline) {
    // Uncacheable last time (hit-for-miss): nothing to wait for, fetch now.
    if (await isMarkedUncacheable(store, lockKey)) return fillFromOrigin(ctx, tx);
    await sleep(POLL_MS);
    state = await acquireLock(store, lockKey, lockSeconds);
    // Looked for after the add, so a holder that stored the page and let go just before it is seen (else
    // the page would be fetched twice). Past this process's L1, which may hold the stale copy.
    store.evictLocal(tx.key);
    const entry = await cache.get(tx.key);
    if (entry !== undefined && freshness(entry, Date.now()) === 'fresh') {
      if (state === 'acquired') releaseLock(store, lockKey);
      ctx.metrics.coalesced.inc();
      return { kind: 'page', entry, stored: false };
    }
  }
  if (state !== 'acquired') return fillFromOrigin(ctx, tx);
  let outcome: FetchOutcome | undefined;
  try {
    outcome = await fillFromOrigin(ctx, tx);
    // Hold the lock until the page is in memcached, so waiters find it when the lock goes.
    if (outcome.kind === 'page' && outcome.stored) await outcome.written;
    return outcome;
  } finally {
    // A page that answered but may not be stored leaves the hit-for-miss mark; an origin error does not
    // (the next fill should still be coalesced).
    if (outcome !== undefined && outcome.kind === 'own' && outcome.uncacheable) markUncacheable(store, lockKey);
    else releaseLock(store, lockKey);
  }
}

function leaderFill(this: Transaction): Promise<FetchOutcome> {
  return fillShared(this.ctx, this);
}

function staleOrError(tx: Transaction, err: unknown): StepName {
  const entry = tx.entry;
  if (entry !== undefined && err instanceof OriginError && canServeStaleOnError(entry, Date.now())) {
    tx.status = 'STALE';
    return 'deliver';
  }
  return originFailed(tx, err);
}

const UNCACHEABLE_MAX = 10_000;

function useOutcome(tx: Transaction, outcome: FetchOutcome, mine: boolean): StepName {
  if (outcome.kind === 'page') {
    tx.entry = outcome.entry;
    return 'deliver';
  }
  const response = outcome.response;
  if (mine && outcome.uncacheable) {
    const marks = tx.ctx.uncacheable;
    if (marks.size >= UNCACHEABLE_MAX) marks.clear();
    marks.set(tx.key, Date.now() + HIT_FOR_MISS_SECONDS * 1000);
  }
  // RFC 5861 §4: an origin 5xx is an error a stale entry may stand in for.
  if (isServerError(response.statusCode) && tx.entry !== undefined && canServeStaleOnError(tx.entry, Date.now())) {
    if (mine) response.body.dump().catch(ignore);
    tx.status = 'STALE';
    return 'deliver';
  }
  if (!mine) {
    // Not shareable (private, not storable or too large): this request asks the origin itself.
    return 'pass';
  }
  streamResponse(tx, response, outcome.prefix);
  return 'done';
}

function ignore(): void {}
const NOT_WRITTEN: Promise<boolean> = Promise.resolve(false);

export function fetch(tx: Transaction): StepName | Promise<StepName> {
  const ctx = tx.ctx;
  const mark = ctx.uncacheable.get(tx.key);
  if (mark !== undefined) {
    // Hit-for-miss: this page was just found uncacheable; fetch it for this client alone, no waiting.
    if (mark > Date.now()) return 'pass';
    ctx.uncacheable.delete(tx.key);
  }
  if (ctx.opts.coalesce) {
    const pending = ctx.inflight.pending(tx.key);
    if (pending !== undefined) {
      ctx.metrics.coalesced.inc();
      return pending.then(
        (outcome) => useOutcome(tx, outcome, false),
        (err: unknown) => staleOrError(tx, err),
      );
    }
    return ctx.inflight.run(tx.key, leaderFill.bind(tx)).then(
      (outcome) => useOutcome(tx, outcome, true),
      (err: unknown) => staleOrError(tx, err),
    );
  }
  return fillShared(ctx, tx).then(
    (outcome) => useOutcome(tx, outcome, true),
    (err: unknown) => staleOrError(tx, err),
  );
}
