// deliver: a stored entry to the client (HIT, UPDATING, STALE, or the page a fill just fetched), with
// HEAD and 304 handled. UPDATING also starts the one background refresh for its key.
import { deliverDecoded, deliverEntry } from '../../core/deliver';
import type { FetchOutcome } from '../context';
import type { StepName, Transaction } from '../transaction';
import { acceptsEncoding } from '../../core/accept';
import { entryEncoding } from '../../core/compress';
import type { CacheEntry } from '../../core/entry';
import { fillShared } from './fetch';

function refreshDone(outcome: FetchOutcome): void {
  if (outcome.kind === 'own') outcome.response.body.dump().catch(refreshFailed);
}
function refreshFailed(): void {
  // The stale entry keeps being served; the origin failure was counted and logged by the origin pool.
}

function backgroundFill(this: Transaction): Promise<FetchOutcome> {
  // With the shared fill lock: one refresh per key across all edges and workers.
  return fillShared(this.ctx, this);
}

/** RFC 5861 §3: one refresh per key in this process, whoever else asks meanwhile is served stale. */
function startRefresh(tx: Transaction): void {
  const ctx = tx.ctx;
  if (ctx.inflight.pending(tx.key) !== undefined) return;
  ctx.inflight.run(tx.key, backgroundFill.bind(tx)).then(refreshDone, refreshFailed);
}

function write(tx: Transaction, entry: CacheEntry): void {
  deliverEntry(tx.res, tx.req, entry, tx.status, tx.now);
  if (tx.status === 'UPDATING') startRefresh(tx);
}

export function deliver(tx: Transaction): StepName {
  const entry = tx.entry!;
  const coding = entryEncoding(entry);
  if (coding !== 'identity' && !acceptsEncoding(tx.req.headers['accept-encoding'], coding)) {
    // Stored compressed, and this client takes only identity: decoded on the fly, streamed (nginx's gunzip).
    if (!deliverDecoded(tx.res, tx.req, entry, coding, tx.status, tx.now)) {
      // A coding we cannot decode: ask the origin for this client instead.
      tx.status = 'MISS';
      return 'pass';
    }
    if (tx.status === 'UPDATING') startRefresh(tx);
    return 'done';
  }
  write(tx, entry);
  return 'done';
}
