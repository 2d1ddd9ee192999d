// npm run bench: the load-testing kit end to end. Starts what it needs on loopback (memcached when it is on
// the PATH, the bench origin, the bare node:http Map server, the edges), runs the scenarios one after
// another with autocannon in a process of its own, stops everything it started (also on Ctrl-C and on
// failure), prints one table per scenario and writes bench/results/<timestamp>.json and .html. Usage:
//   npm run bench [-- --quick] [--only NAME[,NAME]] [--baseline bench/results/OLD.json] [--tool wrk]
//                 [--duration 5] [--rounds 3] [--warmup 1] [--connections 64] [--bytes 10240]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compareReports, formatChanges, formatReport, machineInfo, parseReport, renderHtml } from '../src/cli/bench-report';
import type { BenchReport, ReportScenario } from '../src/cli/bench-report';
import { startLoadGenerator } from './load';
import type { Context, Settings } from './measure';
import { stopAll, stopOnInterrupt } from './procs';
import { SCENARIOS } from './scenarios';
import { memcachedOnPath, startMap, startMemcached, startOrigin } from './stack';
import { hasWrk } from './wrk';

const ROOT = path.join(__dirname, '..', '..');
export const RESULTS = path.join(ROOT, 'bench', 'results');

class UsageError extends Error {}

function number(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${flag} must be a number from ${min} to ${max}, got '${v}'`);
  return n;
}

function commit(): string | null {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha} (with uncommitted changes)` : sha;
  } catch {
    return null;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      tool: { type: 'string', default: 'autocannon' },
      baseline: { type: 'string' },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '64' },
      bytes: { type: 'string', default: '10240' },
    },
    strict: true,
  });
  const quick = values.quick;
  const tool = values.tool;
  if (tool !== 'autocannon' && tool !== 'wrk') throw new UsageError(`--tool must be autocannon or wrk, got '${tool}'`);
  if (tool === 'wrk' && !(await hasWrk())) throw new UsageError('--tool wrk: wrk is not installed (autocannon, the default, needs nothing)');
  const settings: Settings = {
    seconds: number('duration', values.duration ?? (quick ? '2' : '5'), 0.5, 600),
    rounds: number('rounds', values.rounds ?? (quick ? '2' : '3'), 1, 50),
    warmup: number('warmup', values.warmup ?? (quick ? '0.5' : '1'), 0, 60),
    connections: number('connections', values.connections, 1, 10000),
    bytes: number('bytes', values.bytes, 64, 1 << 20),
    tool,
    quick,
  };
  const names = SCENARIOS.map((s) => s.name);
  const only = values.only?.split(/[,|]/).map((s) => s.trim());
  const unknown = only?.filter((o) => !names.includes(o)) ?? [];
  if (unknown.length > 0) throw new UsageError(`--only: no scenario '${unknown.join("', '")}'; the scenarios are ${names.join(', ')}`);
  const before = values.baseline === undefined ? undefined : parseReport(readFileSync(values.baseline, 'utf8'), values.baseline);

  const startedAt = new Date();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const hasMemcached = memcachedOnPath();
  if (!hasMemcached) log('memcached is not on the PATH: its scenarios are skipped (apt-get install memcached to run them)');
  const mc = hasMemcached ? await startMemcached(256) : undefined;
  const ctx: Context = {
    settings,
    load: startLoadGenerator(),
    origin: await startOrigin(settings.bytes),
    map: await startMap(settings.bytes),
    memcached: mc?.address,
    scratch: mkdtempSync(path.join(tmpdir(), 'epc-bench-')),
    log,
  };
  const scenarios: ReportScenario[] = [];
  for (const s of SCENARIOS) {
    if (only !== undefined && !only.includes(s.name)) continue;
    if (s.needsMemcached && mc === undefined) {
      scenarios.push({ name: s.name, title: s.title, notes: ['skipped: memcached is not on the PATH'], rows: [] });
      continue;
    }
    log(`-- ${s.name}: ${s.title}`);
    scenarios.push(await s.run(ctx));
  }
  ctx.load.close();

  const command = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}` : `node ${path.relative(ROOT, __filename)} ${argv.join(' ')}`.trim();
  const report: BenchReport = {
    kind: 'edge-page-cache-bench',
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command,
    commit: commit(),
    machine: machineInfo(),
    settings: { ...settings, memcached: hasMemcached },
    scenarios,
    ...(before === undefined ? {} : { baseline: { file: values.baseline!, startedAt: before.startedAt, commit: before.commit } }),
  };
  mkdirSync(RESULTS, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const json = path.join(RESULTS, `${stamp}.json`);
  const html = path.join(RESULTS, `${stamp}.html`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderHtml(report, before));

  const m = report.machine;
  process.stdout.write(`\n${command}\n${m.cpu}, ${m.cores} cores, Node ${m.node}, commit ${report.commit ?? 'unknown'}\n\n${formatReport(report)}\n`);
  if (before !== undefined) process.stdout.write(`\nagainst ${values.baseline!} (${before.startedAt}):\n${formatChanges(compareReports(report, before))}\n`);
  process.stdout.write(`\nreport: ${path.relative(process.cwd(), json)}\n        ${path.relative(process.cwd(), html)}\n`);
  const failures = scenarios.flatMap((s) => (s.failures ?? []).map((f) => `${s.name}: ${f}`));
  if (failures.length > 0) {
    process.stderr.write(`\nFAILED:\n${failures.join('\n')}\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  stopOnInterrupt();
  main(process.argv.slice(2))
    .then(
      (code) => (process.exitCode = code),
      (err: unknown) => {
        process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true ? 2 : 1;
      },
    )
    .finally(() => stopAll());
}
