// The load generator in a process of its own: the bench forks this file once and sends it jobs, so
// autocannon never shares an event loop with a server under test nor with the bench's own bookkeeping.
// A job's walk says which paths its requests take (data, not code, since it crosses the process line):
// the URL's own path, a list in turn, a new page every request, or Zipf-popular pages with a share of misses.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { runAutocannon } from '../src/cli/bench';
import type { BenchResult } from '../src/cli/bench-result';
import { track } from './procs';

export type Walk =
  | { readonly kind: 'hot' }
  | { readonly kind: 'list'; readonly paths: readonly string[] }
  /** `${prefix}${n}`: every request a page never asked for before (prefix unique to the job). */
  | { readonly kind: 'unique'; readonly prefix: string }
  /** `${prefix}${rank}` with P(rank) ∝ 1/rank^s over `pages`; a `missShare` of requests go to `${missPrefix}${n}`. */
  | { readonly kind: 'zipf'; readonly prefix: string; readonly pages: number; readonly s: number; readonly missShare: number; readonly missPrefix: string };

export interface LoadJob {
  readonly name: string;
  readonly url: string | readonly string[];
  readonly seconds: number;
  readonly connections: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly walk: Walk;
  /** Share of requests sent with Accept-Encoding: gzip (the others ask for identity). */
  readonly gzipShare?: number;
}

/** Cumulative Zipf weights over ranks 1..n, for a binary search per request. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** s;
  for (let i = 0; i < n; i++) cdf[i]! /= sum;
  return cdf;
}

function zipfRank(cdf: Float64Array): number {
  const u = Math.random();
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo + 1;
}

/** The per-request path function of a walk (undefined: the URL's own path). */
export function walker(job: LoadJob): ((headers: Record<string, string>) => string) | undefined {
  const w = job.walk;
  const gzip = job.gzipShare;
  let path: (() => string) | undefined;
  let n = 0;
  switch (w.kind) {
    case 'hot':
      break;
    case 'list': {
      const paths = w.paths;
      path = () => paths[n++ % paths.length]!;
      break;
    }
    case 'unique':
      path = () => `${w.prefix}${n++}`;
      break;
    case 'zipf': {
      const cdf = zipfCdf(w.pages, w.s);
      path = () => (Math.random() < w.missShare ? `${w.missPrefix}${n++}` : `${w.prefix}${zipfRank(cdf)}`);
      break;
    }
  }
  if (gzip === undefined) return path === undefined ? undefined : () => path();
  const base = new URL(typeof job.url === 'string' ? job.url : job.url[0]!);
  const own = base.pathname + base.search;
  return (headers) => {
    headers['accept-encoding'] = Math.random() < gzip ? 'gzip' : 'identity';
    return path === undefined ? own : path();
  };
}

export interface LoadGenerator {
  run(job: LoadJob): Promise<BenchResult>;
  close(): void;
}

interface Reply {
  readonly id: number;
  readonly result?: BenchResult;
  readonly error?: string;
}

/** Forks the load generator; jobs run one at a time, in the order given. */
export function startLoadGenerator(): LoadGenerator {
  const child: ChildProcess = track(fork(__filename, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const waiting = new Map<number, { resolve: (r: BenchResult) => void; reject: (e: Error) => void }>();
  let ids = 0;
  child.on('message', (m: Reply) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.result !== undefined) w?.resolve(m.result);
    else w?.reject(new Error(`load generator: ${m.error ?? 'no result'}`));
  });
  child.once('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`load generator exited (${code})`));
    waiting.clear();
  });
  return {
    run(job) {
      const id = ++ids;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.send({ id, job });
      });
    },
    close() {
      child.disconnect();
    },
  };
}

function serveJobs(): void {
  let queue = Promise.resolve();
  process.on('message', (m: { id: number; job: LoadJob }) => {
    queue = queue.then(async () => {
      try {
        const walk = walker(m.job);
        const result: BenchResult = await runAutocannon({
          name: m.job.name,
          url: m.job.url,
          seconds: m.job.seconds,
          connections: m.job.connections,
          headers: m.job.headers ?? {},
          ...(walk === undefined ? {} : { walk }),
        });
        process.send?.({ id: m.id, result });
      } catch (err) {
        process.send?.({ id: m.id, error: String(err) });
      }
    });
  });
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) serveJobs();
