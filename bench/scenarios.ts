// The scenarios of `npm run bench`, each bounded in time, each a table. Most compare an edge with the
// origin served directly and with the bare node:http Map server (Node's ceiling), in interleaved rounds;
// the herd and the memcached kill are their own (bench/herd.ts, bench/memcached-kill.ts).
import type { ReportRow } from '../src/cli/bench-report';
import { herdScenario } from './herd';
import type { LoadJob, Walk } from './load';
import { measure, uniqueTag } from './measure';
import type { Context, Scenario, Target } from './measure';
import { memcachedKillScenario } from './memcached-kill';
import { interleave, medianRun, ratioOf } from './rounds';
import { manyPaths, PATH, startEdge, warmPaths } from './stack';
import type { Edge } from './stack';

interface Compared {
  readonly name: string;
  readonly title: string;
  readonly notes: readonly string[];
  readonly needsMemcached: boolean;
  /** The edge under test (started once per bench run). */
  edge(ctx: Context): Promise<Edge>;
  /** The requests' walk; `tag` is new for every run. */
  walk(tag: string): Walk;
  readonly gzipShare?: number;
  /** Paths stored through the edge before anything is measured. */
  readonly warmPaths?: readonly string[];
}

/** A scenario comparing one edge with origin direct and the Map ceiling, in interleaved rounds. */
function compared(c: Compared): Scenario {
  return {
    name: c.name,
    title: c.title,
    needsMemcached: c.needsMemcached,
    async run(ctx) {
      const s = ctx.settings;
      const edge = await c.edge(ctx);
      if (c.warmPaths !== undefined) await warmPaths(edge.base, c.warmPaths);
      const targets: Target[] = [
        { name: 'origin direct (node:http render)', server: ctx.origin, origin: ctx.origin },
        { name: 'bare node:http Map server (ceiling)', server: ctx.map },
        { name: 'edge', server: edge, edge, origin: ctx.origin },
      ];
      const job = (t: Target, seconds: number): LoadJob => ({
        name: t.name,
        url: t.server.base + PATH,
        seconds,
        connections: s.connections,
        walk: c.walk(uniqueTag()),
        ...(c.gzipShare === undefined ? {} : { gzipShare: c.gzipShare }),
      });
      // Each run after an unrecorded warm-up of the same target: a process idle since its last turn runs
      // its first second or so slower (V8 shrinks its young generation when idle), whichever it is.
      // And before any round, one longer warm-up of each (JIT, connection pools, the pages stored).
      for (const t of targets) await measure(ctx, t, job(t, Math.max(1, s.warmup)));
      const runs = await interleave([targets], s.rounds, async (t, round) => {
        if (s.warmup > 0) await measure(ctx, t, job(t, s.warmup));
        const r = await measure(ctx, t, job(t, s.seconds));
        ctx.log(`${c.name} round ${round + 1}/${s.rounds} ${t.name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms errors ${r.errors + r.non2xx}`);
        return r;
      });
      const rounds = runs[0]!;
      const rows: ReportRow[] = targets.map((_, i) => ({
        ...medianRun(rounds.map((r) => r[i]!)),
        rpsRounds: rounds.map((r) => r[i]!.rps),
        ratios: { 'vs origin': ratioOf(rounds, i, 0), 'vs Map ceiling': ratioOf(rounds, i, 1) },
      }));
      const rowErrors = rows.filter((r) => r.errors > 0).map((r) => `${r.name}: ${r.errors} errors`);
      return {
        name: c.name,
        title: c.title,
        notes: [
          ...c.notes,
          `${s.bytes}-byte page, ${s.connections} connections, ${s.seconds}s per run after a ${s.warmup}s warm-up, ${s.rounds} rounds in alternating order; ` +
            'each row is its median run, each ratio the median of the per-round ratios',
        ],
        rows,
        ...(rowErrors.length === 0 ? {} : { failures: rowErrors }),
      };
    },
  };
}

/** Edges shared by several scenarios, each started the first time one needs it. */
const edges = new Map<string, Promise<Edge>>();
function sharedEdge(key: string, flags: (ctx: Context) => string[]): (ctx: Context) => Promise<Edge> {
  return (ctx) => {
    let e = edges.get(key);
    if (e === undefined) {
      e = startEdge(ctx.origin.base, [...flags(ctx), '--key-prefix', `bench-${key}-${process.pid}:`]);
      edges.set(key, e);
    }
    return e;
  };
}
const withMemcached = (ctx: Context): string[] => (ctx.memcached === undefined ? [] : ['--memcached', ctx.memcached]);

const MANY = 2000;
const MIX_PAGES = 10000;

export const SCENARIOS: readonly Scenario[] = [
  compared({
    name: 'l1-hot',
    title: 'one hot page from the in-process L1',
    notes: ['edge --compression off (every server sends the same identity bytes)'],
    needsMemcached: false,
    edge: sharedEdge('l1', (ctx) => [...withMemcached(ctx), '--compression', 'off']),
    walk: () => ({ kind: 'hot' }),
  }),
  compared({
    name: 'memcached-hot',
    title: 'one hot page from memcached only (--memory 0)',
    notes: ['edge --memory 0 --compression off --memcached-timeout 500 (memcached shares the CPUs with the load generator)'],
    needsMemcached: true,
    edge: sharedEdge('mc', (ctx) => [...withMemcached(ctx), '--memory', '0', '--compression', 'off', '--memcached-timeout', '500']),
    walk: () => ({ kind: 'hot' }),
  }),
  compared({
    name: 'memcached-2000',
    title: `${MANY} distinct pages in turn from memcached only`,
    notes: ['no two requests in flight share a key, so every request is a memcached GET of its own'],
    needsMemcached: true,
    edge: sharedEdge('mc', (ctx) => [...withMemcached(ctx), '--memory', '0', '--compression', 'off', '--memcached-timeout', '500']),
    walk: () => ({ kind: 'list', paths: manyPaths(MANY) }),
    warmPaths: manyPaths(MANY),
  }),
  compared({
    name: 'cold-misses',
    title: 'cold misses: every request a page never asked for',
    notes: ['edge with its defaults (gzip stored); each miss is fetched, compressed, stored and delivered'],
    needsMemcached: false,
    edge: sharedEdge('default', withMemcached),
    walk: (tag) => ({ kind: 'unique', prefix: `/cold/${tag}/` }),
  }),
  compared({
    name: 'mix',
    title: `realistic mix: ${MIX_PAGES.toLocaleString('en')} pages, Zipf popularity, 3 % misses, gzip and identity clients`,
    notes: ['popularity 1/rank (s = 1); 3 % of requests go to pages never asked for; half the requests accept gzip, half identity'],
    needsMemcached: false,
    edge: sharedEdge('default', withMemcached),
    walk: (tag) => ({ kind: 'zipf', prefix: '/mix/', pages: MIX_PAGES, s: 1, missShare: 0.03, missPrefix: `/miss/${tag}/` }),
    gzipShare: 0.5,
  }),
  herdScenario,
  memcachedKillScenario,
];
