// One measured run and what it runs in: the bench's settings and shared servers (Context), a scenario's
// shape, and measure(), which runs a load job against a target with the edge's hit ratio (its /metrics)
// and the origin requests (counted at the origin) read around it.
import type { BenchResult } from '../src/cli/bench-result';
import type { ReportScenario } from '../src/cli/bench-report';
import type { LoadGenerator, LoadJob } from './load';
import { edgeCounts, originCount } from './stack';
import type { Edge, Server } from './stack';
import { runWrk, wrkScript } from './wrk';

export interface Settings {
  readonly seconds: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly connections: number;
  readonly bytes: number;
  readonly tool: 'autocannon' | 'wrk';
  readonly quick: boolean;
}

export interface Context {
  readonly settings: Settings;
  readonly load: LoadGenerator;
  readonly origin: Server;
  readonly map: Server;
  /** host:port of the shared memcached, when memcached is on the PATH. */
  readonly memcached: string | undefined;
  readonly scratch: string;
  log(line: string): void;
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly needsMemcached: boolean;
  run(ctx: Context): Promise<ReportScenario>;
}

/** What one run is measured against: a server, its edge admin port, and the origin behind it. */
export interface Target {
  readonly name: string;
  readonly server: Server;
  readonly edge?: Edge;
  /** The origin whose requests count for this target (the origin itself for "origin direct"). */
  readonly origin?: Server;
}

let tags = 0;
/** A tag unique to the bench process, for pages that must never have been asked for before. */
export const uniqueTag = (): string => `${process.pid.toString(36)}-${(tags++).toString(36)}`;

/** One run of `job` against `t`, with the edge's hit ratio and the origin requests counted around it. */
export async function measure(ctx: Context, t: Target, job: LoadJob): Promise<BenchResult> {
  const before = t.edge === undefined ? undefined : await edgeCounts(t.edge.adminPort);
  const originBefore = t.origin === undefined ? undefined : await originCount(t.origin.port);
  let r: BenchResult;
  const w = job.walk;
  if (ctx.settings.tool === 'wrk' && typeof job.url === 'string' && job.gzipShare === undefined && (w.kind === 'hot' || w.kind === 'list')) {
    r = await runWrk(job.name, job.url, job.seconds, job.connections, w.kind === 'list' ? { script: wrkScript(ctx.scratch, w.paths) } : {});
  } else {
    r = await ctx.load.run(job);
  }
  const after = t.edge === undefined ? undefined : await edgeCounts(t.edge.adminPort);
  const originAfter = t.origin === undefined ? undefined : await originCount(t.origin.port);
  return {
    ...r,
    ...(before === undefined || after === undefined
      ? {}
      : { hitRatio: after.total > before.total ? (after.hits - before.hits) / (after.total - before.total) : 0 }),
    ...(originBefore === undefined || originAfter === undefined ? {} : { originRequests: originAfter - originBefore }),
  };
}
