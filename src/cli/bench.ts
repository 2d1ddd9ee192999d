// edge-page-cache bench: autocannon against a user's own site (one URL, or several side by side with ratios
// against the first, each walking the same paths), with a live progress line on a terminal, the table at
// the end, and the JSON and self-contained HTML report the repository's own bench writes.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import { ConfigError } from '../core/errors';
import { positiveInt } from '../core/options';
import { formatTable, fromAutocannon } from './bench-result';
import type { BenchResult } from './bench-result';
import { machineInfo, renderHtml } from './bench-report';
import type { BenchReport } from './bench-report';

export type { BenchResult } from './bench-result';
export { formatTable } from './bench-result';

export interface LoadProgress {
  readonly elapsedSeconds: number;
  readonly requests: number;
  readonly errors: number;
}

export interface LoadOptions {
  readonly name: string;
  /** One URL, or several that autocannon spreads the connections over. */
  readonly url: string | readonly string[];
  readonly seconds: number;
  readonly connections: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Called for every request: returns its path and may set its headers (a walk over many pages). */
  readonly walk?: (headers: Record<string, string>) => string;
  /** Count X-Cache: HIT in the responses (costs the load generator a header object per response). */
  readonly countHits?: boolean;
  /** Called about once a second while the load runs. */
  readonly onProgress?: (p: LoadProgress) => void;
}

export interface LoadResult extends BenchResult {
  /** Responses that carried an X-Cache header (with countHits). */
  readonly withXCache?: number;
}

/** Runs autocannon for `seconds`; the caller's process is the load generator, so it should serve nothing. */
export async function runAutocannon(o: LoadOptions): Promise<LoadResult> {
  // Loaded here, not at the top: `serve` never pays for autocannon's start-up.
  const { default: autocannon } = await import('autocannon');
  const options: autocannon.Options = {
    // autocannon takes a list of URLs and spreads the connections over them; its types know only one.
    url: (typeof o.url === 'string' ? o.url : [...o.url]) as string,
    duration: o.seconds,
    connections: o.connections,
    pipelining: 1,
    headers: { ...o.headers },
  };
  let hits = 0;
  let withXCache = 0;
  const request: autocannon.Request = {};
  const walk = o.walk;
  if (walk !== undefined) {
    request.setupRequest = (req) => {
      // autocannon builds a fresh headers object per request (defaults merged in), so it is ours to set.
      const headers = (req.headers ?? {}) as Record<string, string>;
      const path = walk(headers);
      return { ...req, headers, path };
    };
  }
  if (o.countHits === true) {
    request.onResponse = (_status, _body, _context, headers) => {
      const h = headers as Record<string, string | undefined> | undefined;
      const x = h?.['x-cache'] ?? h?.['X-Cache'];
      if (x === undefined) return;
      withXCache++;
      if (x.startsWith('HIT')) hits++;
    };
  }
  if (walk !== undefined || o.countHits === true) options.requests = [request];
  let done!: (r: autocannon.Result) => void;
  let failed!: (err: unknown) => void;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const instance = autocannon(options, (err, r) => (err === null || err === undefined ? done(r) : failed(err)));
  let requests = 0;
  let errors = 0;
  let timer: NodeJS.Timeout | undefined;
  if (o.onProgress !== undefined) {
    const report = o.onProgress;
    const started = Date.now();
    instance.on('response', () => requests++);
    instance.on('reqError', () => errors++);
    timer = setInterval(() => report({ elapsedSeconds: (Date.now() - started) / 1000, requests, errors }), 1000);
  }
  try {
    const r = await finished;
    const base = fromAutocannon(o.name, r);
    if (o.countHits !== true) return base;
    // No X-Cache at all: not a cache this can read, so no hit ratio rather than 0 %.
    return withXCache === 0 ? { ...base, withXCache } : { ...base, hitRatio: hits / r.requests.total, withXCache };
  } finally {
    if (timer !== undefined) clearInterval(timer);
  }
}

/** http(s) URLs only: a typo such as 'localhost:8080' or 'ftp://' fails before any load is sent. */
function httpUrl(flag: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(`${flag} must be an http:// or https:// URL, got '${value}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${flag} must be an http:// or https:// URL, got '${value}'`);
  return u;
}

/** --urls-file: one path or URL a line ('#' comments and blank lines skipped); URLs must share one origin. */
function readUrlsFile(file: string): { paths: string[]; origin: URL | undefined } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--urls-file: cannot read '${file}': ${(err as Error).message}`);
  }
  const paths: string[] = [];
  let origin: URL | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('/')) {
      paths.push(line);
      return;
    }
    const u = httpUrl(`--urls-file ${file} line ${i + 1}`, line);
    if (origin === undefined) origin = u;
    else if (u.origin !== origin.origin) {
      throw new ConfigError(`--urls-file ${file} line ${i + 1}: every URL must be on ${origin.origin} (one target, its paths walked in turn), got '${line}'`);
    }
    paths.push(u.pathname + u.search);
  });
  if (paths.length === 0) throw new ConfigError(`--urls-file ${file} has no path or URL in it`);
  return { paths, origin };
}

function parseHeaders(values: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of values) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new ConfigError(`--header must be 'Name: value', got '${h}'`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  return headers;
}

const PROGRESS_CLEAR = '\r\x1b[K';

export async function benchCommand(argv: readonly string[]): Promise<string> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: 'string' },
        compare: { type: 'string', multiple: true },
        'urls-file': { type: 'string' },
        duration: { type: 'string' },
        connections: { type: 'string' },
        header: { type: 'string', multiple: true },
        html: { type: 'string' },
        json: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const file = values['urls-file'] === undefined ? undefined : readUrlsFile(values['urls-file']);
  if (values.url === undefined && file?.origin === undefined) throw new ConfigError('bench needs --url URL (or full URLs in --urls-file)');
  const first = values.url === undefined ? file!.origin! : httpUrl('--url', values.url);
  const compare = (values.compare ?? []).map((c) => httpUrl('--compare', c));
  if (values.url !== undefined && file?.origin !== undefined && file.origin.origin !== first.origin) {
    throw new ConfigError(`--urls-file URLs are on ${file.origin.origin}, --url is on ${first.origin}: give paths in the file, or the same origin`);
  }
  const seconds = values.duration === undefined ? 10 : positiveInt('--duration', values.duration, 3600);
  const connections = values.connections === undefined ? 50 : positiveInt('--connections', values.connections, 10000);
  const headers = parseHeaders(values.header ?? []);
  const paths = file?.paths;
  const tty = process.stderr.isTTY === true;
  const startedAt = new Date();
  const rows: LoadResult[] = [];
  for (const target of [first, ...compare]) {
    const name = target.href;
    let next = 0;
    const walk = paths === undefined ? undefined : (): string => paths[next++ % paths.length]!;
    let last = { elapsedSeconds: 0, requests: 0 };
    const onProgress = tty
      ? (p: LoadProgress): void => {
          // The rate of the last second, not the average since the start (which hides a stall).
          const rate = (p.requests - last.requests) / Math.max(p.elapsedSeconds - last.elapsedSeconds, 0.001);
          last = p;
          process.stderr.write(`${PROGRESS_CLEAR}${name}  ${p.elapsedSeconds.toFixed(0)}s/${seconds}s  ${rate.toFixed(0)} req/s  errors ${p.errors}`);
        }
      : undefined;
    const r = await runAutocannon({
      name,
      url: paths === undefined ? target.href : target.origin,
      seconds,
      connections,
      headers,
      countHits: true,
      ...(walk === undefined ? {} : { walk }),
      ...(onProgress === undefined ? {} : { onProgress }),
    });
    if (tty) process.stderr.write(PROGRESS_CLEAR);
    if (r.requests > 0 && r.non2xx > 0) {
      process.stderr.write(`warning: ${name} answered ${r.non2xx} of ${r.requests} requests with a non-2xx status: the numbers measure those answers, not pages\n`);
    }
    if (r.requests > 0 && r.withXCache === 0) {
      process.stderr.write(`warning: ${name} sent no X-Cache header at all: is it behind edge-page-cache? hits cannot be told from misses\n`);
    }
    if (r.requests === 0) process.stderr.write(`warning: ${name} answered no request (${r.errors} errors): is it up?\n`);
    rows.push(r);
  }
  const base = rows[0]?.rps ?? 0;
  const vsFirst = rows.map((r) => (base > 0 ? r.rps / base : NaN));
  const table = formatTable(rows, compare.length === 0 ? [] : [{ heading: 'vs first', values: vsFirst }]);
  if (values.json !== undefined || values.html !== undefined) {
    const report: BenchReport = {
      kind: 'edge-page-cache-bench',
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: ['edge-page-cache', 'bench', ...argv].join(' '),
      commit: null,
      machine: machineInfo(),
      settings: { duration: seconds, connections, paths: paths?.length ?? 1, tool: 'autocannon' },
      scenarios: [
        {
          name: 'bench',
          title: compare.length === 0 ? first.href : `${first.href} and ${compare.length} more, ratios against the first`,
          notes: [`${connections} connections, ${seconds}s per target, one after another${paths === undefined ? '' : `, ${paths.length} paths walked in turn`}`],
          rows: rows.map((r, i) => {
            return { ...r, rpsRounds: [r.rps], ratios: compare.length === 0 ? {} : { 'vs first': { median: vsFirst[i]!, rounds: [vsFirst[i]!] } } };
          }),
        },
      ],
    };
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    if (values.html !== undefined) writeFileSync(values.html, renderHtml(report));
  }
  return table;
}
