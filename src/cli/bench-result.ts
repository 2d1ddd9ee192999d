// One load run's numbers and the table they print as: shared by `edge-page-cache bench` and the benches in
// bench/ (npm run bench), so both print, store and draw the same fields.
import type autocannon from 'autocannon';

export interface BenchResult {
  readonly name: string;
  readonly rps: number;
  readonly p50: number;
  readonly p975: number;
  readonly p99: number;
  readonly max: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly non2xx: number;
  readonly requests: number;
  /** Hits / requests at the edge over the run (from its /metrics), when known. */
  readonly hitRatio?: number;
  /** Requests that reached the origin during the run, when counted. */
  readonly originRequests?: number;
}

/** A ratio column: its heading and one value per row (undefined prints as '-'). */
export interface RatioColumn {
  readonly heading: string;
  readonly values: readonly (number | undefined)[];
}

export function fromAutocannon(name: string, r: autocannon.Result): BenchResult {
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p975: r.latency.p97_5,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    requests: r.requests.total,
  };
}

/** The middle value; of an even count, the mean of the two middle ones (two rounds give their mean). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const dash = (v: number | undefined, f: (n: number) => string): string => (v === undefined || !Number.isFinite(v) ? '-' : f(v));

/**
 * A fixed-width table: req/s, p50/p97.5/p99/max latency (ms), errors, non-2xx, hit ratio, origin requests,
 * then the ratio columns (by default one: req/s against the first row).
 */
export function formatTable(rows: readonly BenchResult[], ratios?: readonly RatioColumn[]): string {
  const base = rows[0]?.rps ?? 1;
  const cols = ratios ?? [{ heading: 'ratio', values: rows.map((r) => r.rps / base) }];
  const width = Math.max(24, ...rows.map((r) => r.name.length));
  const head = [
    'target'.padEnd(width), 'req/s'.padStart(9), 'p50 ms'.padStart(8), 'p97.5 ms'.padStart(8), 'p99 ms'.padStart(8), 'max ms'.padStart(8),
    'errors'.padStart(6), 'non2xx'.padStart(6), 'hit%'.padStart(6), 'origin'.padStart(7),
    ...cols.map((c) => c.heading.padStart(Math.max(7, c.heading.length))),
  ];
  const lines = [head.join(' ')];
  rows.forEach((r, i) => {
    const ms = (v: number): string => dash(v, (x) => x.toFixed(2)).padStart(8);
    lines.push(
      [
        r.name.padEnd(width), r.rps.toFixed(0).padStart(9), ms(r.p50), ms(r.p975), ms(r.p99), ms(r.max),
        String(r.errors).padStart(6), String(r.non2xx).padStart(6),
        dash(r.hitRatio, (v) => (v * 100).toFixed(1)).padStart(6), dash(r.originRequests, String).padStart(7),
        ...cols.map((c) => dash(c.values[i], (v) => `${v.toFixed(2)}x`).padStart(Math.max(7, c.heading.length))),
      ].join(' '),
    );
  });
  return lines.join('\n');
}
