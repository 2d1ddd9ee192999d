// deliver: a stored entry to the client (HIT, UPDATING, STALE, or the page a fill just fetched), with
// HEAD and 304 handled. UPDATING also starts the one background refresh for its key.
import { deliverDecoded, deliverEntry } from '../../core/deliver';
import type { FetchOutcome } from '../context';
import type { StepName, Transaction } from '../transaction';
import { acceptsEncoding } from '../../core/accept';
import { entryEncoding } from '../../core/compress';
import { ENTRY_NO_TRANSFORM } from '../../core/entry';
import { EntryDecodeError } from '../../core/errors';
import { fillShared } from '../fill';

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

/**
 * A stored entry Node refuses to write (a header value it rejects): deleted and counted, and this request
 * goes to the origin as a miss. Only for entries read from the cache; a page a fill just fetched came
 * from the origin's own headers, so a refusal there is a broken invariant (the pipeline answers 500).
 */
function brokenEntry(tx: Transaction, err: unknown): StepName {
  if (!(err instanceof EntryDecodeError) || tx.res.headersSent || (tx.status !== 'HIT' && tx.status !== 'UPDATING')) throw err;
  tx.ctx.cache.discard(tx.key, err);
  tx.entry = undefined;
  tx.status = 'MISS';
  return 'fetch';
}

function corruptBody(this: Transaction, err: Error): void {
  this.ctx.cache.discard(this.key, err);
}

export function deliver(tx: Transaction): StepName {
  const entry = tx.entry!;
  const coding = entryEncoding(entry);
  try {
    if (coding !== 'identity' && !acceptsEncoding(tx.req.headers['accept-encoding'], coding)) {
      if (((entry.flags ?? 0) & ENTRY_NO_TRANSFORM) !== 0) {
        // RFC 9110 §7.7 / RFC 9111 §5.2.2.6: a no-transform page is never decoded here; this client, which
        // does not take its coding, asks the origin itself.
        tx.status = 'MISS';
        return 'pass';
      }
      // Stored compressed, and this client takes only identity: decoded on the fly, streamed (nginx's
      // gunzip). A body that does not inflate ends the response and the entry is deleted.
      if (!deliverDecoded(tx.res, tx.req, entry, coding, tx.status, tx.now, corruptBody.bind(tx), tx.ctx.decoded)) {
        // A coding we cannot decode: ask the origin for this client instead.
        tx.status = 'MISS';
        return 'pass';
      }
    } else {
      deliverEntry(tx.res, tx.req, entry, tx.status, tx.now);
    }
  } catch (err) {
    return brokenEntry(tx, err);
  }
  if (tx.status === 'UPDATING') startRefresh(tx);
  return 'done';
}
