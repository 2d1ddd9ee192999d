// The driver: runs steps until one says 'done'. Not async: it chains onto a promise only when a step
// returns one, so an L1 hit completes synchronously inside the request event.
import type { StepName, Transaction } from './transaction';
import { deliver } from './steps/deliver';
import { fetch } from './steps/fetch';
import { hash } from './steps/hash';
import { lookup } from './steps/lookup';
import { pass } from './steps/pass';
import { recv } from './steps/recv';
import { synth } from './steps/synth';

type Step = (tx: Transaction) => StepName | Promise<StepName>;

const STEPS = {
  recv,
  hash,
  lookup,
  pass,
  fetch,
  deliver,
  synth,
} as const satisfies Record<Exclude<StepName, 'done'>, Step>;

function failed(tx: Transaction, err: unknown): void {
  // A broken invariant, not a network fault (those are handled in the steps): log it, answer 500.
  tx.ctx.log.error({ err, key: tx.key, url: tx.req.url }, 'pipeline step threw');
  tx.synthCode = 500;
  tx.synthMessage = 'Internal Server Error';
  try {
    synth(tx);
  } catch {
    tx.res.destroy();
  }
}

export function runPipeline(tx: Transaction, first: StepName): void {
  let step: StepName = first;
  try {
    while (step !== 'done') {
      const next = STEPS[step](tx);
      if (typeof next !== 'string') {
        next.then(
          (n) => runPipeline(tx, n),
          (err: unknown) => failed(tx, err),
        );
        return;
      }
      step = next;
    }
  } catch (err) {
    failed(tx, err);
    return;
  }
  tx.ctx.served[tx.status].inc();
}
