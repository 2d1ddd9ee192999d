// The edge against Varnish on cached pages, as issue 17 measures it: a 10 KB page, both caches holding it,
// on their default compression (the edge stores it gzip; Varnish with beresp.do_gzip), for clients that send
// Accept-Encoding: gzip and for clients that send none (curl, health checks, wrk itself), which both caches
// must decode for. Two edge workers against Varnish (-s malloc, its default thread pools), wrk, interleaved
// rounds; each comparison is the median of the per-round ratios, with the p99s of the same runs.
// Usage (after npm run build; needs varnishd and wrk: apt-get install -y varnish wrk):
//   node dist/bench/varnish.js [--duration 5] [--rounds 5] [--connections 64] [--bytes 10240] [--workers 2]
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchResult } from '../src/cli/bench-result';
import { freePort, start, stopAll, stopOnInterrupt } from './procs';
import { interleave, medianRun, ratioOf } from './rounds';
import { PATH, startEdge, startOrigin } from './stack';
import { hasWrk, runWrk } from './wrk';

const HOST = 'bench.local';

interface Target {
  readonly name: string;
  readonly url: string;
  readonly headers: readonly string[];
}

async function startVarnish(originPort: number): Promise<{ port: number }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'epc-varnish-'));
  // varnishd reads the VCL and runs its workers as its own user (vcache), not the one starting it.
  chmodSync(dir, 0o755);
  const vcl = path.join(dir, 'bench.vcl');
  writeFileSync(
    vcl,
    `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${originPort}"; }
sub vcl_backend_response {
  set beresp.do_gzip = true;
  set beresp.ttl = 1h;
}
`,
  );
  await start('/usr/sbin/varnishd', ['-F', '-n', dir, '-a', `127.0.0.1:${port}`, '-f', vcl, '-s', 'malloc,256m'], port);
  return { port };
}

async function warm(url: string, headers: readonly string[]): Promise<void> {
  const h: Record<string, string> = { host: HOST };
  for (const line of headers) {
    const i = line.indexOf(':');
    h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  for (let i = 0; i < 5; i++) await (await fetch(url, { headers: h })).arrayBuffer();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '64' },
      bytes: { type: 'string', default: '10240' },
      workers: { type: 'string', default: '2' },
    },
  });
  if (!(await hasWrk())) throw new Error('wrk is not installed: apt-get install -y wrk');
  stopOnInterrupt();
  const seconds = Number(values.duration);
  const connections = Number(values.connections);
  const origin = await startOrigin(Number(values.bytes));
  const edge = await startEdge(origin.base, ['--workers', values.workers]);
  const varnish = await startVarnish(origin.port);
  const gzip = ['Accept-Encoding: gzip'];
  const edgeUrl = `${edge.base}${PATH}`;
  const varnishUrl = `http://127.0.0.1:${varnish.port}${PATH}`;
  const groups: Target[][] = [
    [
      { name: `edge ${values.workers} workers, gzip clients`, url: edgeUrl, headers: gzip },
      { name: 'Varnish, gzip clients', url: varnishUrl, headers: gzip },
    ],
    [
      { name: `edge ${values.workers} workers, identity clients`, url: edgeUrl, headers: [] },
      { name: 'Varnish, identity clients', url: varnishUrl, headers: [] },
    ],
  ];
  for (const g of groups) for (const t of g) await warm(t.url, t.headers);
  const turn = async (t: Target, round: number): Promise<BenchResult> => {
    await runWrk(t.name, t.url, 1, connections, { host: HOST, headers: t.headers }); // unrecorded warm-up
    const r = await runWrk(t.name, t.url, seconds, connections, { host: HOST, headers: t.headers });
    process.stderr.write(`round ${round + 1}: ${t.name}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}, non-2xx ${r.non2xx}\n`);
    return r;
  };
  const runs = await interleave(groups, Number(values.rounds), turn);
  process.stdout.write(`\n${values.bytes}-byte page, ${connections} connections, wrk, ${seconds} s runs, ${values.rounds} interleaved rounds\n`);
  process.stdout.write('| comparison | req/s ratio (median of rounds) | rounds | edge req/s | Varnish req/s | p99 edge / Varnish (ms) | p99 lower in |\n| --- | --- | --- | --- | --- | --- | --- |\n');
  for (let g = 0; g < groups.length; g++) {
    const rounds = runs[g]!;
    const ratio = ratioOf(rounds, 0, 1);
    const a = medianRun(rounds.map((r) => r[0]!));
    const b = medianRun(rounds.map((r) => r[1]!));
    const lower = rounds.filter((r) => r[0]!.p99 <= r[1]!.p99).length;
    process.stdout.write(
      `| ${groups[g]![0]!.name} / ${groups[g]![1]!.name} | ${ratio.median.toFixed(2)}x | ${ratio.rounds.map((x) => x.toFixed(2)).join(' ')} | ` +
        `${a.rps.toFixed(0)} | ${b.rps.toFixed(0)} | ${a.p99.toFixed(2)} / ${b.p99.toFixed(2)} | ${lower} of ${rounds.length} |\n`,
    );
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`varnish bench failed: ${String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
