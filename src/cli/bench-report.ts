// The bench report: the JSON a run leaves for machines, the change against an earlier run, and a
// self-contained HTML page (inline CSS and SVG charts, no script, no network) for people.
import os from 'node:os';
import type { BenchResult } from './bench-result';
import { formatTable } from './bench-result';

/** A ratio of one row: the median of the per-round ratios and the rounds themselves. */
export interface RatioStat {
  readonly median: number;
  readonly rounds: readonly number[];
}

export interface ReportRow extends BenchResult {
  /** req/s of each round, for the spread a later run is judged against. */
  readonly rpsRounds: readonly number[];
  /** By column heading ('vs origin', 'vs Map ceiling', 'vs first'). */
  readonly ratios: Readonly<Record<string, RatioStat>>;
}

export interface ReportScenario {
  readonly name: string;
  readonly title: string;
  readonly notes: readonly string[];
  readonly rows: readonly ReportRow[];
  /** What this scenario requires and did not get (errors where none may be); the run exits 1. */
  readonly failures?: readonly string[];
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly memoryGiB: number;
}

export interface BenchReport {
  readonly kind: 'edge-page-cache-bench';
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly command: string;
  readonly commit: string | null;
  readonly machine: Machine;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly scenarios: readonly ReportScenario[];
  /** The run compared against (--baseline), if any. */
  readonly baseline?: { readonly file: string; readonly startedAt: string; readonly commit: string | null };
}

export function machineInfo(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

/** Checks the shape of a report read back (--baseline), naming what is wrong. */
export function parseReport(text: string, file: string): BenchReport {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  const r = v as Partial<BenchReport> | null;
  if (r === null || typeof r !== 'object' || r.kind !== 'edge-page-cache-bench' || !Array.isArray(r.scenarios)) {
    throw new Error(`${file} is not an edge-page-cache bench report (no kind 'edge-page-cache-bench' with scenarios)`);
  }
  // The shape was checked above field by field that the comparison reads.
  return r as BenchReport;
}

/** One row's change against the same scenario and target of an earlier run. */
export interface Change {
  readonly scenario: string;
  readonly target: string;
  readonly rps: number;
  readonly oldRps: number;
  /** New req/s over old. */
  readonly factor: number;
  /** The old value lies within this run's rounds: the change is noise as far as this run can tell. */
  readonly withinSpread: boolean;
  /** Ratio columns: new median, old median, and whether the old median lies within the new rounds. */
  readonly ratios: readonly { heading: string; now: number; before: number; withinSpread: boolean }[];
}

const within = (x: number, xs: readonly number[]): boolean => xs.length > 1 && x >= Math.min(...xs) && x <= Math.max(...xs);

export function compareReports(now: BenchReport, before: BenchReport): Change[] {
  const changes: Change[] = [];
  for (const s of now.scenarios) {
    const old = before.scenarios.find((o) => o.name === s.name);
    if (old === undefined) continue;
    for (const row of s.rows) {
      const o = old.rows.find((x) => x.name === row.name);
      if (o === undefined || !(o.rps > 0)) continue;
      const ratios = Object.entries(row.ratios).flatMap(([heading, stat]) => {
        const b = o.ratios[heading];
        // A row against itself (origin direct vs origin) is 1.00x in every round: nothing to compare.
        if (b === undefined || stat.rounds.every((x) => x === 1)) return [];
        return [{ heading, now: stat.median, before: b.median, withinSpread: within(b.median, stat.rounds) }];
      });
      changes.push({
        scenario: s.name,
        target: row.name,
        rps: row.rps,
        oldRps: o.rps,
        factor: row.rps / o.rps,
        withinSpread: within(o.rps, row.rpsRounds),
        ratios,
      });
    }
  }
  return changes;
}

export function formatChanges(changes: readonly Change[]): string {
  return changes
    .map((c) => {
      const ratios = c.ratios
        .map((r) => `${r.heading} ${r.before.toFixed(2)}x -> ${r.now.toFixed(2)}x${r.withinSpread ? ' (inside the spread)' : ''}`)
        .join(', ');
      return (
        `${c.scenario} / ${c.target}: ${c.oldRps.toFixed(0)} -> ${c.rps.toFixed(0)} req/s (${c.factor.toFixed(2)}x)` +
        `${c.withinSpread ? ' warning: inside the rounds\' spread, not a change this run can tell' : ''}${ratios === '' ? '' : `; ${ratios}`}`
      );
    })
    .join('\n');
}

/** The text tables of a report, one per scenario, ratio columns from the rows' ratios. */
export function formatReport(report: BenchReport): string {
  return report.scenarios
    .map((s) => {
      const headings = [...new Set(s.rows.flatMap((r) => Object.keys(r.ratios)))];
      const cols = headings.map((h) => ({ heading: h, values: s.rows.map((r) => r.ratios[h]?.median) }));
      return `== ${s.name}: ${s.title}\n${s.notes.map((n) => `   ${n}\n`).join('')}${formatTable(s.rows, cols)}`;
    })
    .join('\n\n');
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number | undefined, digits = 0): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));

const COLORS = ['#3b6ea5', '#e08a2c', '#4a9a5b', '#b8453a', '#7d5ba6', '#8c6d4f'];

/** Horizontal bars, one per label; `marks` draws a thin tick per bar (the baseline's value). */
function barChart(title: string, unit: string, labels: readonly string[], values: readonly number[], marks?: readonly (number | undefined)[]): string {
  const labelW = 260;
  const barH = 22;
  const w = 760;
  const h = 30 + labels.length * (barH + 8);
  const top = Math.max(1, ...values, ...(marks ?? []).map((m) => m ?? 0));
  const scale = (w - labelW - 90) / top;
  const bars = labels
    .map((l, i) => {
      const y = 26 + i * (barH + 8);
      const v = values[i] ?? 0;
      const m = marks?.[i];
      return (
        `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(l)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${Math.max(1, v * scale).toFixed(1)}" height="${barH}" fill="${COLORS[0]}"/>` +
        `<text x="${labelW + v * scale + 6}" y="${y + 15}">${esc(num(v))} ${esc(unit)}</text>` +
        (m === undefined ? '' : `<line x1="${labelW + m * scale}" x2="${labelW + m * scale}" y1="${y - 3}" y2="${y + barH + 3}" stroke="#111" stroke-width="2" stroke-dasharray="3 2"><title>baseline ${esc(num(m))}</title></line>`)
      );
    })
    .join('');
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><text x="0" y="14" font-weight="bold">${esc(title)}</text>${bars}</svg>`;
}

/** Grouped horizontal bars: per label, one bar per series (p50, p97.5, p99). */
function groupedChart(title: string, labels: readonly string[], series: readonly { name: string; values: readonly number[] }[]): string {
  const labelW = 260;
  const barH = 9;
  const w = 760;
  const groupH = series.length * (barH + 2) + 10;
  const h = 46 + labels.length * groupH;
  const top = Math.max(0.001, ...series.flatMap((s) => s.values));
  const scale = (w - labelW - 80) / top;
  const legend = series
    .map((s, i) => `<rect x="${labelW + i * 90}" y="22" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${labelW + i * 90 + 14}" y="31">${esc(s.name)}</text>`)
    .join('');
  const groups = labels
    .map((l, i) => {
      const y0 = 42 + i * groupH;
      return (
        `<text x="${labelW - 6}" y="${y0 + groupH / 2}" text-anchor="end">${esc(l)}</text>` +
        series
          .map((s, j) => {
            const v = s.values[i] ?? 0;
            const y = y0 + j * (barH + 2);
            return `<rect x="${labelW}" y="${y}" width="${Math.max(1, v * scale).toFixed(1)}" height="${barH}" fill="${COLORS[j % COLORS.length]}"/><text x="${labelW + v * scale + 4}" y="${y + barH - 1}" font-size="10">${esc(v.toFixed(2))}</text>`;
          })
          .join('')
      );
    })
    .join('');
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><text x="0" y="14" font-weight="bold">${esc(title)}</text>${legend}${groups}</svg>`;
}

function scenarioHtml(s: ReportScenario, before: BenchReport | undefined, changes: readonly Change[]): string {
  const headings = [...new Set(s.rows.flatMap((r) => Object.keys(r.ratios)))];
  const old = before?.scenarios.find((o) => o.name === s.name);
  const marks = old === undefined ? undefined : s.rows.map((r) => old.rows.find((o) => o.name === r.name)?.rps);
  const head = ['target', 'req/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'max ms', 'errors', 'non-2xx', 'hit ratio', 'origin requests', ...headings];
  const body = s.rows
    .map((r) => {
      const cells = [
        esc(r.name), num(r.rps), num(r.p50, 2), num(r.p975, 2), num(r.p99, 2), num(r.max, 2), String(r.errors), String(r.non2xx),
        r.hitRatio === undefined ? '-' : `${(r.hitRatio * 100).toFixed(1)} %`, num(r.originRequests),
        ...headings.map((h) => {
          const st = r.ratios[h];
          return st === undefined ? '-' : `<span title="rounds ${esc(st.rounds.map((x) => x.toFixed(2)).join(' '))}">${st.median.toFixed(2)}x</span>`;
        }),
      ];
      return `<tr>${cells.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`;
    })
    .join('\n');
  const mine = changes.filter((c) => c.scenario === s.name);
  const changeTable =
    mine.length === 0
      ? ''
      : `<h3>Against the baseline</h3><table><tr><th>target</th><th>req/s before</th><th>req/s now</th><th>change</th><th>ratios before → now</th></tr>${mine
          .map(
            (c) =>
              `<tr${c.withinSpread ? ' class="noise"' : ''}><th scope="row">${esc(c.target)}</th><td>${num(c.oldRps)}</td><td>${num(c.rps)}</td><td>${c.factor.toFixed(2)}x${c.withinSpread ? ' ⚠ inside the rounds\' spread' : ''}</td><td>${c.ratios
                .map((r) => `${esc(r.heading)} ${r.before.toFixed(2)}x → ${r.now.toFixed(2)}x${r.withinSpread ? ' ⚠' : ''}`)
                .join('; ')}</td></tr>`,
          )
          .join('')}</table>`;
  const labels = s.rows.map((r) => r.name);
  return `<section id="${esc(s.name)}"><h2>${esc(s.name)}: ${esc(s.title)}</h2>${s.notes.map((n) => `<p>${esc(n)}</p>`).join('')}
<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>
${body}</table>
${barChart(`requests/s${marks === undefined ? '' : ' (dashed: baseline)'}`, 'req/s', labels, s.rows.map((r) => r.rps), marks)}
${groupedChart('latency percentiles, ms', labels, [
  { name: 'p50', values: s.rows.map((r) => r.p50) },
  { name: 'p97.5', values: s.rows.map((r) => r.p975) },
  { name: 'p99', values: s.rows.map((r) => r.p99) },
])}
${changeTable}</section>`;
}

/** The whole report as one HTML file with nothing to fetch. */
export function renderHtml(report: BenchReport, before?: BenchReport): string {
  const changes = before === undefined ? [] : compareReports(report, before);
  const m = report.machine;
  const settings = Object.entries(report.settings)
    .map(([k, v]) => `${esc(k)} ${esc(String(v))}`)
    .join(', ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edge-page-cache bench ${esc(report.startedAt)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th[scope=row], tr:first-child th { text-align: left; }
tr.noise td { color: #8a6d00; }
svg { display: block; margin: 0.5em 0; font-size: 12px; }
code { background: #f3f3f3; padding: 0 3px; }
</style></head><body>
<h1>edge-page-cache bench</h1>
<p><code>${esc(report.command)}</code></p>
<p>${esc(report.startedAt)} to ${esc(report.finishedAt)}; commit ${esc(report.commit ?? 'unknown')}</p>
<p>Machine: ${esc(m.cpu)}, ${m.cores} cores, ${m.memoryGiB} GiB, ${esc(m.platform)}, Node ${esc(m.node)}</p>
<p>Settings: ${settings}</p>
${report.baseline === undefined ? '' : `<p>Baseline: ${esc(report.baseline.file)} (${esc(report.baseline.startedAt)}, commit ${esc(report.baseline.commit ?? 'unknown')}); ⚠ marks a change inside this run's spread of rounds.</p>`}
${report.scenarios.map((s) => scenarioHtml(s, before, changes)).join('\n')}
</body></html>
`;
}
