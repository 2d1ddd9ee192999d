// The edge's fill: one origin request for a page to store (neutral headers, read up to maxEntryBytes,
// compressed once, written off the client's path), run by this process's leader under the shared fill
// lock (src/core/fill.ts). What may not be shared comes back as the fetching request's own response.
import { compressEntry } from '../core/compress';
import type { CacheEntry } from '../core/entry';
import { endFill, takeFillTurn } from '../core/fill';
import type { FillEnd } from '../core/fill';
import { storableHeaders } from '../core/headers';
import { decideStore, isResponseReason } from '../core/policy';
import type { EdgeContext, FetchOutcome } from './context';
import { originRequestHeaders } from './forward';
import { classifyOriginError } from './origins';
import { storeEntry } from './store';
import { collectUpTo } from './stream';
import type { Transaction } from './transaction';

const NOT_WRITTEN: Promise<boolean> = Promise.resolve(false);

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

/**
 * The fill of this process's leader for a key. With a shared store it first takes its turn under the
 * key's fill lock (src/core/fill.ts): another edge or worker's page may arrive meanwhile, else it fetches,
 * holding the lock until the page is in memcached so waiters find it when the lock goes.
 */
export async function fillShared(ctx: EdgeContext, tx: Transaction): Promise<FetchOutcome> {
  const { cache, opts } = ctx;
  if (!ctx.sharedStore || !opts.coalesce) return fillFromOrigin(ctx, tx);
  const turn = await takeFillTurn(cache, tx.key, opts.lockTimeoutMs);
  if (turn.kind === 'found') {
    ctx.metrics.coalesced.inc();
    return { kind: 'page', entry: turn.entry, stored: false };
  }
  let end: FillEnd = 'other';
  try {
    const outcome = await fillFromOrigin(ctx, tx);
    if (outcome.kind === 'page' && outcome.stored) await outcome.written;
    end = outcome.kind === 'own' && outcome.uncacheable ? 'uncacheable' : 'stored';
    return outcome;
  } finally {
    endFill(cache, tx.key, turn.locked, end);
  }
}
