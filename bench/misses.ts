// The miss path (issue 17): what the edge costs when nothing is cached yet, against the origin alone.
// 1. Throughput under a 100 % miss load: every request a URL never asked for (a wrk script counting per
//    thread: /miss/<run>-<thread>-<n>), wrk with --connections 32, against the origin directly and through
//    edges in front of it: --workers 1 and 2, each with memcached (the default setup) and with the embedded
//    store (no --memcached), default configuration otherwise. Two origins: the bench origin as is (a trivial
//    render) and the same origin burning --cpu-ms of CPU per render (a CMS's template work). Interleaved
//    rounds; each edge's req/s against the origin's, as the median of per-round ratios (the issue's target:
//    at least 0.9, the edge costing at most 10 % of what the origin serves), with p50/p99, the hit ratio
//    (0 %: every request a miss) and the requests that reached the origin.
// 2. Time to first byte on a miss, for an origin that sends its head and first 8 KiB at once and the rest of
//    a --slow-bytes page --slow-after ms later: a raw node:http client (a new connection each time, a URL
//    never asked for each sample) times the response head, the first body byte and the last, from the origin
//    directly and through the edge (memcached and embedded store, 1 worker), --samples samples each, in
//    alternating order, medians. An edge that streams while it stores sends the first byte when the origin
//    does; one that buffered the page would send it --slow-after ms later. Then the first sample's URL is
//    asked again, to show the page was stored.
// Usage (after npm run build; needs wrk, memcached for the memcached rows):
//   node dist/bench/misses.js [--duration 5] [--rounds 3] [--warmup 1] [--connections 32] [--bytes 10240]
//                             [--cpu-ms 1] [--origins plain,cpu] [--workers 1,2] [--stores memcached,embedded]
//                             [--encoding identity|gzip] [--samples 20] [--slow-bytes 102400]
//                             [--slow-after 500] [--ttfb-encodings identity,gzip] [--skip-load] [--skip-ttfb]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../src/cli/bench-result';
import type { BenchResult } from '../src/cli/bench-result';
import { stopAll, stopOnInterrupt } from './procs';
import { interleave, medianRun, ratioOf } from './rounds';
import { edgeCounts, memcachedOnPath, originCount, startEdge, startMemcached, startOrigin, startSlowOrigin } from './stack';
import type { Edge, Server } from './stack';
import { hasWrk, runWrk, WRK_THREAD_IDS } from './wrk';

const HOST = 'bench.local';
/** The issue's target: the edge serves at least this share of the origin's req/s on misses. */
const TARGET = 0.9;

interface Target {
  readonly name: string;
  readonly server: Server;
  readonly origin: Server;
  /** Set for an edge (its /metrics), absent for the origin served directly. */
  readonly edge?: Edge;
}

interface MissRun extends BenchResult {
  readonly hitRatio: number;
  readonly originRequests: number;
}

/** A wrk script whose every request is a URL never asked for: /miss/<run>-<thread>-<n>. */
function missScript(dir: string): string {
  const run = randomBytes(6).toString('hex');
  const file = path.join(dir, `miss-${run}.lua`);
  writeFileSync(
    file,
    `${WRK_THREAD_IDS}local id, k = 1, 0
function init(args)
  id = tonumber(wrk.thread:get("id")) or 1
end
function request()
  k = k + 1
  return wrk.format(nil, "/miss/${run}-" .. id .. "-" .. k)
end
`,
  );
  return file;
}

function list(flag: string, text: string, allowed: readonly string[]): string[] {
  const out = text.split(',').map((w) => w.trim()).filter((w) => w !== '');
  for (const w of out) if (!allowed.includes(w)) throw new Error(`--${flag} takes ${allowed.join(', ')}, got '${w}'`);
  if (out.length === 0) throw new Error(`--${flag} names nothing`);
  return out;
}

interface Timing {
  readonly headersMs: number;
  readonly firstByteMs: number;
  readonly totalMs: number;
  readonly bytes: number;
  readonly xCache: string;
}

/** One GET on a new connection: ms to the response head, to the first body byte, to the end. */
function timeGet(port: number, urlPath: string, encoding: string): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let headersMs = NaN;
    let firstByteMs = NaN;
    let bytes = 0;
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, agent: false, headers: { host: HOST, 'accept-encoding': encoding } },
      (res) => {
        headersMs = performance.now() - t0;
        res.on('data', (chunk: Buffer) => {
          if (bytes === 0) firstByteMs = performance.now() - t0;
          bytes += chunk.length;
        });
        res.on('end', () => {
          const xCache = res.headers['x-cache'];
          resolve({ headersMs, firstByteMs, totalMs: performance.now() - t0, bytes, xCache: typeof xCache === 'string' ? xCache : '-' });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${urlPath} took over 10 s`)));
    req.on('error', reject);
  });
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');

async function loadPart(values: Record<string, string | boolean | undefined>, mc: Server | undefined): Promise<void> {
  const origins = list('origins', String(values.origins), ['plain', 'cpu']);
  const workers = list('workers', String(values.workers), ['1', '2', '3', '4']);
  const stores = list('stores', String(values.stores), ['memcached', 'embedded']).filter((s) => s !== 'memcached' || mc !== undefined);
  const cpuMs = Number(values['cpu-ms']);
  const bytes = Number(values.bytes);
  const seconds = Number(values.duration);
  const warmup = Number(values.warmup);
  const connections = Number(values.connections);
  const headers = values.encoding === 'gzip' ? ['Accept-Encoding: gzip'] : [];
  const dir = mkdtempSync(path.join(tmpdir(), 'epc-misses-'));
  const groups: Target[][] = [];
  const labels: string[] = [];
  for (const kind of origins) {
    const origin = kind === 'cpu' ? await startOrigin(bytes, 3600, 0, cpuMs) : await startOrigin(bytes);
    labels.push(kind === 'cpu' ? `bench origin burning ${cpuMs} ms of CPU per render` : 'bench origin (trivial render)');
    const group: Target[] = [{ name: 'origin direct', server: origin, origin }];
    for (const store of stores) {
      for (const w of workers) {
        const flags = ['--workers', w, ...(store === 'memcached' ? ['--memcached', (mc as Server & { address: string }).address] : [])];
        const edge = await startEdge(origin.base, flags);
        group.push({ name: `edge ${w} worker${w === '1' ? '' : 's'}, ${store === 'memcached' ? 'memcached' : 'embedded store'}`, server: edge, origin, edge });
      }
    }
    groups.push(group);
  }
  const turn = async (t: Target, round: number): Promise<BenchResult> => {
    const o = { host: HOST, headers };
    if (warmup > 0) await runWrk(t.name, t.server.base, warmup, connections, { ...o, script: missScript(dir) }); // unrecorded, misses too
    const c0 = t.edge === undefined ? undefined : await edgeCounts(t.edge.adminPort);
    const o0 = await originCount(t.origin.port);
    const r = await runWrk(t.name, t.server.base, seconds, connections, { ...o, script: missScript(dir) });
    const c1 = t.edge === undefined ? undefined : await edgeCounts(t.edge.adminPort);
    const o1 = await originCount(t.origin.port);
    const run: MissRun = {
      ...r,
      hitRatio: c0 === undefined || c1 === undefined ? NaN : (c1.hits - c0.hits) / Math.max(1, c1.total - c0.total),
      originRequests: o1 - o0,
    };
    process.stderr.write(
      `round ${round + 1}: ${t.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ` +
        `hits ${Number.isNaN(run.hitRatio) ? '-' : `${(run.hitRatio * 100).toFixed(1)} %`}, origin requests ${run.originRequests} of ${r.requests}, ` +
        `errors ${r.errors}, non-2xx ${r.non2xx}\n`,
    );
    return run;
  };
  const runs = await interleave(groups, Number(values.rounds), turn);
  process.stdout.write(
    `\n100 % misses: ${bytes}-byte page, every request a new URL, ${values.encoding} clients, ${connections} connections, wrk, ` +
      `${seconds} s runs, ${values.rounds} interleaved rounds; target: edge >= ${TARGET}x the origin direct\n` +
      '(origin requests may exceed the requests wrk counts by those in flight when it stops, up to one per connection per run)\n',
  );
  for (let g = 0; g < groups.length; g++) {
    const rounds = runs[g]! as MissRun[][];
    process.stdout.write(
      `\n${labels[g]}\n| target | req/s | vs origin direct (median of rounds) | rounds | >= ${TARGET}x | p50 / p99 ms | hit ratio | origin requests / requests | errors, non-2xx |\n` +
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
    );
    for (let i = 0; i < groups[g]!.length; i++) {
      const mine = rounds.map((r) => r[i]!);
      const m = medianRun(mine) as MissRun;
      const ratio = ratioOf(rounds, i, 0);
      const sum = (f: (r: MissRun) => number): number => mine.reduce((a, r) => a + f(r), 0);
      process.stdout.write(
        `| ${groups[g]![i]!.name} | ${fmt(m.rps)} | ${i === 0 ? '1.00x' : `${ratio.median.toFixed(2)}x`} | ${ratio.rounds.map((x) => x.toFixed(2)).join(' ')} | ` +
          `${i === 0 ? '-' : ratio.median >= TARGET ? 'yes' : 'no'} | ${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} | ` +
          `${Number.isNaN(m.hitRatio) ? '-' : `${(median(mine.map((r) => r.hitRatio)) * 100).toFixed(1)} %`} | ` +
          `${fmt(sum((r) => r.originRequests))} / ${fmt(sum((r) => r.requests))} | ${sum((r) => r.errors)}, ${sum((r) => r.non2xx)} |\n`,
      );
    }
  }
}

async function ttfbPart(values: Record<string, string | boolean | undefined>, mc: (Server & { address: string }) | undefined): Promise<void> {
  const encodings = list('ttfb-encodings', String(values['ttfb-encodings']), ['identity', 'gzip']);
  const samples = Number(values.samples);
  const slowBytes = Number(values['slow-bytes']);
  const slowAfter = Number(values['slow-after']);
  const origin = await startSlowOrigin(slowBytes, slowAfter);
  const targets: { name: string; port: number }[] = [{ name: 'origin direct', port: origin.port }];
  if (mc !== undefined) targets.push({ name: 'edge 1 worker, memcached', port: (await startEdge(origin.base, ['--memcached', mc.address])).port });
  targets.push({ name: 'edge 1 worker, embedded store', port: (await startEdge(origin.base, [])).port });
  const run = randomBytes(6).toString('hex');
  const results = new Map<string, Timing[]>();
  const key = (t: number, enc: string): string => `${t}/${enc}`;
  for (let i = 0; i < samples; i++) {
    for (const enc of encodings) {
      const order = targets.map((_, t) => t);
      if (i % 2 === 1) order.reverse();
      for (const t of order) {
        const timing = await timeGet(targets[t]!.port, `/ttfb/${run}-${t}-${enc}-${i}`, enc);
        results.set(key(t, enc), [...(results.get(key(t, enc)) ?? []), timing]);
      }
    }
  }
  process.stdout.write(
    `\nTime to first byte on a miss: a ${slowBytes}-byte page whose head and first 8 KiB leave the origin at once and the rest ` +
      `${slowAfter} ms later; a new connection and a new URL per sample, ${samples} samples per row, medians (ms)\n` +
      '| target | client | head | first body byte | last byte | first byte minus origin direct | bytes received | X-Cache | the same URLs again: stored? |\n' +
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  for (const enc of encodings) {
    const directFirst = median(results.get(key(0, enc))!.map((x) => x.firstByteMs));
    for (let t = 0; t < targets.length; t++) {
      const rs = results.get(key(t, enc))!;
      const first = median(rs.map((x) => x.firstByteMs));
      // Every sample's page asked for again: a HIT where the edge stored what it sent.
      const again: Timing[] = [];
      if (t > 0) for (let i = 0; i < samples; i++) again.push(await timeGet(targets[t]!.port, `/ttfb/${run}-${t}-${enc}-${i}`, enc));
      const hits = again.filter((x) => x.xCache === 'HIT');
      const xc = [...new Set(rs.map((x) => x.xCache))].join(', ');
      process.stdout.write(
        `| ${targets[t]!.name} | ${enc} | ${median(rs.map((x) => x.headersMs)).toFixed(1)} | ${first.toFixed(1)} | ` +
          `${median(rs.map((x) => x.totalMs)).toFixed(1)} | ${t === 0 ? '-' : `${(first - directFirst).toFixed(1)}`} | ` +
          `${fmt(median(rs.map((x) => x.bytes)))} | ${xc} | ` +
          `${t === 0 ? '-' : `${hits.length} of ${samples} HIT${hits.length > 0 ? `, ${median(hits.map((x) => x.totalMs)).toFixed(1)} ms` : ''}`} |\n`,
      );
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '32' },
      bytes: { type: 'string', default: '10240' },
      'cpu-ms': { type: 'string', default: '1' },
      origins: { type: 'string', default: 'plain,cpu' },
      workers: { type: 'string', default: '1,2' },
      stores: { type: 'string', default: 'memcached,embedded' },
      encoding: { type: 'string', default: 'identity' },
      samples: { type: 'string', default: '20' },
      'slow-bytes': { type: 'string', default: '102400' },
      'slow-after': { type: 'string', default: '500' },
      'ttfb-encodings': { type: 'string', default: 'identity,gzip' },
      'skip-load': { type: 'boolean', default: false },
      'skip-ttfb': { type: 'boolean', default: false },
    },
  });
  if (values.encoding !== 'gzip' && values.encoding !== 'identity') throw new Error(`--encoding is gzip or identity, got '${values.encoding}'`);
  if (!values['skip-load'] && !(await hasWrk())) throw new Error('wrk is not installed: apt-get install -y wrk');
  stopOnInterrupt();
  const mc = memcachedOnPath() ? await startMemcached(1024) : undefined;
  if (mc === undefined) process.stderr.write('memcached is not on the PATH: the memcached rows are skipped\n');
  if (!values['skip-load']) await loadPart(values, mc);
  if (!values['skip-ttfb']) await ttfbPart(values, mc);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`misses bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
