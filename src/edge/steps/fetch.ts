// fetch: a cache fill from the origin for a lookup that missed (or found only a stale entry). Concurrent
// fills for one key are coalesced into one origin request. The page is read up to maxEntryBytes, stored
// off the client's path, and delivered; what may not be shared streams to its own client only.
import { OriginTimeoutError } from '../../core/errors';
import { storableHeaders } from '../../core/headers';
import { canServeStaleOnError, decideStore } from '../../core/policy';
import type { CacheEntry } from '../../core/entry';
import type { EdgeContext, FetchOutcome } from '../context';
import { originRequestHeaders } from '../forward';
import type { StepName, Transaction } from '../transaction';
import { storeEntry } from './store';
import { collectUpTo, streamResponse } from './stream';

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
    { method: 'GET', url: tx.requestUri, headers: tx.req.headers },
    { status: response.statusCode, headers: response.headers },
    ctx.opts.policy,
  );
  if (!decision.store) {
    ctx.metrics.notStored.labels(decision.reason).inc();
    return { kind: 'own', response, prefix: [] };
  }
  const limit = ctx.opts.maxEntryBytes;
  const declared = Number(response.headers['content-length'] ?? -1);
  if (declared > limit) {
    ctx.metrics.notStored.labels('too-large').inc();
    return { kind: 'own', response, prefix: [] };
  }
  const body = await collectUpTo(response.body, limit);
  if (!body.complete) {
    // Over the limit: not stored, and the rest of the body streams to this client (never buffered whole).
    ctx.metrics.notStored.labels('too-large').inc();
    return { kind: 'own', response, prefix: body.chunks };
  }
  const entry: CacheEntry = {
    status: response.statusCode,
    headers: storableHeaders(response.headers),
    body: body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks, body.size),
    storedAt: Date.now(),
    ttlSeconds: decision.ttlSeconds,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds,
    tags: decision.tags,
    format: ctx.cache.format,
  };
  const stored = storeEntry(ctx, tx.key, entry, response.headers);
  return { kind: 'page', entry, stored };
}

function leaderFill(this: Transaction): Promise<FetchOutcome> {
  return fillFromOrigin(this.ctx, this);
}

function staleOrError(tx: Transaction, err: unknown): StepName {
  const entry = tx.entry;
  if (entry !== undefined && canServeStaleOnError(entry, Date.now())) {
    tx.status = 'STALE';
    return 'deliver';
  }
  tx.synthCode = err instanceof OriginTimeoutError ? 504 : 502;
  tx.synthMessage = err instanceof OriginTimeoutError ? 'Gateway Timeout: the origin did not answer in time' : 'Bad Gateway: the origin could not be reached';
  return 'synth';
}

function useOutcome(tx: Transaction, outcome: FetchOutcome, mine: boolean): StepName {
  if (outcome.kind === 'page') {
    tx.entry = outcome.entry;
    return 'deliver';
  }
  const response = outcome.response;
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

export function fetch(tx: Transaction): Promise<StepName> {
  const ctx = tx.ctx;
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
  return fillFromOrigin(ctx, tx).then(
    (outcome) => useOutcome(tx, outcome, true),
    (err: unknown) => staleOrError(tx, err),
  );
}
