// deliver: a stored entry to the client (HIT, UPDATING, STALE, or the page a fill just fetched), with
// HEAD and 304 handled. UPDATING also starts the one background refresh for its key.
import { deliverEntry } from '../../core/deliver';
import type { FetchOutcome } from '../context';
import type { StepName, Transaction } from '../transaction';
import { fillFromOrigin } from './fetch';

function refreshDone(outcome: FetchOutcome): void {
  if (outcome.kind === 'own') outcome.response.body.dump().catch(refreshFailed);
}
function refreshFailed(): void {
  // The stale entry keeps being served; the origin failure was counted and logged by the origin pool.
}

function backgroundFill(this: Transaction): Promise<FetchOutcome> {
  return fillFromOrigin(this.ctx, this);
}

/** RFC 5861 §3: one refresh per key in this process, whoever else asks meanwhile is served stale. */
function startRefresh(tx: Transaction): void {
  const ctx = tx.ctx;
  if (ctx.inflight.pending(tx.key) !== undefined) return;
  ctx.inflight.run(tx.key, backgroundFill.bind(tx)).then(refreshDone, refreshFailed);
}

export function deliver(tx: Transaction): StepName {
  const req = tx.req;
  deliverEntry(
    tx.res,
    { method: req.method, ifNoneMatch: req.headers['if-none-match'], ifModifiedSince: req.headers['if-modified-since'] },
    tx.entry!,
    tx.status,
    tx.now,
  );
  if (tx.status === 'UPDATING') startRefresh(tx);
  return 'done';
}
