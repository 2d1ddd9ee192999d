// edge-page-cache bench: autocannon against one URL or several side by side, in one run, with ratios.
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import { ConfigError } from '../core/errors';
import { positiveInt } from '../core/options';

export interface BenchResult {
  readonly name: string;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

/** Runs autocannon for `seconds` against a URL. */
export async function runAutocannon(
  name: string,
  url: string,
  seconds: number,
  connections: number,
  headers: Record<string, string> = {},
  paths?: readonly string[],
): Promise<BenchResult> {
  // Loaded here, not at the top: `serve` never pays for autocannon's start-up.
  const { default: autocannon } = await import('autocannon');
  const options: autocannon.Options = { url, duration: seconds, connections, pipelining: 1, headers };
  if (paths !== undefined && paths.length > 0) {
    let next = 0;
    options.requests = [{ setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length] }) }];
  }
  const r = await autocannon(options);
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

/** A fixed-width table; ratios are against the first row. */
export function formatTable(rows: readonly BenchResult[]): string {
  const base = rows[0]?.rps ?? 1;
  const lines = [`${'target'.padEnd(40)} ${'req/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'errors'.padStart(7)} ${'ratio'.padStart(7)}`];
  for (const r of rows) {
    lines.push(
      `${r.name.padEnd(40)} ${r.rps.toFixed(0).padStart(10)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.errors + r.non2xx).padStart(7)} ${(r.rps / base).toFixed(2).padStart(6)}x`,
    );
  }
  return lines.join('\n');
}

export async function benchCommand(argv: readonly string[]): Promise<string> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: 'string' },
        compare: { type: 'string', multiple: true },
        duration: { type: 'string' },
        connections: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const url = values.url;
  if (typeof url !== 'string') throw new ConfigError('bench needs --url URL');
  const seconds = values.duration === undefined ? 10 : positiveInt('--duration', values.duration, 600);
  const connections = values.connections === undefined ? 50 : positiveInt('--connections', values.connections, 10000);
  const targets = [url, ...((values.compare as string[] | undefined) ?? [])];
  const rows: BenchResult[] = [];
  for (const t of targets) rows.push(await runAutocannon(t, t, seconds, connections));
  return formatTable(rows);
}
