// fetch: a cache fill from the origin for a lookup that missed (or found only a stale entry). Concurrent
// fills for one key are coalesced into one origin request. The page is read up to maxEntryBytes, stored
// off the client's path, and delivered; what may not be shared streams to its own client only.
import { OriginError } from '../../core/errors';
import { canServeStaleOnError } from '../../core/policy';
import { sameVariant } from '../../core/variants';
import { fillShared } from '../fill';
import type { FetchOutcome } from '../context';
import type { StepName, Transaction } from '../transaction';
import { streamResponse } from '../stream';
import { originFailed } from './synth';

/** RFC 5861 §4: the errors stale-if-error covers. */
function isServerError(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
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

function useOutcome(tx: Transaction, outcome: FetchOutcome, mine: boolean): StepName {
  if (outcome.kind === 'page' && !mine && !sameVariant(outcome.entry, outcome.requestHeaders, tx.req.headers)) {
    // The fill this request joined fetched another Vary variant (RFC 9111 §4.1): it asks the origin itself.
    return 'pass';
  }
  if (mine && outcome.delivered === true) {
    // Streamed to this client as it came from the origin (fill.ts).
    if (outcome.kind === 'page') tx.entry = outcome.entry;
    else if (outcome.uncacheable) tx.ctx.uncacheable.mark(tx.key, Date.now());
    return 'done';
  }
  if (outcome.kind === 'page') {
    tx.entry = outcome.entry;
    if (outcome.revalidated === true) tx.status = 'REVALIDATED';
    return 'deliver';
  }
  const response = outcome.response;
  if (mine && outcome.uncacheable) tx.ctx.uncacheable.mark(tx.key, Date.now());
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

export function fetch(tx: Transaction): StepName | Promise<StepName> {
  const ctx = tx.ctx;
  // Hit-for-miss: this page was just found uncacheable; fetch it for this client alone, no waiting.
  if (ctx.uncacheable.has(tx.key, Date.now())) return 'pass';
  // A client that asked for the origin's word (honoured no-cache / max-age) joins no fill begun before it.
  if (ctx.opts.coalesce && !tx.revalidate) {
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
