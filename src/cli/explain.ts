// `edge-page-cache explain URL...`: why a page is (not) cached, asked of a running edge's admin port
// (GET /explain: its L1, memcached and origins) or straight of memcached (--memcached, with this command's
// own view of the options). Human text by default, --json for scripts. The verdicts are src/edge/explain.ts's.
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { ConfigError } from '../core/errors';
import { cacheMetrics } from '../core/metrics';
import { explainUrl, originFetcher, readMemcached } from '../edge/explain';
import type { ExplainQuery, ExplainReport, ExplainSources, OriginView, StoredView } from '../edge/explain';
import { resolveEdgeOptions } from '../edge/options';
import type { EdgeOptions } from '../edge/options';
import { createOrigins } from '../edge/origins';

const OPTIONS = {
  admin: { type: 'string' },
  'admin-token': { type: 'string' },
  memcached: { type: 'string' },
  'key-prefix': { type: 'string' },
  origin: { type: 'string' },
  'max-entry-size': { type: 'string' },
  ttl: { type: 'string' },
  fetch: { type: 'boolean' },
  json: { type: 'boolean' },
  method: { type: 'string' },
  header: { type: 'string', multiple: true },
} as const;

function parse(argv: readonly string[]): ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** --header 'Name: value' into a lower-case map; a malformed one names the flag. */
function headerMap(items: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of items ?? []) {
    const colon = h.indexOf(':');
    const name = colon <= 0 ? '' : h.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new ConfigError(`--header must be 'Name: value', got '${h}'`);
    out[name] = h.slice(colon + 1).trim();
  }
  return out;
}

/** edge-page-cache explain URL... [--admin URL [--admin-token T] | --memcached LIST] [--fetch] [--json] [--method M] [--header 'N: v'...] */
export async function explainCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { values, positionals: urls } = parse(argv);
  if (urls.length === 0) throw new ConfigError('explain needs at least one absolute URL');
  for (const u of urls) if (!/^https?:\/\/[^/?#\s]+/i.test(u)) throw new ConfigError(`explain: '${u}' is not an absolute http(s) URL`);
  const method = values.method ?? 'GET';
  if (!/^[A-Za-z]{1,20}$/.test(method)) throw new ConfigError(`--method must be an HTTP method name, got '${method}'`);
  const headers = headerMap(values.header);
  const fetch = values.fetch === true;
  const memcached = values.memcached ?? (values.admin === undefined ? env.EDGE_MEMCACHED : undefined);
  const reports: ExplainReport[] = [];
  if (memcached !== undefined) {
    for (const url of urls) reports.push(await explainDirect({ url, method, headers, fetch }, memcached, values, env));
  } else {
    const admin = values.admin ?? env.EDGE_ADMIN_URL ?? `http://127.0.0.1:${env.EDGE_ADMIN_PORT ?? '9091'}`;
    const token = values['admin-token'] ?? env.EDGE_ADMIN_TOKEN;
    for (const url of urls) reports.push(await explainThroughAdmin({ url, method, headers, fetch }, admin, token));
  }
  return values.json === true ? JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2) : reports.map(explainText).join('\n');
}

async function explainThroughAdmin(q: ExplainQuery, admin: string, token: string | undefined): Promise<ExplainReport> {
  const target = new URL('/explain', admin);
  target.searchParams.set('url', q.url);
  if (q.method !== 'GET') target.searchParams.set('method', q.method);
  for (const [name, value] of Object.entries(q.headers)) target.searchParams.append('header', `${name}: ${value}`);
  if (q.fetch) target.searchParams.set('fetch', '1');
  const res = await request(target, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`explain failed: ${res.statusCode} ${text.trim()}`);
  return JSON.parse(text) as ExplainReport;
}

/** Straight from memcached, with the edge's defaults (and --key-prefix, --ttl, --max-entry-size); --fetch asks --origin or the URL itself. */
async function explainDirect(q: ExplainQuery, memcached: string, values: ReturnType<typeof parse>['values'], env: NodeJS.ProcessEnv): Promise<ExplainReport> {
  const input: EdgeOptions = {
    origin: values.origin ?? new URL(q.url).origin,
    memcached,
    keyPrefix: values['key-prefix'] ?? env.EDGE_KEY_PREFIX ?? '',
    ...(values['max-entry-size'] === undefined ? {} : { maxEntryBytes: values['max-entry-size'] }),
    ...(values.ttl === undefined ? {} : { ttl: values.ttl }),
  };
  const opts = resolveEdgeOptions(input);
  const origins = q.fetch ? createOrigins(opts, cacheMetrics(new Registry())) : undefined;
  const sources: ExplainSources = {
    keyPrefix: opts.keyPrefix,
    memcached: opts.store.memcached,
    raw: { defaultContentType: opts.defaultContentType, gzipFlag: opts.gzipFlag, ttlSeconds: opts.policy.defaultTtlSeconds },
    keepSeconds: opts.policy.keepSeconds ?? 0,
    policy: opts.policy,
    request: opts.request,
    maxEntryBytes: opts.maxEntryBytes,
    hosts: undefined,
    l2: (key) => readMemcached(opts.store.memcached, 1000, key),
    ...(origins === undefined ? {} : { fetch: originFetcher(origins, opts.maxEntryBytes) }),
  };
  try {
    return await explainUrl(q, sources);
  } finally {
    await origins?.close();
  }
}

function storedText(label: string, v: StoredView | null | { error: string } | undefined): string {
  if (v === undefined) return '';
  if (v === null) return `  ${label.padEnd(10)}not stored\n`;
  if ('error' in v) return `  ${label.padEnd(10)}could not be read: ${v.error}\n`;
  const left = v.ttlLeftSeconds >= 0 ? `${v.ttlLeftSeconds} s fresh left` : `stale for ${-v.ttlLeftSeconds} s`;
  return (
    `  ${label.padEnd(10)}${v.state}, status ${v.status}, age ${v.ageSeconds} s, ${left} (ttl ${v.ttlSeconds} s, ` +
    `stale-while-revalidate ${v.staleWhileRevalidateSeconds} s, stale-if-error ${v.staleIfErrorSeconds} s)\n` +
    `  ${''.padEnd(10)}${v.format}, ${v.encoding}, ${v.contentType ?? 'no content-type'}, ${v.bytes} bytes stored (body ${v.bodyBytes}), ` +
    `${v.variants} variant${v.variants === 1 ? '' : 's'}${v.varyOn === undefined ? '' : ` (Vary: ${v.varyOn.join(', ')})`}, tags: ${v.tags.length > 0 ? v.tags.join(' ') : 'none'}` +
    `${v.expiresInSeconds >= 0 ? `, memcached drops it in about ${v.expiresInSeconds} s` : ''}\n`
  );
}

function originText(o: OriginView | { error: string } | undefined): string {
  if (o === undefined) return '';
  if ('error' in o) return `  origin    ${o.error}\n`;
  const headers = Object.entries(o.headers).map(([k, v]) => `  ${''.padEnd(10)}${k}: ${v}\n`).join('');
  return (
    `  origin    ${o.status} in ${o.ms} ms, ${o.bodyBytes} body bytes: ` +
    `${o.wouldStore ? 'would be stored' : `would NOT be stored: ${o.reasons.join(', ')}`}\n${headers}`
  );
}

/** The human form of one report. */
export function explainText(r: ExplainReport): string {
  const req = r.request.verdict === 'lookup' ? `${r.request.method}: looked up` : `${r.request.method}: ${r.request.verdict === 'pass' ? 'passed' : 'refused'} (${r.request.reasons.join(', ')})`;
  return (
    `${r.url}\n` +
    `  key       ${r.key}${r.node === null ? ' (embedded store)' : ` on memcached node ${r.node}`}\n` +
    `  request   ${req}\n` +
    storedText('L1', r.stored.l1) +
    storedText('memcached', r.stored.memcached) +
    originText(r.origin) +
    `  verdict   ${r.verdict}\n`
  );
}
