// createEdgeServer(): wires options, store, page cache, origins and the pipeline into an http.Server,
// with listen, and close that drains in-flight requests.
import { sweepIdleConnections } from './idle';
import { listenOn } from './listen';
import { setKeepAliveHint, startConnectionTracking, stopAccepting } from './node-internals';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { pageCacheFor } from '../core/cache';
import type { PageCache, PurgeOptions } from '../core/cache';
import { createSingleFlight } from '../core/coalesce';
import { accessLogger, componentLogger } from '../core/logger';
import { cacheMetrics } from '../core/metrics';
import { CACHE_STATUSES } from '../core/status';
import type { CacheStatus } from '../core/status';
import { createStore } from '../core/stores/factory';
import type { AdminBackend } from './admin';
import { decodedCopiesFor } from '../core/decoded';
import { HitForMiss } from '../core/hit-for-miss';
import type { EdgeContext, FetchOutcome } from './context';
import { resolveEdgeOptions } from './options';
import type { EdgeOptions, ResolvedEdgeOptions } from './options';
import { createOrigins } from './origins';
import type { OriginHealth } from './origins';
import { runPipeline } from './pipeline';
import { Transaction } from './transaction';
import type { NodeHealth } from '../core/store';
import { edgeExplainSources, explainUrl } from './explain';
import { recordingOrigins, StatsHistory, trackBytesOut } from './stats';
import type { ExplainQuery, ExplainReport } from './explain';

/** A client connection with no bytes either way for this long is closed (the default). */
const IDLE_TIMEOUT_MS = 120_000;
/** While draining, a connection with no response in progress and no byte moving for this long is closed. */
const DRAIN_QUIET_MS = 250;

export interface EdgeServer {
  readonly server: http.Server;
  readonly options: ResolvedEdgeOptions;
  readonly cache: PageCache;
  readonly registry: Registry;
  /** Listens on options.port/host (port 0: a free port); resolves with the bound port. */
  listen(): Promise<number>;
  /**
   * Serves a client connection accepted by another process (a cluster worker's connections come from the
   * primary, which picks the worker). Refused (closed) while draining.
   */
  accept(socket: Socket): void;
  /** Stops accepting, waits for in-flight requests up to drainTimeoutMs, then closes everything. */
  close(): Promise<void>;
  health(): { draining: boolean; origins: readonly OriginHealth[]; memcached: readonly NodeHealth[] };
  /** Applies a purge here (all tiers of this process's store); resolves with the keys deleted (or, soft, marked stale). */
  purge(urls: readonly string[], tags: readonly string[], options?: PurgeOptions): Promise<string[]>;
  /** Drops keys from this process's in-process tier only (a purge made through another worker). */
  evictLocal(keys: readonly string[]): void;
  /**
   * Drops keys another worker invalidated: from L1 in front of memcached (memcached itself was already
   * told), or from the embedded store, which is this worker's own.
   */
  dropInvalidated(keys: readonly string[]): void;
  /** 15 minutes of per-second samples, the top URLs sent to the origin and not stored (GET /stats.json). */
  readonly stats: StatsHistory;
  /** What this edge holds and would do for a URL (GET /explain, `edge-page-cache explain`). */
  explain(query: ExplainQuery): Promise<ExplainReport>;
}

export interface CreateEdgeServerExtras {
  /** A Registry for this server's metrics (tests run several servers in one process). */
  registry?: Registry;
  /** Called with the keys an unsafe request invalidated (a cluster worker tells the other workers). */
  onInvalidate?: (keys: readonly string[]) => void;
  /** Closes client connections that move no byte for this long, in ms (default 120000; for tests). */
  idleTimeoutMs?: number;
}

function noop(): void {}

function accessLogged(this: { tx: Transaction; t0: number }): void {
  const { tx, t0 } = this;
  tx.ctx.accessLog?.info(
    {
      method: tx.req.method,
      host: tx.host,
      url: tx.requestUri,
      status: tx.res.statusCode,
      cacheStatus: tx.status,
      ms: Math.round((performance.now() - t0) * 10) / 10,
      originMs: Math.round(tx.originMs * 10) / 10,
    },
    'request',
  );
}

export function createEdgeServer(input: Readonly<EdgeOptions> | ResolvedEdgeOptions, extras: CreateEdgeServerExtras = {}): EdgeServer {
  const opts = Object.isFrozen(input) && 'origins' in input ? (input as ResolvedEdgeOptions) : resolveEdgeOptions(input as EdgeOptions);
  const metrics = cacheMetrics(extras.registry);
  const store = createStore(opts.store, metrics);
  const cache = pageCacheFor(store, opts, metrics);
  const origins = createOrigins(opts, metrics);
  let bytesOut: () => number = () => 0;
  const stats = new StatsHistory({ registry: metrics.registry, bytesOut: () => bytesOut(), origins: () => origins.health() });
  const served = {} as Record<CacheStatus, { inc(): void }>;
  for (const s of CACHE_STATUSES) served[s] = metrics.requests.labels(s);
  const ctx: EdgeContext = {
    opts,
    cache,
    // The origins as the pipeline sees them: each request also feeds the stats page's top-k (miss and pass paths only).
    origins: recordingOrigins(origins, stats),
    inflight: createSingleFlight<FetchOutcome>(),
    metrics,
    log: componentLogger('edge'),
    accessLog: opts.accessLogSample > 0 ? accessLogger() : undefined,
    served,
    sharedStore: opts.store.memcached.length > 0,
    uncacheable: new HitForMiss(),
    decoded: decodedCopiesFor(opts.store.memoryBytes),
    onInvalidate: extras.onInvalidate,
    stats,
    draining: false,
  };

  const keepAliveMs = opts.keepAliveTimeoutMs;
  /** While draining: the newest response of each connection, and whether it would have kept the connection. */
  const closing = new WeakMap<Socket, { res: http.ServerResponse; keep: boolean }>();
  /**
   * While draining, the newest response of each connection says Connection: close, so keep-alive clients
   * reconnect elsewhere instead of meeting a connection closed under them. Only the newest: Node answers
   * pipelined requests in order and closes after a response that says close, dropping those behind it, so a
   * newer request hands the close on (when the older response's head is not out yet).
   */
  function closeAfter(socket: Socket, res: http.ServerResponse): void {
    const older = closing.get(socket);
    if (older !== undefined && !older.res.headersSent) older.res.shouldKeepAlive = older.keep;
    closing.set(socket, { res, keep: res.shouldKeepAlive });
    res.shouldKeepAlive = false;
  }
  function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (ctx.draining) closeAfter(req.socket, res);
    // Node's own keepAliveTimeout is 0 here (see createServer below), so the Keep-Alive hint is set per response.
    setKeepAliveHint(res, keepAliveMs);
    const tx = new Transaction(ctx, req, res, Date.now());
    if (ctx.accessLog !== undefined && Math.random() < opts.accessLogSample) {
      res.once('finish', accessLogged.bind({ tx, t0: performance.now() }));
    }
    runPipeline(tx, 'recv');
  }

  const server = http.createServer(
    {
      maxHeaderSize: opts.maxHeaderBytes,
      // No cap on a whole request: an upload that keeps moving may take as long as it needs (passes stream).
      // A connection idle for IDLE_TIMEOUT_MS is closed instead (nginx's client_body_timeout / send_timeout).
      requestTimeout: 0,
      // A request head must be complete within --client-header-timeout (slowloris: the idle sweep sees bytes
      // moving and keeps a dribbling connection). Node checks its list of connections on an interval, 30 s by
      // default, which would let a head take that much longer; a quarter of the limit bounds the overshoot.
      headersTimeout: opts.clientHeaderTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(opts.clientHeaderTimeoutMs / 4))),
      // Idle keep-alive connections are closed by the sweep below: Node's own keepAliveTimeout re-arms a
      // socket timer twice per request (after each response, and again as the next one arrives).
      keepAliveTimeout: 0,
    },
    onRequest,
  );
  bytesOut = trackBytesOut(server);
  stats.start();
  const idle = sweepIdleConnections(server, {
    idleMs: extras.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    keepAliveMs,
  });
  let tracking = false;
  server.on('clientError', function onClientError(err: NodeJS.ErrnoException, socket) {
    // Node answers malformed requests itself; we only choose the status: 431 for oversize heads, else 400.
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    const body = `${status}\n`;
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
  });

  // CONNECT asks for a tunnel: never (no open proxy). Node would close the connection without a word.
  server.on('connect', function onConnect(_req: http.IncomingMessage, socket: Socket) {
    const body = '405 Method Not Allowed: CONNECT is not served\n';
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  const edge: EdgeServer = {
    server,
    options: opts,
    cache,
    registry: metrics.registry,
    stats,
    listen(): Promise<number> {
      return listenOn(server, opts.port, opts.host);
    },
    accept(socket: Socket): void {
      if (ctx.draining) {
        socket.destroy();
        return;
      }
      if (!tracking) {
        // Node sets up its list of connections (what headersTimeout and closeAllConnections work on)
        // when a server starts listening; a server fed connections from elsewhere never listens, so it is
        // told once, by the same event.
        tracking = true;
        startConnectionTracking(server);
      }
      server.emit('connection', socket);
      socket.resume();
    },
    async close(): Promise<void> {
      ctx.draining = true;
      // Stop accepting (net's close: http's would first close every connection it thinks idle, which
      // resets a keep-alive client whose next request is already on the wire). Then close connections as
      // they go quiet, so nothing is cut unless drainTimeoutMs runs out; busy ones answer with
      // Connection: close. Done when none is open, whether they came through listen() or accept().
      stopAccepting(server);
      await new Promise<void>((resolve) => {
        const expire = setTimeout(done, opts.drainTimeoutMs);
        const sweep = setInterval(check, 25);
        function check(): void {
          idle.closeQuiet(DRAIN_QUIET_MS);
          if (idle.open() === 0) done();
        }
        function done(): void {
          clearTimeout(expire);
          clearInterval(sweep);
          resolve();
        }
        check();
      });
      server.closeAllConnections();
      idle.stop();
      stats.stop();
      await origins.close();
      await store.close();
    },
    health() {
      return { draining: ctx.draining, origins: origins.health(), memcached: opts.store.memcached.length > 0 ? store.health() : [] };
    },
    async purge(urls, tags, options): Promise<string[]> {
      return cache.purge(urls, tags, options);
    },
    evictLocal(keys): void {
      for (const key of keys) store.evictLocal(key);
    },
    dropInvalidated(keys): void {
      for (const key of keys) {
        if (ctx.sharedStore) store.evictLocal(key);
        else store.delete(key).then(noop, noop);
      }
    },
    explain(query): Promise<ExplainReport> {
      return explainUrl(query, edgeExplainSources(opts, store, origins));
    },
  };
  return edge;
}

/** Requests by cache status from a registry (for the stats page). */
export async function requestCounts(registry: Registry): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric('edge_cache_requests_total');
  const out: Record<string, number> = {};
  if (metric === undefined) return out;
  for (const v of (await metric.get()).values) {
    const status = String(v.labels.status ?? '');
    out[status] = (out[status] ?? 0) + v.value;
  }
  return out;
}

/** The admin backend of a single-process edge. */
export function localAdminBackend(edge: EdgeServer): AdminBackend {
  return {
    health: () => Promise.resolve(edge.health()),
    async metrics() {
      return { contentType: edge.registry.contentType, body: await edge.registry.metrics() };
    },
    async purge(urls, tags, options) {
      return (await edge.purge(urls, tags, options)).length;
    },
    async stats() {
      return { requests: await requestCounts(edge.registry) };
    },
    explain: (query) => edge.explain(query),
    statsSnapshot: () => edge.stats.snapshot(),
  };
}
