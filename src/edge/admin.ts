// The admin port: GET /healthz, GET /metrics, POST /purge and POST /reload (Bearer token), GET / (stats
// page). Bound to loopback by default. Purge and reload always need the token; on a non-loopback address
// every page does, except /healthz, which then tells only the status. Hosts, tokens and guessing: admin-auth.ts.
import { listenOn } from './listen';
import http from 'node:http';
import helmet from 'helmet';
import { Registry } from 'prom-client';
import { componentLogger, RateLimitedLog } from '../core/logger';
import { adminMetrics } from '../core/metrics';
import { GuessLimit, isAdminHost, SiteTokens, tokenDigest, tokenMatches } from './admin-auth';
import { splitUrl } from '../core/key';
import { prefixPurgeTag, sitePurgeTag } from '../core/tags';
import type { GuessLimitOptions } from './admin-auth';
import type { NodeHealth } from '../core/store';
import { healthCode, healthStatus } from './health';
import type { OriginHealth } from './origins';
import type { ExplainQuery, ExplainReport } from './explain';

export interface HealthReport {
  readonly draining: boolean;
  readonly origins: readonly OriginHealth[];
  readonly memcached: readonly NodeHealth[];
  readonly workers?: number;
  /** The workers' process ids (a reload replaces them all). */
  readonly pids?: readonly number[];
  /** Reloads done (generation), when the last one finished, and why the last one failed, if it did. */
  readonly reload?: { readonly generation: number; readonly at: number; readonly error?: string };
}

/** What a reload did: ok with the new workers' pids, or why it was refused (the old workers keep serving). */
export interface ReloadReport {
  readonly ok: boolean;
  readonly error?: string;
  readonly generation: number;
  readonly pids: readonly number[];
}

export interface StatsReport {
  readonly requests: Readonly<Record<string, number>>;
}

/** What the admin port needs from the edge: a single process, or the cluster primary speaking to workers. */
export interface AdminBackend {
  health(): Promise<HealthReport>;
  metrics(): Promise<{ contentType: string; body: string }>;
  purge(urls: readonly string[], tags: readonly string[]): Promise<number>;
  stats(): Promise<StatsReport>;
  /** Re-reads the configuration and replaces the workers (absent: the edge cannot reload). */
  reload?(): Promise<ReloadReport>;
  /** What the edge holds and would do for a URL (GET /explain; absent: not available). */
  explain?(query: ExplainQuery): Promise<ExplainReport>;
}

export interface AdminOptions {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
  /** Where the admin port's own metrics go (wrong tokens); the cluster primary adds them to /metrics. */
  readonly registry?: Registry;
  /** The wrong-token limit per client address (10 a minute). */
  readonly guessLimit?: GuessLimitOptions;
  /** Per-site purge tokens, host -> token: each may purge only its own host. */
  readonly siteTokens?: ReadonlyMap<string, string>;
}

const MAX_BODY = 64 * 1024;
const MAX_ITEMS = 10_000;
const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', '::1', 'localhost']);
const securityHeaders = helmet();

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);
}

/** The body, or undefined once it goes over MAX_BODY (the rest is then read and dropped: see refuseOversize). */
function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    function onData(c: Buffer): void {
      size += c.length;
      if (size > MAX_BODY) {
        req.removeListener('data', onData);
        req.on('data', noop);
        resolve(undefined);
        return;
      }
      chunks.push(c);
    }
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** How long what a client still sends after its 413 is read and dropped before the connection is closed. */
const LINGER_MS = 2000;

/**
 * 413 for a body over MAX_BODY, then a lingering close (nginx's lingering_close): the answer and a FIN go
 * out while what the client is still sending is read and dropped (at most LINGER_MS), because closing with
 * unread bytes resets the connection, and a reset can destroy the 413 before the client reads it.
 */
function refuseOversize(req: http.IncomingMessage): void {
  const socket = req.socket;
  const body = `{"error":"body over ${MAX_BODY} bytes"}\n`;
  req.on('data', noop);
  req.resume();
  socket.end(
    `HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

function noop(): void {}

function stringArray(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_ITEMS || !value.every((v) => typeof v === 'string' && v.length <= 2048)) return undefined;
  return value as string[];
}

/**
 * GET /explain?url=URL[&fetch=1][&method=M][&header=Name:%20value...]: one absolute http(s) URL, the request
 * a client would send for it, and whether to ask the origin; the error text when the query is not that.
 */
function explainQuery(target: string): ExplainQuery | string {
  const q = new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');
  const url = q.get('url');
  if (url === null || !/^https?:\/\/[^/?#\s]+/i.test(url) || url.length > 8192) return 'explain needs ?url= with an absolute http(s) URL';
  const method = q.get('method') ?? 'GET';
  if (!/^[A-Za-z]{1,20}$/.test(method)) return `method must be an HTTP method name, got '${method.slice(0, 40)}'`;
  const headers: Record<string, string> = {};
  for (const h of q.getAll('header')) {
    const colon = h.indexOf(':');
    const name = colon <= 0 ? '' : h.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return `header must be 'Name: value', got '${h.slice(0, 80)}'`;
    headers[name] = h.slice(colon + 1).trim();
  }
  const fetch = q.get('fetch');
  return { url, method, headers, fetch: fetch !== null && fetch !== '0' && fetch !== 'false' };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function statsPage(health: HealthReport, stats: StatsReport): string {
  const r = stats.requests;
  const cached = (r.HIT ?? 0) + (r.STALE ?? 0) + (r.UPDATING ?? 0) + (r.REVALIDATED ?? 0);
  const lookups = cached + (r.MISS ?? 0) + (r.EXPIRED ?? 0);
  const ratio = lookups === 0 ? 'n/a' : `${((cached / lookups) * 100).toFixed(1)}%`;
  const rows = (items: readonly { name: string; up: boolean; detail: string }[]): string =>
    items.map((i) => `<tr><td>${escapeHtml(i.name)}</td><td>${i.up ? 'up' : '<b>down</b>'}</td><td>${escapeHtml(i.detail)}</td></tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>edge-page-cache</title>
<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head>
<body><h1>edge-page-cache</h1>
<p>Health: <b>${healthStatus(health)}</b> — Hit ratio: <b>${ratio}</b> (${cached} from cache of ${lookups} lookups)${health.workers ? ` — ${health.workers} workers` : ''}</p>
<h2>Requests by cache status</h2><table><tr><th>status</th><th>requests</th></tr>
${Object.entries(r).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v}</td></tr>`).join('')}</table>
<h2>Origins</h2><table><tr><th>origin</th><th>state</th><th>detail</th></tr>
${rows(health.origins.map((o) => ({ name: o.url, up: o.up, detail: `${o.requests} requests, ${o.errors} errors, ${o.failures} consecutive failures` })))}</table>
<h2>memcached</h2><table><tr><th>node</th><th>state</th><th>detail</th></tr>
${health.memcached.length === 0 ? '<tr><td colspan="3">embedded in-process store</td></tr>' : rows(health.memcached.map((n) => ({ name: n.name, up: n.up, detail: `${n.failures} failures` })))}</table>
</body></html>`;
}

export interface AdminServer {
  readonly server: http.Server;
  /** A reload's new --admin-token (undefined: purge and reload refused from now on). */
  setToken(token: string | undefined, siteTokens?: ReadonlyMap<string, string>): void;
  listen(): Promise<number>;
  close(): Promise<void>;
}

export function createAdminServer(options: AdminOptions, backend: AdminBackend): AdminServer {
  const log = componentLogger('admin');
  const open = LOOPBACK.has(options.host);
  let token = options.token === undefined ? undefined : tokenDigest(options.token);
  let siteTokens = new SiteTokens(options.siteTokens);
  const registry = options.registry ?? new Registry();
  const { authFailures } = adminMetrics(registry);
  const wrongToken = authFailures.labels('wrong');
  const limitedToken = authFailures.labels('limited');
  const guesses = new GuessLimit(options.guessLimit);
  const guessLog = new RateLimitedLog(log);

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!isAdminHost(req.headers.host, options.host)) {
      // DNS rebinding: a browser page on this machine whose name now points at loopback sends its own name.
      return json(res, 421, { error: 'the admin port answers only to its own address, localhost or an IP address; Host refused' });
    }
    const path = (req.url ?? '/').split('?')[0];
    let authorized = false;
    /** The host a tenant's token (--site-token) covers: purge of that host only. */
    let site: string | undefined;
    const presented = req.headers.authorization;
    if (presented !== undefined && (token !== undefined || siteTokens.size > 0)) {
      const address = req.socket.remoteAddress ?? '';
      const wait = guesses.retryAfter(address);
      if (wait > 0) {
        limitedToken.inc();
        guessLog.warn({ address, retryAfter: wait }, 'admin token attempts rate-limited');
        res.setHeader('retry-after', String(wait));
        return json(res, 429, { error: `too many wrong tokens from this address: retry after ${wait} s` });
      }
      authorized = token !== undefined && tokenMatches(presented, token);
      if (!authorized) site = siteTokens.siteFor(presented);
      if (!authorized && site === undefined) {
        wrongToken.inc();
        const over = guesses.failed(address);
        guessLog.warn({ address, limited: over }, 'wrong admin token');
      }
    }
    // HAProxy's default check is `OPTIONS / HTTP/1.0` with no Host: answered as /healthz, so it works unconfigured.
    if ((path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) || (req.method === 'OPTIONS' && path === '/')) {
      const h = await backend.health();
      const status = healthStatus(h);
      // Off loopback, the origins' URLs and the nodes' names are for the token holder only.
      json(res, healthCode(status), open || authorized ? { status, ...h } : { status });
      return;
    }
    if (path === '/reload') {
      if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
      if (token === undefined) return json(res, 403, { error: 'reload is disabled: start the edge with --admin-token' });
      if (!authorized) return json(res, 401, { error: 'missing or wrong bearer token' });
      if (backend.reload === undefined) return json(res, 501, { error: 'this edge cannot reload' });
      const r = await backend.reload();
      return json(res, r.ok ? 200 : 409, r);
    }
    if (path === '/purge') {
      if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
      if (token === undefined && siteTokens.size === 0) return json(res, 403, { error: 'purge is disabled: start the edge with --admin-token (or --site-token)' });
      if (!authorized && site === undefined) return json(res, 401, { error: 'missing or wrong bearer token' });
      if (Number(req.headers['content-length']) > MAX_BODY) return refuseOversize(req);
      const body = await readBody(req);
      if (body === undefined) return refuseOversize(req);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return json(res, 400, { error: 'body must be JSON: {"urls": [...], "tags": [...]}' });
      }
      const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { urls?: unknown; tags?: unknown; prefixes?: unknown; sites?: unknown };
      const urls = stringArray(obj.urls);
      const tags = stringArray(obj.tags);
      const prefixes = stringArray(obj.prefixes);
      const sites = stringArray(obj.sites);
      if (urls === undefined || tags === undefined || prefixes === undefined || sites === undefined || urls.length + tags.length + prefixes.length + sites.length === 0) {
        return json(res, 400, { error: 'body must be {"urls": [string...], "tags": [string...], "prefixes": [string...], "sites": [string...]} with at least one item' });
      }
      // Prefixes and sites are purged through the automatic tags every stored page carries (src/core/tags.ts).
      const scoped: string[] = [];
      try {
        for (const p of prefixes) scoped.push(prefixPurgeTag(p));
        for (const s of sites) scoped.push(sitePurgeTag(s));
      } catch (err) {
        return json(res, 400, { error: (err as Error).message });
      }
      if (site !== undefined) {
        // A tenant's token: its own host only. Tags may span hosts, so they need the global token.
        if (tags.length > 0) return json(res, 403, { error: `this token purges only ${site}: tags need the global admin token (purge its prefixes or site instead)` });
        const foreign =
          urls.find((u) => splitUrl(u)?.host !== site) ??
          prefixes.find((p) => splitUrl(p)?.host !== site) ??
          sites.find((s) => s.toLowerCase() !== site);
        if (foreign !== undefined) return json(res, 403, { error: `this token purges only ${site}, not ${foreign}` });
      }
      const purged = await backend.purge(urls, scoped.length === 0 ? tags : [...tags, ...scoped]);
      log.info({ urls: urls.length, tags: tags.length, prefixes: prefixes.length, sites: sites.length, site, purged }, 'purge');
      return json(res, 200, { purged });
    }
    if (!open && !authorized) return json(res, 401, { error: 'missing or wrong bearer token' });
    if (path === '/metrics' && req.method === 'GET') {
      const m = await backend.metrics();
      send(res, 200, m.contentType, m.body);
      return;
    }
    if (path === '/explain' && req.method === 'GET') {
      if (backend.explain === undefined) return json(res, 501, { error: 'this edge cannot explain' });
      const query = explainQuery(req.url ?? '');
      if (typeof query === 'string') return json(res, 400, { error: query });
      return json(res, 200, await backend.explain(query));
    }
    if (path === '/' && req.method === 'GET') {
      const [h, s] = await Promise.all([backend.health(), backend.stats()]);
      securityHeaders(req, res, () => send(res, 200, 'text/html; charset=utf-8', statsPage(h, s)));
      return;
    }
    json(res, 404, { error: 'not found: try /, /healthz, /metrics, /explain?url=, POST /purge, POST /reload' });
  }

  const server = http.createServer(function onAdminRequest(req, res) {
    handle(req, res).catch(function adminFailed(err: unknown) {
      log.error({ err }, 'admin request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  return {
    server,
    setToken(t: string | undefined, sites?: ReadonlyMap<string, string>): void {
      token = t === undefined ? undefined : tokenDigest(t);
      if (sites !== undefined) siteTokens = new SiteTokens(sites);
    },
    listen(): Promise<number> {
      return listenOn(server, options.port, options.host);
    },
    close(): Promise<void> {
      return new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
    },
  };
}
