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
import type { PurgeOptions } from '../core/cache';
import type { GuessLimitOptions } from './admin-auth';
import type { NodeHealth } from '../core/store';
import { healthCode, healthStatus } from './health';
import type { OriginHealth } from './origins';
import type { ExplainQuery, ExplainReport } from './explain';
import { parseServerList } from '../core/ring';
import { quantileMs, ORIGIN_BUCKETS_MS } from './stats';
import type { StatsSnapshot } from './stats';
import { memcachedStatsAll } from './stats-memcached';
import { STATS_CSP_DIRECTIVES, STATS_CSS, STATS_JS, statsPageHtml } from './stats-page';

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
  /** soft: the pages are marked stale instead of deleted (served at once while one refresh runs). */
  purge(urls: readonly string[], tags: readonly string[], options?: PurgeOptions): Promise<number>;
  stats(): Promise<StatsReport>;
  /** Re-reads the configuration and replaces the workers (absent: the edge cannot reload). */
  reload?(): Promise<ReloadReport>;
  /** 15 minutes of samples and the top-k lists (summed over workers); absent: /stats.json has no history. */
  statsSnapshot?(): Promise<StatsSnapshot>;
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
/** The stats page and its files: helmet's headers with a CSP that allows only this origin's script, style and JSON. */
const pageSecurity = helmet({ contentSecurityPolicy: { useDefaults: false, directives: STATS_CSP_DIRECTIVES } });

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

/**
 * GET /stats.json: health, the 15-minute samples with origin p50/p99 per second (from the summed latency
 * buckets), totals, top-k lists, and each memcached node's own `stats` (asked now, 1 s deadline).
 */
async function statsJson(backend: AdminBackend): Promise<unknown> {
  const [h, s, snap] = await Promise.all([backend.health(), backend.stats(), backend.statsSnapshot?.()]);
  const names = h.memcached.map((n) => n.name);
  const nodes = names.length === 0 ? [] : await memcachedStatsAll(parseServerList('memcached', names.join(',')), 1000);
  const samples = snap?.samples ?? [];
  const overall = ORIGIN_BUCKETS_MS.map(() => 0);
  for (const x of samples) x.originBuckets.forEach((c, i) => (overall[i]! += c));
  return {
    now: Math.round(Date.now() / 1000),
    health: { status: healthStatus(h), ...h },
    requests: snap?.requests ?? s.requests,
    notStored: snap?.notStored ?? {},
    samples: samples.map((x) => ({ t: x.t, requests: x.requests, bytesOut: x.bytesOut, origins: x.origins, originP50Ms: quantileMs(x.originBuckets, 0.5), originP99Ms: quantileMs(x.originBuckets, 0.99) })),
    originP50Ms: quantileMs(overall, 0.5),
    originP99Ms: quantileMs(overall, 0.99),
    topOrigin: snap?.topOrigin ?? [],
    topNotStored: snap?.topNotStored ?? [],
    l1Bytes: snap?.l1Bytes ?? 0,
    l1Evictions: snap?.l1Evictions ?? null,
    memcached: nodes.map((n, i) => ({ ...n, breakerUp: h.memcached[i]?.up ?? true, up: n.up && (h.memcached[i]?.up ?? true) })),
  };
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
      const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { urls?: unknown; tags?: unknown; prefixes?: unknown; sites?: unknown; soft?: unknown; all?: unknown };
      if (obj.soft !== undefined && typeof obj.soft !== 'boolean') return json(res, 400, { error: 'soft must be true or false' });
      if (obj.all !== undefined && typeof obj.all !== 'boolean') return json(res, 400, { error: 'all must be true or false' });
      const all = obj.all === true;
      const urls = stringArray(obj.urls);
      const tags = stringArray(obj.tags);
      const prefixes = stringArray(obj.prefixes);
      const sites = stringArray(obj.sites);
      if (urls === undefined || tags === undefined || prefixes === undefined || sites === undefined || (!all && urls.length + tags.length + prefixes.length + sites.length === 0)) {
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
        if (tags.length > 0 || all) return json(res, 403, { error: `this token purges only ${site}: tags and all need the global admin token (purge its prefixes or site instead)` });
        const foreign =
          urls.find((u) => splitUrl(u)?.host !== site) ??
          prefixes.find((p) => splitUrl(p)?.host !== site) ??
          sites.find((s) => s.toLowerCase() !== site);
        if (foreign !== undefined) return json(res, 403, { error: `this token purges only ${site}, not ${foreign}` });
      }
      const soft = obj.soft === true;
      if (all && soft) return json(res, 400, { error: 'all is a hard purge (a new global version): it cannot be soft' });
      const purged = await backend.purge(urls, scoped.length === 0 ? tags : [...tags, ...scoped], { soft, all });
      log.info({ urls: urls.length, tags: tags.length, prefixes: prefixes.length, sites: sites.length, site, soft, purged }, 'purge');
      // Prefixes, sites and all are purged by a new version, not by listing pages: every page under them is a
      // miss (or stale, when soft) from now on, however many there are; `purged` counts the pages listed.
      const versioned = prefixes.length + sites.length + (all ? 1 : 0);
      return json(res, 200, versioned > 0 ? { purged, versioned } : { purged });
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
      const page = statsPageHtml({ status: healthStatus(h), workers: h.workers, requests: s.requests, origins: h.origins, memcached: h.memcached });
      pageSecurity(req, res, () => send(res, 200, 'text/html; charset=utf-8', page));
      return;
    }
    if (path === '/stats.js' && req.method === 'GET') {
      pageSecurity(req, res, () => send(res, 200, 'text/javascript; charset=utf-8', STATS_JS));
      return;
    }
    if (path === '/stats.css' && req.method === 'GET') {
      pageSecurity(req, res, () => send(res, 200, 'text/css; charset=utf-8', STATS_CSS));
      return;
    }
    if (path === '/favicon.ico') {
      // Browsers ask for it with every page: no icon, and no 404 in the page's console.
      res.writeHead(204, { 'cache-control': 'max-age=86400' });
      res.end();
      return;
    }
    if (path === '/stats.json' && req.method === 'GET') {
      return json(res, 200, await statsJson(backend));
    }
    json(res, 404, { error: 'not found: try /, /stats.json, /healthz, /metrics, /explain?url=, POST /purge, POST /reload' });
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
