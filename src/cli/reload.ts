// Reload: how the primary replaces its workers with ones running a new configuration (and the code on
// disk), one at a time, so that a worker is always taking connections; and which options a reload cannot
// change (the listening sockets are the primary's, opened once).
import type { ResolvedEdgeOptions } from '../edge/options';

export interface WorkerSwap<W> {
  /** Starts a worker with the new configuration; resolves once it takes connections, rejects if it cannot. */
  start(): Promise<W>;
  /** Stops handing connections to an old worker, drains it (as SIGTERM does) and resolves once it is gone. */
  retire(worker: W): Promise<void>;
}

/**
 * Replaces `old` by `count` new workers: start one, wait until it is ready, then drain one old worker, and
 * so on (extra old workers are drained last; extra new ones started last). A new worker that does not
 * start stops the reload there: the old workers not yet drained keep serving.
 */
export async function replaceWorkers<W>(old: readonly W[], count: number, swap: WorkerSwap<W>): Promise<{ replaced: number; error?: string }> {
  let replaced = 0;
  for (let i = 0; i < Math.max(old.length, count); i++) {
    if (i < count) {
      try {
        await swap.start();
      } catch (err) {
        return { replaced, error: (err as Error).message };
      }
    }
    const w = old[i];
    if (w !== undefined) {
      await swap.retire(w);
      replaced++;
    }
  }
  return { replaced };
}

/** Options of the listening sockets, which the primary holds: a change to them needs a restart. */
const RESTART_ONLY = ['port', 'host', 'adminPort', 'adminHost'] as const;

/** The restart-only options that differ between the running and the re-read configuration. */
export function restartOnlyChanges(running: ResolvedEdgeOptions, next: ResolvedEdgeOptions): string[] {
  return RESTART_ONLY.filter((k) => running[k] !== next[k]);
}
