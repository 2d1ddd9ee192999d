// Hits as the number of cached pages grows (issue 17): from 1,000 to 1,000,000 distinct URLs, all cached,
// requested with Zipf popularity (exponent --zipf, 0.99 by default), so the popular pages stay in the L1
// and the tail is read from memcached. One memcached (--memcached-mb), the bench origin (a --bytes page for
// any path) and one edge (--workers 2, its default --memory unless given) in front of both. The largest N
// pages are first stored through the edge (wrk walking every path once: one miss each; the time it takes is
// printed), then for every N in --sizes a wrk run picks its paths from a Zipf distribution over the first N
// pages (a cumulative table built in each wrk thread, binary-searched per request), in interleaved rounds.
// Per run: req/s and latency from wrk, the edge's hit ratio and the share of hits answered by the L1 (its
// /metrics before and after), the requests that reached the origin (should be 0: every page is cached),
// and the resident memory of the edge's processes (VmRSS of the primary and its workers) after the run.
// Prints a table (req/s against the smallest N as the median of per-round ratios, with the rounds) and a
// curve, and writes bench/results/scale-<timestamp>.json. Clients send Accept-Encoding: gzip (browsers)
// unless --encoding identity.
// Usage (after npm run build; needs wrk and memcached):
//   node dist/bench/scale.js [--sizes 1000,10000,100000,1000000] [--duration 5] [--rounds 3] [--warmup 1]
//                            [--connections 64] [--bytes 2048] [--workers 2] [--memory SIZE] [--zipf 0.99]
//                            [--encoding gzip|identity] [--memcached-mb 2048] [--populate-connections 64]
//                            [--populate-timeout 1800]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../src/cli/bench-result';
import type { BenchResult } from '../src/cli/bench-result';
import { stop, stopAll, stopOnInterrupt, track } from './procs';
import { interleave, medianRun, ratioOf } from './rounds';
import { memcachedOnPath, originCount, startEdge, startMemcached, startOrigin } from './stack';
import { hasWrk, runWrk, WRK_THREAD_IDS } from './wrk';

const HOST = 'bench.local';
const PREFIX = '/scale/';
const RESULTS = path.join(__dirname, '..', '..', 'bench', 'results');

interface ScaleRun extends BenchResult {
  readonly size: number;
  readonly hitRatio: number;
  readonly originRequests: number;
  /** Hits answered from the L1 / all hits (L1 gets that hit over L1 and memcached gets that hit). */
  readonly l1Share: number;
  /** VmRSS of the edge's primary and its workers after the run, MB. */
  readonly rssMb: number;
  readonly rssEachMb: readonly number[];
  /** edge_cache_l1_bytes after the run (all workers), MB. */
  readonly l1Mb: number;
}

interface Counters {
  readonly hits: number;
  readonly total: number;
  readonly l1Hits: number;
  readonly l2Hits: number;
  readonly l1Bytes: number;
}

/** The edge's counters from its /metrics (summed over the workers by the primary). */
async function counters(adminPort: number): Promise<Counters> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  let hits = 0;
  let total = 0;
  let l1Hits = 0;
  let l2Hits = 0;
  let l1Bytes = 0;
  for (const line of text.split('\n')) {
    const value = (): number => Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('edge_cache_requests_total{')) {
      total += value();
      if (line.includes('status="HIT"')) hits += value();
    } else if (line.startsWith('edge_cache_store_ops_total{') && line.includes('op="get"') && line.includes('result="hit"')) {
      if (line.includes('tier="l1"')) l1Hits += value();
      else if (line.includes('tier="l2"')) l2Hits += value();
    } else if (line.startsWith('edge_cache_l1_bytes ')) l1Bytes = value();
  }
  return { hits, total, l1Hits, l2Hits, l1Bytes };
}

/** memcached's `stats` as name -> value. */
function memcachedStats(port: number): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write('stats\r\n'));
    let buf = '';
    c.setEncoding('utf8');
    c.setTimeout(5000, () => c.destroy(new Error('memcached stats timed out')));
    c.on('data', (d: string) => {
      buf += d;
      if (!buf.endsWith('END\r\n')) return;
      c.end();
      const out = new Map<string, string>();
      for (const line of buf.split('\r\n')) {
        const [stat, name, value] = line.split(' ');
        if (stat === 'STAT' && name !== undefined && value !== undefined) out.set(name, value);
      }
      resolve(out);
    });
    c.on('error', reject);
  });
}

/** VmRSS in MB of `pid` and of its children (the edge's primary and its workers). */
function rssOf(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    // no children (one worker runs in the primary)
  }
  return [pid, ...kids].map((p) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      return m === null ? 0 : Number(m[1]) / 1024;
    } catch {
      return 0;
    }
  });
}

/**
 * Walks PREFIX1..PREFIXn once over all wrk threads (thread t takes t, t+T, t+2T, ...); a thread that has
 * asked for all of its pages asks for its first one again (a hit) and stops.
 */
function populateScript(dir: string, n: number, threads: number): string {
  const file = path.join(dir, `populate-${n}.lua`);
  writeFileSync(
    file,
    `${WRK_THREAD_IDS}local id, k, done = 1, 0, false
function init(args)
  id = tonumber(wrk.thread:get("id")) or 1
end
function request()
  local i = id + k * ${threads}
  if i > ${n} then
    done = true
    i = id
  else
    k = k + 1
  end
  return wrk.format(nil, "${PREFIX}" .. i)
end
function response(status, headers, body)
  if done then wrk.thread:stop() end
end
`,
  );
  return file;
}

/** Picks PREFIX1..PREFIXn with Zipf popularity of exponent s: P(rank k) proportional to k^-s. */
function zipfScript(dir: string, n: number, s: number): string {
  const file = path.join(dir, `zipf-${n}.lua`);
  writeFileSync(
    file,
    `${WRK_THREAD_IDS}local n, cdf = ${n}, {}
function init(args)
  local id = tonumber(wrk.thread:get("id")) or 1
  math.randomseed(os.time() * 7919 + id * 104729)
  local sum = 0
  for k = 1, n do
    sum = sum + k ^ -${s}
    cdf[k] = sum
  end
  for k = 1, n do cdf[k] = cdf[k] / sum end
end
function request()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format(nil, "${PREFIX}" .. lo)
end
`,
  );
  return file;
}

/**
 * Stores pages 1..n through the edge: wrk walks them once, and is stopped (SIGINT) once the origin has
 * rendered n pages, or its count has not moved for 10 s, or after `timeoutS`.
 */
async function populate(
  edgeBase: string,
  originPort: number,
  script: string,
  n: number,
  connections: number,
  headers: readonly string[],
  timeoutS: number,
): Promise<{ seconds: number; rendered: number; wrkOutput: string }> {
  const before = await originCount(originPort);
  const args = ['-t', '2', '-c', String(connections), '-d', `${timeoutS}s`, '-H', `Host: ${HOST}`];
  for (const h of headers) args.push('-H', h);
  args.push('-s', script, edgeBase);
  const t0 = Date.now();
  const child = track(spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] }));
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let rendered = 0;
  let last = -1;
  let still = 0;
  let lastPrint = t0;
  for (;;) {
    const ended = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(r, 1000, false))]);
    rendered = (await originCount(originPort)) - before;
    still = rendered === last ? still + 1 : 0;
    last = rendered;
    if (Date.now() - lastPrint >= 10_000) {
      lastPrint = Date.now();
      const s = (Date.now() - t0) / 1000;
      process.stderr.write(`populate: ${rendered} of ${n} pages in ${s.toFixed(0)} s (${(rendered / s).toFixed(0)}/s)\n`);
    }
    if (ended || rendered >= n || still >= 10) break;
  }
  const seconds = (Date.now() - t0) / 1000;
  child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  await stop(child);
  return { seconds, rendered, wrkOutput: output };
}

const thousands = (x: number): string => Math.round(x).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '1000,10000,100000,1000000' },
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '64' },
      bytes: { type: 'string', default: '2048' },
      workers: { type: 'string', default: '2' },
      memory: { type: 'string' },
      zipf: { type: 'string', default: '0.99' },
      encoding: { type: 'string', default: 'gzip' },
      'memcached-mb': { type: 'string', default: '2048' },
      'populate-connections': { type: 'string', default: '64' },
      'populate-timeout': { type: 'string', default: '1800' },
    },
  });
  const sizes = values.sizes
    .split(',')
    .map((x) => Number(x.trim()))
    .sort((a, b) => a - b);
  if (sizes.length === 0 || sizes.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--sizes takes whole numbers, got '${values.sizes}'`);
  const zipf = Number(values.zipf);
  if (!(zipf > 0)) throw new Error(`--zipf must be a positive exponent, got '${values.zipf}'`);
  if (values.encoding !== 'gzip' && values.encoding !== 'identity') throw new Error(`--encoding is gzip or identity, got '${values.encoding}'`);
  if (!(await hasWrk())) throw new Error('wrk is not installed: apt-get install -y wrk');
  if (!memcachedOnPath()) throw new Error('memcached is not installed: apt-get install -y memcached');
  stopOnInterrupt();
  const seconds = Number(values.duration);
  const warmup = Number(values.warmup);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const largest = sizes[sizes.length - 1]!;
  const headers = values.encoding === 'gzip' ? ['Accept-Encoding: gzip'] : [];
  const dir = mkdtempSync(path.join(tmpdir(), 'epc-scale-'));

  const mc = await startMemcached(Number(values['memcached-mb']));
  const origin = await startOrigin(Number(values.bytes));
  const edgeFlags = ['--workers', values.workers, '--memcached', mc.address, ...(values.memory === undefined ? [] : ['--memory', values.memory])];
  const edge = await startEdge(origin.base, edgeFlags);
  const startedAt = new Date();

  process.stderr.write(`populate: storing ${largest} pages through the edge (${values['populate-connections']} connections)\n`);
  const pop = await populate(
    edge.base,
    origin.port,
    populateScript(dir, largest, 2),
    largest,
    Number(values['populate-connections']),
    headers,
    Number(values['populate-timeout']),
  );
  await new Promise((r) => setTimeout(r, 1000)); // stores finish off the client's path
  const stats = await memcachedStats(mc.port);
  const popLine =
    `populate: ${pop.rendered} of ${largest} pages rendered by the origin in ${pop.seconds.toFixed(1)} s ` +
    `(${(pop.rendered / pop.seconds).toFixed(0)} misses/s); memcached holds ${stats.get('curr_items') ?? '?'} items, ` +
    `${((Number(stats.get('bytes') ?? 0)) / 2 ** 20).toFixed(0)} MB, ${stats.get('evictions') ?? '?'} evictions`;
  process.stderr.write(`${popLine}\n`);
  if (pop.rendered < largest) process.stderr.write(`populate: WARNING ${largest - pop.rendered} pages never reached the origin; wrk said:\n${pop.wrkOutput}\n`);

  const scripts = new Map(sizes.map((n) => [n, zipfScript(dir, n, zipf)]));
  const pid = edge.child.pid!;
  const turn = async (n: number, round: number): Promise<BenchResult> => {
    const script = scripts.get(n)!;
    const o = { host: HOST, headers, script };
    if (warmup > 0) await runWrk(`N=${n}`, edge.base, warmup, connections, o); // unrecorded: the L1 takes this N's hot pages
    const c0 = await counters(edge.adminPort);
    const o0 = await originCount(origin.port);
    const r = await runWrk(`N=${n}`, edge.base, seconds, connections, o);
    const c1 = await counters(edge.adminPort);
    const o1 = await originCount(origin.port);
    const rssEachMb = rssOf(pid);
    const hits = c1.hits - c0.hits;
    const l1 = c1.l1Hits - c0.l1Hits;
    const run: ScaleRun = {
      ...r,
      size: n,
      hitRatio: hits / Math.max(1, c1.total - c0.total),
      originRequests: o1 - o0,
      l1Share: l1 / Math.max(1, l1 + c1.l2Hits - c0.l2Hits),
      rssMb: rssEachMb.reduce((a, b) => a + b, 0),
      rssEachMb,
      l1Mb: c1.l1Bytes / 2 ** 20,
    };
    process.stderr.write(
      `round ${round + 1}: N=${n}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(2)} ms, hits ${(run.hitRatio * 100).toFixed(1)} %, ` +
        `L1 ${(run.l1Share * 100).toFixed(1)} % of hits, origin requests ${run.originRequests}, errors ${r.errors}, non-2xx ${r.non2xx}, ` +
        `RSS ${run.rssMb.toFixed(0)} MB (${rssEachMb.map((x) => x.toFixed(0)).join(' + ')})\n`,
    );
    return run;
  };
  const runs = (await interleave([sizes], rounds, turn))[0]! as ScaleRun[][];

  const memory = values.memory ?? 'default (64m with memcached)';
  process.stdout.write(
    `\n${values.bytes}-byte pages, Zipf s=${zipf}, ${values.workers} edge workers, --memory ${memory}, memcached ${values['memcached-mb']} MB, ` +
      `${values.encoding} clients, ${connections} connections, wrk, ${seconds} s runs, ${rounds} interleaved rounds\n${popLine}\n\n`,
  );
  process.stdout.write(
    `| N pages | req/s | vs N=${thousands(sizes[0]!)} (median of rounds) | rounds | p50 / p99 ms | hit ratio | L1 share of hits | origin requests per run | edge RSS MB (all processes) | L1 MB (all workers) |\n` +
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  const rows = sizes.map((n, i) => {
    const mine = runs.map((r) => r[i]!);
    const m = medianRun(mine) as ScaleRun;
    const ratio = ratioOf(runs, i, 0);
    return { n, m, ratio, mine };
  });
  for (const { n, m, ratio, mine } of rows) {
    process.stdout.write(
      `| ${thousands(n)} | ${thousands(m.rps)} | ${ratio.median.toFixed(2)}x | ${ratio.rounds.map((x) => x.toFixed(2)).join(' ')} | ` +
        `${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} | ${(median(mine.map((r) => r.hitRatio)) * 100).toFixed(1)} % | ` +
        `${(median(mine.map((r) => r.l1Share)) * 100).toFixed(1)} % | ${mine.map((r) => r.originRequests).join(' ')} | ` +
        `${median(mine.map((r) => r.rssMb)).toFixed(0)} | ${median(mine.map((r) => r.l1Mb)).toFixed(0)} |\n`,
    );
  }
  const top = Math.max(...rows.map((r) => r.m.rps));
  process.stdout.write('\nreq/s (median run) by number of cached pages\n');
  for (const { n, m } of rows) {
    const bar = '#'.repeat(Math.max(1, Math.round((m.rps / top) * 50)));
    process.stdout.write(`${thousands(n).padStart(10)} | ${bar.padEnd(50)} ${thousands(m.rps)}\n`);
  }
  mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `scale-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'scale',
        startedAt: startedAt.toISOString(),
        settings: { ...values, sizes },
        populate: { pages: largest, rendered: pop.rendered, seconds: pop.seconds, memcached: Object.fromEntries(stats) },
        sizes: rows.map(({ n, m, ratio, mine }) => ({ n, medianRun: m, ratioToSmallest: ratio, runs: mine })),
      },
      null,
      2,
    ),
  );
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), file)}\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`scale bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
