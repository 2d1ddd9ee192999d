// The edge against Varnish on cached pages, as issue 17 measures it: a 10 KB page, both caches holding it,
// on their default compression (the edge stores it gzip; Varnish with beresp.do_gzip), for clients that send
// Accept-Encoding: gzip and for clients that send none (curl, health checks, wrk itself), which both caches
// must decode for; and with compression off on both (a second edge with --compression off, a second varnishd
// without beresp.do_gzip), identity clients, so both send the same identity bytes. Two edge workers against
// Varnish (-s malloc, its default thread pools), wrk, interleaved rounds; each comparison is the median of
// the per-round ratios, with the p99s of the same runs. --only picks the groups: gzip, identity, off, or
// default (gzip and identity); only the servers those groups need are started.
// Usage (after npm run build; needs varnishd and wrk: apt-get install -y varnish wrk):
//   node dist/bench/varnish.js [--duration 5] [--rounds 5] [--connections 64] [--bytes 10240] [--workers 2]
//                              [--only default,off]
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

const GROUPS = ['gzip', 'identity', 'off'] as const;
type Group = (typeof GROUPS)[number];

/** The groups --only names: gzip, identity, off, default (gzip and identity), comma-separated. */
function groupsOf(only: string): Set<Group> {
  const out = new Set<Group>();
  for (const word of only.split(',').map((w) => w.trim()).filter((w) => w !== '')) {
    if (word === 'default') {
      out.add('gzip');
      out.add('identity');
    } else if ((GROUPS as readonly string[]).includes(word)) out.add(word as Group);
    else throw new Error(`--only takes ${GROUPS.join(', ')} or default, got '${word}'`);
  }
  return out;
}

/** varnishd -s malloc in front of the origin; `gzip`: beresp.do_gzip (its default setup here), else the origin's bytes as sent. */
async function startVarnish(originPort: number, gzip: boolean): Promise<{ port: number }> {
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
${gzip ? '  set beresp.do_gzip = true;\n' : ''}  set beresp.ttl = 1h;
}
`,
  );
  await start('/usr/sbin/varnishd', ['-F', '-n', dir, '-a', `127.0.0.1:${port}`, '-f', vcl, '-s', 'malloc,256m'], port);
  return { port };
}

/** Asks for the page five times (stored, then hits); what the last answer was, as sent. */
async function warm(url: string, headers: readonly string[]): Promise<string> {
  // fetch would ask for gzip itself: an identity client says so.
  const h: Record<string, string> = { host: HOST, 'accept-encoding': 'identity' };
  for (const line of headers) {
    const i = line.indexOf(':');
    h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let last = '';
  for (let i = 0; i < 5; i++) {
    const res = await fetch(url, { headers: h });
    // fetch would decode a gzip body: its length as sent is content-length.
    last = `${res.status}, content-encoding ${res.headers.get('content-encoding') ?? 'none'}, ${res.headers.get('content-length') ?? '?'} bytes`;
    await res.arrayBuffer();
  }
  return last;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '64' },
      bytes: { type: 'string', default: '10240' },
      workers: { type: 'string', default: '2' },
      only: { type: 'string', default: 'gzip,identity,off' },
    },
  });
  const only = groupsOf(values.only);
  if (only.size === 0) throw new Error('--only names no group');
  if (!(await hasWrk())) throw new Error('wrk is not installed: apt-get install -y wrk');
  stopOnInterrupt();
  const seconds = Number(values.duration);
  const connections = Number(values.connections);
  const origin = await startOrigin(Number(values.bytes));
  const gzip = ['Accept-Encoding: gzip'];
  const groups: Target[][] = [];
  if (only.has('gzip') || only.has('identity')) {
    const edge = await startEdge(origin.base, ['--workers', values.workers]);
    const varnish = await startVarnish(origin.port, true);
    const edgeUrl = `${edge.base}${PATH}`;
    const varnishUrl = `http://127.0.0.1:${varnish.port}${PATH}`;
    if (only.has('gzip')) {
      groups.push([
        { name: `edge ${values.workers} workers, gzip clients`, url: edgeUrl, headers: gzip },
        { name: 'Varnish, gzip clients', url: varnishUrl, headers: gzip },
      ]);
    }
    if (only.has('identity')) {
      groups.push([
        { name: `edge ${values.workers} workers, identity clients`, url: edgeUrl, headers: [] },
        { name: 'Varnish, identity clients', url: varnishUrl, headers: [] },
      ]);
    }
  }
  if (only.has('off')) {
    // Both store and send the origin's identity bytes: the edge with --compression off, Varnish without do_gzip.
    const edge = await startEdge(origin.base, ['--workers', values.workers, '--compression', 'off']);
    const varnish = await startVarnish(origin.port, false);
    groups.push([
      { name: `edge ${values.workers} workers --compression off, identity clients`, url: `${edge.base}${PATH}`, headers: [] },
      { name: 'Varnish without do_gzip, identity clients', url: `http://127.0.0.1:${varnish.port}${PATH}`, headers: [] },
    ]);
  }
  for (const g of groups) for (const t of g) process.stderr.write(`warmed ${t.name}: ${await warm(t.url, t.headers)}\n`);
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
