// The memcached-kill scenario: an edge reading every page from memcached (--memory 0) while its memcached
// is killed (SIGKILL) halfway through the run. Clients must not notice beyond speed: errors and non-2xx
// stay 0, the pages come from the origin instead (origin requests rise, the hit ratio falls).
import type { ReportScenario } from '../src/cli/bench-report';
import { stop } from './procs';
import type { Context, Scenario } from './measure';
import { measure } from './measure';
import { manyPaths, startEdge, startMemcached, warmPaths } from './stack';

const PAGES = 200;

export const memcachedKillScenario: Scenario = {
  name: 'memcached-kill',
  title: 'memcached killed during the run (errors must stay 0)',
  needsMemcached: true,
  async run(ctx: Context): Promise<ReportScenario> {
    const s = ctx.settings;
    const seconds = s.quick ? 4 : Math.max(6, s.seconds * 2);
    const mc = await startMemcached(64);
    const edge = await startEdge(ctx.origin.base, ['--memcached', mc.address, '--memory', '0', '--key-prefix', `kill-${process.pid}:`]);
    const paths = manyPaths(PAGES, '/kill/');
    try {
      await warmPaths(edge.base, paths);
      const killAt = seconds / 2;
      const timer = setTimeout(() => {
        ctx.log(`memcached-kill: SIGKILL to memcached at ${killAt}s`);
        void stop(mc.child, 'SIGKILL');
      }, killAt * 1000);
      const name = `edge on memcached, killed at ${killAt}s`;
      const r = await measure(ctx, { name, server: edge, edge, origin: ctx.origin }, {
        name,
        url: edge.base,
        seconds,
        connections: s.connections,
        walk: { kind: 'list', paths },
      }).finally(() => clearTimeout(timer));
      const failures = r.errors + r.non2xx > 0 ? [`${r.errors} errors and ${r.non2xx} non-2xx answers while memcached went away (must be 0)`] : [];
      return {
        name: 'memcached-kill',
        title: 'memcached killed during the run (errors must stay 0)',
        notes: [
          `${PAGES} pages in turn from memcached only (--memory 0), ${s.connections} connections for ${seconds}s; memcached gets SIGKILL at ${killAt}s`,
          failures.length === 0 ? 'errors and non-2xx: 0, as required' : `FAILED: ${failures[0]!}`,
        ],
        rows: [{ ...r, rpsRounds: [r.rps], ratios: {} }],
        ...(failures.length === 0 ? {} : { failures }),
      };
    } finally {
      await stop(edge.child);
      await stop(mc.child);
    }
  },
};
