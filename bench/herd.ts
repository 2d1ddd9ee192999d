// The thundering-herd scenario: many clients on one page that expires every second, behind a slow origin
// (100 ms a render). With coalescing on, each expiry costs one origin request; off (--coalesce false),
// every waiting client makes its own. With memcached, two edges share it, so the cross-edge lock is
// measured too. Part of `npm run bench` (--only herd); alone:
//   npm run build && node dist/bench/herd.js [--duration 10] [--connections 200]
import { parseArgs } from 'node:util';
import { formatReport, machineInfo } from '../src/cli/bench-report';
import type { ReportRow, ReportScenario } from '../src/cli/bench-report';
import { startLoadGenerator } from './load';
import { stop, stopAll, stopOnInterrupt } from './procs';
import type { Context, Scenario } from './measure';
import { edgeCounts, memcachedOnPath, originCount, startEdge, startMemcached, startOrigin } from './stack';
import type { Edge } from './stack';

export async function runHerd(ctx: Pick<Context, 'load' | 'memcached' | 'log'>, seconds: number, connections: number): Promise<ReportScenario> {
  const origin = await startOrigin(8192, 1, 100);
  const edgeCount = ctx.memcached === undefined ? 1 : 2;
  const rows: ReportRow[] = [];
  try {
    for (const coalesce of ['true', 'false']) {
      const edges: Edge[] = [];
      for (let i = 0; i < edgeCount; i++) {
        edges.push(
          await startEdge(origin.base, [
            ...(ctx.memcached === undefined ? [] : ['--memcached', ctx.memcached]),
            '--coalesce', coalesce, '--stale-if-error', '0', '--key-prefix', `herd-${coalesce}-${process.pid}:`, '--origin-connections', '512',
          ]),
        );
      }
      try {
        const counts = (): Promise<{ hits: number; total: number }[]> => Promise.all(edges.map((e) => edgeCounts(e.adminPort)));
        const sum = (cs: { hits: number; total: number }[]): { hits: number; total: number } =>
          cs.reduce((a, c) => ({ hits: a.hits + c.hits, total: a.total + c.total }), { hits: 0, total: 0 });
        const before = sum(await counts());
        const originBefore = await originCount(origin.port);
        const name = `coalescing ${coalesce === 'true' ? 'on' : 'off'}${edgeCount > 1 ? ' (2 edges sharing memcached)' : ''}`;
        // The clients spread over the edges, all on the one page at once.
        const r = await ctx.load.run({ name, url: edges.map((e) => `${e.base}/hot`), seconds, connections, walk: { kind: 'hot' } });
        const after = sum(await counts());
        const originRequests = (await originCount(origin.port)) - originBefore;
        ctx.log(`herd ${name}: ${originRequests} origin requests for ${r.requests} client requests, errors ${r.errors + r.non2xx}`);
        rows.push({
          ...r,
          hitRatio: after.total > before.total ? (after.hits - before.hits) / (after.total - before.total) : 0,
          originRequests,
          rpsRounds: [r.rps],
          ratios: {},
        });
      } finally {
        await Promise.all(edges.map((e) => stop(e.child)));
      }
    }
  } finally {
    await stop(origin.child);
  }
  return {
    name: 'herd',
    title: 'thundering herd on a page that expires every second: origin requests with coalescing on and off',
    notes: [
      `${connections} clients on one page (max-age=1) for ${seconds}s, origin rendering in 100 ms, --stale-if-error 0; ` +
        `with coalescing on, about one origin request per second per edge is the ideal (${seconds}${edgeCount > 1 ? ` to ${seconds * 2}` : ''} here)`,
      ...(edgeCount === 1 ? ['memcached is not on the PATH: one edge, coalescing in process only'] : []),
    ],
    rows,
  };
}

export const herdScenario: Scenario = {
  name: 'herd',
  title: 'thundering herd on an expiring page, coalescing on vs off',
  needsMemcached: false,
  run: (ctx) => runHerd(ctx, ctx.settings.quick ? 3 : 8, ctx.settings.quick ? 100 : 200),
};

async function main(): Promise<void> {
  stopOnInterrupt();
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '200' } } });
  const mc = memcachedOnPath() ? await startMemcached(64) : undefined;
  const load = startLoadGenerator();
  const startedAt = new Date().toISOString();
  const scenario = await runHerd({ load, memcached: mc?.address, log: (l) => process.stderr.write(`${l}\n`) }, Number(values.duration), Number(values.connections));
  load.close();
  process.stdout.write(
    `\n${formatReport({
      kind: 'edge-page-cache-bench', version: 1, startedAt, finishedAt: new Date().toISOString(), command: process.argv.join(' '),
      commit: null, machine: machineInfo(), settings: {}, scenarios: [scenario],
    })}\n`,
  );
}

if (require.main === module) {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`herd bench failed: ${String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => stopAll());
}
