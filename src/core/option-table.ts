// The one options table of both doors: each option's name, its `serve` flag (with its EDGE_* twin), the
// default at each door that takes it, and its one-line doc. The resolvers take their defaults from here;
// `serve --help`, the config-file keys and the README's reference tables are generated from it (a test
// fails when the README drifts). Where the two doors' defaults differ, `why` says why.

const MiB = 1024 * 1024;
const YEAR = 365 * 24 * 3600;

/** A default: the value the resolver uses and the text the docs show. */
export interface OptionDefault<T = unknown> {
  readonly value: T;
  readonly text: string;
}

export interface OptionSpec {
  /** The `serve` flag without dashes; absent: not a command-line option. */
  readonly flag?: string;
  readonly doc: string;
  /** Absent: not an option of the edge. */
  readonly edge?: OptionDefault;
  /** Absent: not an option of the middleware. */
  readonly middleware?: OptionDefault;
  /** Why the doors' defaults differ (shown in the README). */
  readonly why?: string;
}

/**
 * Largest --max-entry-size / maxEntryBytes either door accepts: a page is buffered whole before it is
 * stored (in the app's heap for the middleware), and pages over memcached's item size go as chunks.
 */
export const MAX_ENTRY_BYTES_LIMIT = 128 * MiB;

function d<const T>(value: T, text: string = String(value)): OptionDefault<T> {
  return { value, text };
}

const NONE = d(undefined, 'none');

/** Order is the order of `--help` and of the README's tables. */
export const OPTION_TABLE = {
  port: { flag: 'port', doc: 'listening port', edge: d(8080) },
  host: { flag: 'host', doc: 'listening address', edge: d('0.0.0.0') },
  origin: { flag: 'origin', doc: 'origin URL, repeatable or comma-separated', edge: d(undefined, 'required') },
  memcached: {
    flag: 'memcached',
    doc: "memcached nodes 'host:port[,host:port...]' (or a list), same nodes and order as nginx's upstream",
    edge: d(undefined, 'none: the embedded in-process store'),
    middleware: d(undefined, 'none: the embedded in-process store'),
  },
  store: { doc: 'a ready `CacheStore` instead (tests, embedding); exclusive with `memcached`; not closed by close()', middleware: NONE },
  ttl: {
    flag: 'ttl',
    doc: 'seconds of freshness for cacheable responses that state none (`s-maxage`, `max-age`, `Expires` win); 0: only what the response states',
    edge: d(120),
    middleware: d(0),
    why: 'in front of a CMS that states no freshness the edge stores pages for a while, as Varnish does; inside an app, a page is cached only when the app says so',
  },
  workers: { flag: 'workers', doc: 'processes sharing the port, each new connection to the one with the fewest open', edge: d(1) },
  adminPort: { flag: 'admin-port', doc: 'admin port for /healthz /metrics /purge and the stats page', edge: d(undefined, 'off') },
  adminHost: { flag: 'admin-host', doc: 'admin address', edge: d('127.0.0.1') },
  adminToken: { flag: 'admin-token', doc: 'bearer token for POST /purge (16+ chars)', edge: d(undefined, 'none: purge refused') },
  siteTokens: {
    flag: 'site-token',
    doc: "a tenant's purge token, 'host=TOKEN' (16+ chars), repeatable: it purges that host's URLs, prefixes and site only",
    edge: d(undefined, 'none'),
  },
  hosts: { flag: 'hosts', doc: 'Host names served, comma-separated; others get 421', edge: d(undefined, 'any') },
  trustProxy: {
    flag: 'trust-proxy',
    doc: "addresses or CIDRs of the proxies in front (or loopback, linklocal, uniquelocal), comma-separated: from those hops only, X-Forwarded-For and X-Forwarded-Proto are taken and forwarded, and https pages are kept apart from http ones",
    edge: d(undefined, 'none: X-Forwarded-* from clients are dropped'),
  },
  keyPrefix: { flag: 'key-prefix', doc: 'text prepended to the key before hashing (then nginx needs it too)', edge: d('', "''"), middleware: d('', "''") },
  format: { flag: 'format', doc: "entries written: 'envelope' or 'raw' (body alone, for nginx memcached_pass)", edge: d('envelope'), middleware: d('envelope') },
  methods: { doc: "methods answered from the cache, of 'GET' and 'HEAD' (a HEAD miss is never stored)", middleware: d(['GET', 'HEAD'], 'GET, HEAD') },
  bypassCookies: {
    doc: "which cookies make a request private: 'all' is every cookie not in ignoreCookies; a list (e.g. DEFAULT_BYPASS_COOKIES) bypasses only those",
    middleware: d('all' as const, "'all'"),
  },
  ignoreCookies: {
    flag: 'ignore-cookies',
    doc: "cookies that never change a page, 'name' or 'prefix*'",
    edge: d(undefined, 'analytics and consent cookies (_ga*, _gid, _fbp, __utm*, ...)'),
    middleware: d(undefined, 'analytics and consent cookies (_ga*, _gid, _fbp, __utm*, ...)'),
  },
  bypassPaths: { doc: 'paths never cached: strings are prefixes of the request target, RegExps are tested against it', middleware: d([], '[]') },
  defaultContentType: {
    flag: 'default-type',
    doc: "Content-Type of pages read back from raw entries (nginx's default_type); the middleware also takes `rawContentType`",
    edge: d('text/html; charset=utf-8'),
    middleware: d('text/html; charset=utf-8'),
  },
  gzipFlag: { flag: 'gzip-flag', doc: "memcached flag of gzip raw bodies (nginx's memcached_gzip_flag)", edge: d(2), middleware: d(2) },
  maxEntryBytes: {
    flag: 'max-entry-size',
    doc: "largest page stored, bytes or '512k'; larger pages stream through unstored",
    edge: d(8 * MiB, '8m'),
    middleware: d(MiB, '1m'),
    why: "the edge stores pages over memcached's item size as chunks (--memcached-item-size); the middleware buffers each page in the app's heap",
  },
  memcachedItemBytes: {
    flag: 'memcached-item-size',
    doc: "memcached's item size limit (its -I): larger pages are stored as chunks of at most this size under derived keys, with a manifest at the page key; raw (nginx) entries stay one item, so larger ones are not stored",
    edge: d(MiB, '1m'),
  },
  memoryBytes: {
    flag: 'memory',
    doc: 'in-process bytes: the L1 in front of memcached (0: none), or the whole embedded store',
    edge: d({ withMemcached: 64 * MiB, embedded: 256 * MiB }, '64m with memcached, 256m without'),
    middleware: d({ withMemcached: 32 * MiB, embedded: 64 * MiB }, '32m with memcached, 64m without'),
    why: "the middleware shares the app's heap; the edge is a process of its own",
  },
  l1TtlSeconds: { flag: 'l1-ttl', doc: 'longest a page stays in the L1 before memcached is asked again: how long a purge made elsewhere can go unseen', edge: d(2), middleware: d(2) },
  memcachedTimeoutMs: { flag: 'memcached-timeout', doc: 'deadline of each memcached call, ms', edge: d(100), middleware: d(100) },
  memcachedRetryAfterMs: { flag: 'memcached-retry-after', doc: 'a failed memcached node is skipped this long, then probed, ms', edge: d(2000), middleware: d(2000) },
  originConnectTimeoutMs: { flag: 'origin-connect-timeout', doc: 'ms to connect to an origin', edge: d(2000) },
  originTimeoutMs: { flag: 'origin-timeout', doc: 'ms to the origin response headers before 504', edge: d(30000) },
  originBodyTimeoutMs: { flag: 'origin-body-timeout', doc: 'ms between origin body chunks', edge: d(30000) },
  originConnections: { flag: 'origin-connections', doc: 'keep-alive connections per origin', edge: d(64) },
  originMaxFails: { flag: 'origin-max-fails', doc: 'consecutive failures that mark an origin down', edge: d(3) },
  originFailTimeoutMs: { flag: 'origin-fail-timeout', doc: 'ms an origin stays marked down', edge: d(5000) },
  originHealthPath: { flag: 'origin-health-path', doc: 'path probed on every origin', edge: d(undefined, 'off: passive health only') },
  originHealthIntervalMs: { flag: 'origin-health-interval', doc: 'ms between probes', edge: d(2000) },
  staleWhileRevalidate: { flag: 'stale-while-revalidate', doc: 'seconds served stale while refreshing, for responses that give none', edge: d(0) },
  staleIfError: {
    flag: 'stale-if-error',
    doc: 'seconds served stale when the origin fails, for responses that give none',
    edge: d(3600),
    middleware: d(0, '0 (not an option)'),
    why: "the middleware serves only fresh pages itself (a failing app renders its own error); an edge reading the same memcached applies the app's own stale-if-error",
  },
  keep: {
    flag: 'keep',
    doc: "seconds memcached keeps a page with a validator (ETag, Last-Modified) past its stale windows, so it can be revalidated with a 304 (Varnish's default_keep)",
    edge: d(3600),
    middleware: d(3600, '3600 (not an option)'),
  },
  maxHeuristicTtl: {
    flag: 'max-heuristic-ttl',
    doc: 'with --ttl 0, cap on the RFC 9111 §4.2.2 heuristic lifetime (10 % of the time since Last-Modified), seconds',
    edge: d(86400),
  },
  honorRequestCacheControl: {
    flag: 'honor-request-cache-control',
    doc: "obey the client's Cache-Control no-cache / max-age / min-fresh (ignored by default, as Varnish, so clients cannot bypass the cache); only-if-cached is always answered: a miss gets 504",
    edge: d(false),
  },
  targetedCacheControl: {
    flag: 'targeted-cache-control',
    doc: 'RFC 9213 response field that targets this edge, above CDN-Cache-Control and Surrogate-Control (all three removed before delivery)',
    edge: d('edge-cache-control', 'Edge-Cache-Control'),
  },
  cacheStatuses: {
    flag: 'cache-statuses',
    doc: "status codes that may be stored, or 'any' (edge): any final status with explicit freshness; the middleware also takes `statuses`",
    edge: d([200, 203, 204, 300, 301, 308, 404, 410], '200,203,204,300,301,308,404,410'),
    middleware: d([200, 203, 204, 300, 301, 308, 404, 410], '200,203,204,300,301,308,404,410'),
  },
  accessLogSample: { flag: 'access-log', doc: 'access log sample rate 0..1 (0: off)', edge: d(0) },
  maxHeaderBytes: { flag: 'max-header-size', doc: 'largest request head, larger gets 431', edge: d(16 * 1024, '16k') },
  maxTtlSeconds: { flag: 'max-ttl', doc: 'cap on origin-stated freshness, seconds', edge: d(YEAR, '1 year'), middleware: d(YEAR, '1 year (not an option)') },
  drainTimeoutMs: { flag: 'drain-timeout', doc: 'ms to finish in-flight requests on SIGTERM', edge: d(10000) },
  clientHeaderTimeoutMs: { flag: 'client-header-timeout', doc: "ms a client has to send a whole request head, else 408 and the connection closed (slowloris; nginx's client_header_timeout)", edge: d(10000) },
  clientBodyTimeoutMs: { flag: 'client-body-timeout', doc: 'ms a client has to send a whole request body once its head is in, else 408 and the origin request aborted', edge: d(30000) },
  originMaxQueue: { flag: 'origin-max-queue', doc: 'requests that may wait for a free origin connection, per origin; past it 503 with Retry-After', edge: d(1024) },
  keepAliveTimeoutMs: { flag: 'keepalive-timeout', doc: 'ms a kept-alive client connection may wait for its next request; above a load balancer\'s idle timeout', edge: d(5000) },
  compression: { flag: 'compression', doc: 'store compressible pages as gzip, br or off', edge: d('gzip') },
  compressMinBytes: { flag: 'compress-min-size', doc: 'smallest body compressed, bytes', edge: d(1024) },
  coalesce: { flag: 'coalesce', doc: 'concurrent misses for one page make one fill (in process and, with memcached, across processes): true|false', edge: d(true), middleware: d(true) },
  lockTimeoutMs: {
    flag: 'lock-timeout',
    doc: 'ms a miss waits for the fill of the same page in flight (here or in another process) before filling itself; the middleware also takes `coalesceWaitMs`',
    edge: d(5000),
    middleware: d(10000),
    why: "an app's render can outlast an origin's first byte, and a second render costs the app more than a second fetch costs an origin",
  },
  rules: {
    doc: 'cache rules, first match wins: host, path, method, cookie, header -> ttl, ttlByStatus, stale windows, bypass, cookies, cacheStatuses, tags, key, headers (README: Cache rules); in the config file for the edge',
    edge: d([], '[]'),
    middleware: d([], '[]'),
  },
  registry: { doc: 'prom-client `Registry` for the `edge_cache_*` metrics', middleware: d(undefined, 'the package registry') },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTION_TABLE;

const ROWS = Object.entries(OPTION_TABLE) as [OptionName, OptionSpec][];

/** The `serve` flags, in table order: [flag, option, help with its default]. */
export const SERVE_FLAGS: ReadonlyArray<readonly [flag: string, key: OptionName, help: string]> = ROWS.filter(([, s]) => s.flag !== undefined && s.edge !== undefined).map(
  ([key, s]) => [s.flag!, key, `${s.doc} (${s.edge!.text})`] as const,
);

/** The edge's option keys (createEdgeServer, --config files). */
export const EDGE_KEYS: readonly OptionName[] = ROWS.filter(([, s]) => s.edge !== undefined).map(([k]) => k);

/** The middleware's option keys (pageCache); aliases kept for earlier names are added by its resolver. */
export const MIDDLEWARE_KEYS: readonly OptionName[] = ROWS.filter(([, s]) => s.middleware !== undefined && !s.middleware.text.endsWith('(not an option)')).map(([k]) => k);

export function envName(flag: string): string {
  return `EDGE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The README's reference tables, generated (see option-table.test.ts). */
export function referenceTable(door: 'edge' | 'middleware' | 'differences'): string {
  const out: string[] = [];
  if (door === 'edge') {
    out.push('| flag | environment | option | meaning (default) |', '| --- | --- | --- | --- |');
    for (const [key, s] of ROWS) {
      if (s.edge === undefined || s.flag === undefined) continue;
      out.push(`| \`--${s.flag}\` | \`${envName(s.flag)}\` | \`${key}\` | ${cell(s.doc)} (${cell(s.edge.text)}) |`);
    }
  } else if (door === 'middleware') {
    out.push('| option | default | meaning |', '| --- | --- | --- |');
    for (const key of MIDDLEWARE_KEYS) {
      const s: OptionSpec = OPTION_TABLE[key];
      out.push(`| \`${key}\` | ${cell(s.middleware!.text)} | ${cell(s.doc)} |`);
    }
  } else {
    out.push('| option | edge | middleware | why |', '| --- | --- | --- | --- |');
    for (const [key, s] of ROWS) {
      if (s.why === undefined) continue;
      out.push(`| \`${key}\` | ${cell(s.edge!.text)} | ${cell(s.middleware!.text)} | ${cell(s.why)} |`);
    }
  }
  return out.join('\n');
}
