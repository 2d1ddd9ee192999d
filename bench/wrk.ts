// wrk as the load generator (--tool wrk, optional: autocannon is the default): a run, its numbers read
// from wrk's text output, and a Lua script walking a list of paths. wrk has no p97.5; that column is NaN.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BenchResult } from '../src/cli/bench-result';

const run = promisify(execFile);

export function hasWrk(): Promise<boolean> {
  return run('wrk', ['--version']).then(
    () => true,
    (e: { stdout?: string }) => (e.stdout ?? '').includes('wrk'),
  );
}

/** A wrk script that walks through `paths` in turn (each wrk thread on its own). */
export function wrkScript(dir: string, paths: readonly string[]): string {
  const file = path.join(dir, `paths-${paths.length}-${Date.now()}.lua`);
  writeFileSync(
    file,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}\nlocal i = 0\n` +
      `request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n`,
  );
  return file;
}

/**
 * Lua giving each wrk thread its number (1, 2, ...): wrk runs setup() in its main Lua state once per thread;
 * a script reads it in init() with tonumber(wrk.thread:get("id")).
 */
export const WRK_THREAD_IDS = `local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
`;

const toMs = (v: string | undefined, unit: string | undefined): number => {
  const n = Number(v ?? NaN);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
};

export interface WrkOptions {
  readonly host?: string;
  /** A script from wrkScript. */
  readonly script?: string;
  /** wrk on CPU 0 with one thread (the servers pinned to CPU 1). */
  readonly pinned?: boolean;
  /** More request headers, 'Name: value' each (e.g. Accept-Encoding: gzip). */
  readonly headers?: readonly string[];
}

export async function runWrk(name: string, url: string, seconds: number, connections: number, o: WrkOptions = {}): Promise<BenchResult> {
  const args = ['-t', o.pinned === true ? '1' : '2', '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  if (o.host !== undefined) args.push('-H', `Host: ${o.host}`);
  for (const h of o.headers ?? []) args.push('-H', h);
  if (o.script !== undefined) args.push('-s', o.script);
  args.push(url);
  const { stdout } = await run(o.pinned === true ? 'taskset' : 'wrk', o.pinned === true ? ['-c', '0', 'wrk', ...args] : args, { timeout: (seconds + 30) * 1000 });
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
  const pct = (label: string): number => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const lat = /Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)/.exec(stdout);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = sock ? sock.slice(1).reduce((a, v) => a + Number(v), 0) : 0;
  return {
    name,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct('50'),
    p975: NaN,
    p99: pct('99'),
    max: lat ? toMs(lat[1], lat[2]) : NaN,
    errors,
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    requests: num(/(\d+) requests in/),
  };
}
