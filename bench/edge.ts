// The edge hit-path benchmark, one run on one machine: a 10 KB page served by
//   the origin directly, a bare node:http Map server (Node's ceiling), the edge from L1 (1 and 2 workers),
//   nginx memcached_pass (2 workers, upstream keepalive, set_md5 key), the edge from memcached only, and a
//   bare node:http server doing one memjs GET per request. The memcached rows run twice: one hot page (the
//   edge joins concurrent reads of one key into one memcached GET) and --keys distinct pages in turn (no two
//   requests in flight share a key, so every request is its own GET).
// Every server sends the same identity bytes (the edge runs with --compression off), so all do the same job.
// Load: wrk when installed (steadier at these rates), else autocannon in a process of its own. The rounds,
// the load generator and wrk are the shared pieces of npm run bench (rounds.ts, load.ts, wrk.ts). Usage:
//   npm run build && node dist/bench/edge.js [--duration 10] [--rounds 3] [--connections 64] [--tool wrk|autocannon] [--bytes 10240] [--keys 2000] [--warmup 1] [--only 'NAME|NAME']
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createHash } from 'node:crypto';
import memjs from 'memjs';
import { formatTable, median } from '../src/cli/bench-result';
import type { BenchResult } from '../src/cli/bench-result';
import { startLoadGenerator } from './load';
import { freePort, start as startProcess, stopAll, stopOnInterrupt } from './procs';
import { interleave, medianRun } from './rounds';
import { page } from './servers';
import { hasWrk, runWrk, wrkScript } from './wrk';

const run = promisify(execFile);
const HOST = 'bench.local';
const PATH = '/article/1?ref=bench';
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const SERVERS = path.join(__dirname, 'servers.js');
/** CPU for single-process servers when pinning (the load generator gets the other one). */
let pinCpu: string | undefined;

/**
 * Starts a server on `cpu`: by default a single-process server's CPU (pinCpu), or null for the whole
 * machine. (null, not undefined: an undefined argument would take the default and pin it after all.)
 */
function start(cmd: string, args: string[], port: number, cpu: string | null = pinCpu ?? null): Promise<ChildProcess> {
  return startProcess(cmd, args, port, cpu ?? undefined);
}

/** The distinct pages of the many-keys rows: PATH with its number changed. */
function manyPaths(n: number): string[] {
  return Array.from({ length: n }, (_, i) => PATH.replace('/1?', `/${i + 1}?`));
}

/** A comparison: the targets whose names start with a and b, run back to back in every round. */
interface Pair {
  label: string;
  a: string;
  b: string;
}

interface Target {
  name: string;
  port: number;
  pinned: boolean;
  /** Walks through the many-keys paths instead of the one hot page. */
  many?: boolean;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '64' },
      tool: { type: 'string' },
      bytes: { type: 'string', default: '10240' },
      'skip-nginx': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      'no-pin': { type: 'boolean', default: false },
      only: { type: 'string' },
      keys: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '1' },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.duration);
  const connections = Number(values.connections);
  const bytes = Number(values.bytes);
  const paths = manyPaths(Math.max(1, Number(values.keys)));
  const scratch = mkdtempSync(path.join(tmpdir(), 'epc-bench-'));
  const tool = values.tool ?? ((await hasWrk()) ? 'wrk' : 'autocannon');
  // Single-process servers on CPU 1 and the load generator on CPU 0, so the scheduler's choices do not
  // decide the comparison; multi-process servers (2 workers, nginx) and their load share both CPUs.
  const canPin = !values['no-pin'] && tool === 'wrk' && (await run('taskset', ['-c', '1', 'true']).then(() => true, () => false));
  pinCpu = canPin ? '1' : undefined;
  const script = tool === 'wrk' ? wrkScript(scratch, paths) : undefined;
  const load = tool === 'wrk' ? undefined : startLoadGenerator();
  const measure = (t: Target, secs = seconds): Promise<BenchResult> => {
    const url = `http://127.0.0.1:${t.port}${PATH}`;
    if (load === undefined) {
      return runWrk(t.name, url, secs, connections, { host: HOST, pinned: t.pinned, ...(t.many === true && script !== undefined ? { script } : {}) });
    }
    return load.run({ name: t.name, url, seconds: secs, connections, headers: { host: HOST }, walk: t.many === true ? { kind: 'list', paths } : { kind: 'hot' } });
  };
  const get = (port: number, p: string): Promise<unknown> =>
    fetch(`http://127.0.0.1:${port}${p}`, { headers: { host: HOST } }).then((r) => r.arrayBuffer());
  const warm = async (port: number, all = false): Promise<void> => {
    for (let i = 0; i < 3; i++) await get(port, PATH);
    if (!all) return;
    // Every page of the many-keys rows stored (16 at a time), then read once more.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < paths.length; i += 16) await Promise.all(paths.slice(i, i + 16).map((p) => get(port, p)));
    }
  };

  // A memcached holding the raw entry nginx and the bare memjs server read: the body alone under
  // md5($host$request_uri). With pinning, the single-process rows' memcached shares CPU 0 with the load
  // generator; nginx gets one of its own on the whole machine, as its 2 workers are.
  const body = page(bytes);
  const memcached = async (cpu: string | null): Promise<string> => {
    const mcPort = await freePort();
    const mcArgs = ['-l', '127.0.0.1', '-p', String(mcPort), '-U', '0', '-m', '256', '-t', '2'];
    if (process.getuid?.() === 0) mcArgs.push('-u', 'root');
    await start('memcached', mcArgs, mcPort, cpu);
    const address = `127.0.0.1:${mcPort}`;
    const client = memjs.Client.create(address, { logger: { log() {} } });
    for (const p of [PATH, ...paths]) await client.set(createHash('md5').update(HOST + p).digest('hex'), body, { expires: 3600 });
    client.close();
    return address;
  };
  const mc = await memcached(canPin ? '0' : null);

  const originPort = await freePort();
  await start(process.execPath, [SERVERS, 'origin', String(originPort), String(bytes)], originPort);
  const origin = `http://127.0.0.1:${originPort}`;

  // Every target runs at once (idle ones cost nothing); the rounds below measure them in pairs.
  const targets: Target[] = [{ name: 'origin direct (node:http render)', port: originPort, pinned: canPin }];
  const mapPort = await freePort();
  await start(process.execPath, [SERVERS, 'map', String(mapPort), String(bytes)], mapPort);
  targets.push({ name: 'bare node:http Map server (ceiling)', port: mapPort, pinned: canPin });
  for (const workers of [1, 2]) {
    const port = await freePort();
    const args = [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--origin', origin, '--workers', String(workers), '--compression', 'off'];
    await start(process.execPath, args, port, workers === 1 ? (pinCpu ?? null) : null);
    await warm(port);
    targets.push({ name: `edge L1 hits, ${workers} worker${workers > 1 ? 's' : ''}`, port, pinned: canPin && workers === 1 });
  }
  if (!values['skip-nginx'] && existsSync('/usr/lib/nginx/modules/ngx_http_set_misc_module.so')) {
    const mcNginx = canPin ? await memcached(null) : mc;
    const port = await freePort();
    const dir = mkdtempSync(path.join(scratch, 'nginx-'));
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 2; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  upstream mc { server ${mcNginx}; keepalive 64; }
  server { listen 127.0.0.1:${port};
    location / { set_md5 $memcached_key "$host$request_uri"; memcached_pass mc; default_type "text/html; charset=utf-8"; } } }
`,
    );
    await start('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], port, null);
    targets.push({ name: 'nginx memcached_pass, 2 workers', port, pinned: false });
  }
  {
    const port = await freePort();
    await start(
      process.execPath,
      [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--origin', origin, '--memcached', mc, '--memory', '0', '--key-prefix', 'bench-envelope:', '--compression', 'off',
        // memjs's own default, as the bare server below uses: memcached shares its CPU with the load generator.
        '--memcached-timeout', '500'],
      port,
    );
    await warm(port, true);
    targets.push({ name: 'edge memcached-only hits, 1 worker', port, pinned: canPin });
    targets.push({ name: `edge memcached-only, ${paths.length} keys`, port, pinned: canPin, many: true });
  }
  const memjsPort = await freePort();
  await start(process.execPath, [SERVERS, 'memjs', String(memjsPort), mc], memjsPort);
  targets.push({ name: 'bare node:http + one memjs GET', port: memjsPort, pinned: canPin });
  targets.push({ name: `bare memjs GET, ${paths.length} keys`, port: memjsPort, pinned: canPin, many: true });
  // The comparisons, each a pair measured back to back in every round (order alternating, so neither side
  // always follows the other), each run after an unrecorded warm-up of the same target: a process idle
  // since its last turn runs its first second or so slower (V8 shrinks its young generation when idle), and
  // the pair should compare steady states, not which side met that first.
  const pairs: Pair[] = [
    { label: 'edge L1 (1 worker) / bare Map server', a: 'edge L1 hits, 1', b: 'bare node:http Map' },
    { label: 'edge L1 (2 workers) / nginx (2 workers)', a: 'edge L1 hits, 2', b: 'nginx' },
    { label: 'edge memcached-only / bare memjs server, one hot page', a: 'edge memcached-only hits', b: 'bare node:http + one memjs' },
    { label: `edge memcached-only / bare memjs server, ${paths.length} keys`, a: 'edge memcached-only, ', b: 'bare memjs GET, ' },
    { label: 'edge L1 (1 worker) / origin direct', a: 'edge L1 hits, 1', b: 'origin direct' },
  ];
  const find = (prefix: string): Target | undefined => targets.find((x) => x.name.startsWith(prefix));
  // --only 'A|B' runs just the pairs with a target (or a label) containing one of them.
  const only = values.only?.split('|');
  const chosen = pairs.filter((p) => {
    if (find(p.a) === undefined || find(p.b) === undefined) return false;
    return only === undefined || only.some((o) => p.label.includes(o) || find(p.a)!.name.includes(o) || find(p.b)!.name.includes(o));
  });
  const warmup = Number(values.warmup);
  const samples = new Map<string, BenchResult[]>();
  const turn = async (t: Target, round: number): Promise<BenchResult> => {
    if (warmup > 0) await measure(t, warmup);
    const r = await measure(t);
    process.stderr.write(`round ${round + 1}/${rounds} ${r.name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms\n`);
    samples.set(t.name, [...(samples.get(t.name) ?? []), r]);
    return r;
  };
  // Warm-up (JIT, connection pools) of every target before anything is recorded.
  for (const t of new Set(chosen.flatMap((p) => [find(p.a)!, find(p.b)!]))) await measure(t, seconds);
  const runs = await interleave(chosen.map((p) => [find(p.a)!, find(p.b)!]), rounds, turn);
  load?.close();
  const ratios = new Map(chosen.map((p, g) => [p, runs[g]!.map(([ra, rb]) => ({ rps: ra!.rps / rb!.rps, p99a: ra!.p99, p99b: rb!.p99 }))]));
  const rows: BenchResult[] = targets.flatMap((t) => {
    const mine = samples.get(t.name) ?? [];
    return mine.length === 0 ? [] : [medianRun(mine)];
  });

  process.stdout.write(
    `\n${bytes}-byte page, ${connections} connections, ${seconds}s per run after a ${warmup}s warm-up, median of the runs of ${rounds} rounds, ${tool}` +
      `${canPin ? ' (single-process servers on CPU 1, load on CPU 0; 2-worker servers and their load on both)' : ''}; ratio vs the first row\n${formatTable(rows)}\n`,
  );
  // Each comparison from its own pairs of runs: the median of the per-round ratios cancels the machine's
  // drift better than a ratio of two medians. The p99s are the medians of the pair's own runs.
  process.stdout.write(
    '\nmedian of per-round ratios (req/s), and p99s:' +
      chosen
        .map((p) => {
          const rs = ratios.get(p) ?? [];
          return (
            `\n${p.label}: ${median(rs.map((r) => r.rps)).toFixed(2)}x (rounds ${rs.map((r) => r.rps.toFixed(2)).join(' ')}); ` +
            `p99 ${median(rs.map((r) => r.p99a)).toFixed(2)} vs ${median(rs.map((r) => r.p99b)).toFixed(2)} ms, ` +
            `lower in ${rs.filter((r) => r.p99a < r.p99b).length} of ${rs.length} rounds`
          );
        })
        .join('') +
      '\n',
  );
}

stopOnInterrupt();
main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
