// EdgeOptions (what a user, the CLI or a config file gives) -> ResolvedEdgeOptions (validated, defaults
// filled, derived values precomputed, frozen). The only place that knows a default.
import { ConfigError } from '../core/errors';
import type { Compression } from '../core/compress';
import { resolveRequestPolicy } from '../core/request-policy';
import type { ResolvedRequestPolicy } from '../core/request-policy';
import type { EntryFormat } from '../core/entry';
import proxyaddr from 'proxy-addr';
import { normalizeHost } from '../core/key';
import { compileRules } from '../core/rules';
import type { Rule, RuleOptions } from '../core/rules';
import {
  boolean,
  byteSize,
  integerIn,
  memcachedGzipFlag,
  nonNegativeInt,
  oneOf,
  plainObject,
  port,
  positiveInt,
  rejectUnknownKeys,
  stringList,
} from '../core/options';
import { EDGE_KEYS, MAX_ENTRY_BYTES_LIMIT, OPTION_TABLE } from '../core/option-table';
import { ANY_STATUS } from '../core/policy';
import type { StorePolicyOptions } from '../core/policy';
import { parseServerList } from '../core/ring';
import type { StoreConfig } from '../core/stores/factory';

/** Options of the edge server. Units are in the names; every field but `origin` has a default. */
export interface EdgeOptions {
  /** Listening port (8080). */
  port?: number | string;
  /** Listening address ('0.0.0.0'). */
  host?: string;
  /** Origin base URLs (http://host:port), several balanced with failover. Required. */
  origin?: string | readonly string[];
  /** memcached nodes 'host:port,...'; absent: the embedded in-process store. */
  memcached?: string | readonly string[];
  /** Freshness for cacheable responses that state none, in seconds (120, as Varnish); 0: only what the origin states. */
  ttl?: number | string;
  /** Processes sharing the port (1). */
  workers?: number | string;
  /** Admin port on loopback for /healthz, /metrics, /purge and the stats page (absent: no admin port). */
  adminPort?: number | string;
  /** Address the admin port binds to ('127.0.0.1'). */
  adminHost?: string;
  /** Bearer token required by POST /purge (absent: purge is refused). */
  adminToken?: string;
  /** Host names served; any other Host gets 421 and is never looked up, stored or forwarded (absent: any). */
  hosts?: string | readonly string[];
  /** Per-site purge tokens, 'host=TOKEN' (repeatable): each purges only its own host. */
  siteTokens?: string | readonly string[];
  /**
   * The proxies in front whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses, CIDRs, or
   * 'loopback', 'linklocal', 'uniquelocal', as Express's trust proxy); none by default.
   */
  trustProxy?: string | readonly string[];
  /** Prefix inside the md5 key, for namespacing ('' so stock nginx finds the same keys). */
  keyPrefix?: string;
  /** Entry format written: 'envelope' (default) or 'raw' (nginx memcached_pass compatible). */
  format?: string;
  /** Content-Type for raw entries, as nginx's default_type ('text/html; charset=utf-8'). */
  defaultContentType?: string;
  /** memcached flag that marks gzip raw bodies, as nginx's memcached_gzip_flag (2); 0 to 0xffff without the envelope bit 0x100. */
  gzipFlag?: number | string;
  /** Largest page stored, bytes or '1m' (1 MiB: memcached's default item size). */
  maxEntryBytes?: number | string;
  /** memcached's item size (-I): envelope pages over it are stored as chunks; bytes or '1m'. Default 1m. */
  memcachedItemBytes?: number | string;
  /** In-process cache size: the L1 in front of memcached (64m), or the whole cache when embedded (256m). */
  memoryBytes?: number | string;
  /** Longest an entry stays in L1 before memcached is asked again, in seconds (2). Bounds purge lag across edges. */
  l1TtlSeconds?: number | string;
  /** Deadline of each memcached call in ms (100). */
  memcachedTimeoutMs?: number | string;
  /** How long a failed memcached node is skipped before it is probed again, in ms (2000). */
  memcachedRetryAfterMs?: number | string;
  /** Origin connect timeout in ms (2000). */
  originConnectTimeoutMs?: number | string;
  /** Time to the origin's response headers in ms before 504 (30000). */
  originTimeoutMs?: number | string;
  /** Longest gap between body chunks from the origin in ms (30000). */
  originBodyTimeoutMs?: number | string;
  /** Keep-alive connections per origin (64). */
  originConnections?: number | string;
  /** Consecutive failures that mark an origin down (3), and how long it stays down in ms (5000). */
  originMaxFails?: number | string;
  originFailTimeoutMs?: number | string;
  /** Path probed on each origin every originHealthIntervalMs while it is down or always (absent: passive health only). */
  originHealthPath?: string;
  originHealthIntervalMs?: number | string;
  /** Stale-while-revalidate window for entries whose origin gives none, in seconds (0). */
  staleWhileRevalidate?: number | string;
  /** Stale-if-error window (grace) for entries whose origin gives none, in seconds (3600). */
  staleIfError?: number | string;
  /** Cookie names (or name prefixes ending in '*') that do not change the page; requests with only these are cached. */
  ignoreCookies?: string | readonly string[];
  /** Status codes that may be stored: a list (or '200,301' as a flag gives it), or 'any' (ANY_STATUS). */
  cacheStatuses?: typeof ANY_STATUS | string | readonly (number | string)[];
  /** Access log: 0 off (default), 1 every request, 0.01 one in a hundred. */
  accessLogSample?: number | string;
  /** Largest request head accepted, bytes (16k); larger gets 431. */
  maxHeaderBytes?: number | string;
  /** Longest freshness accepted from an origin, in seconds (1 year). */
  maxTtlSeconds?: number | string;
  /** Wait for in-flight requests on SIGTERM, in ms (10000). */
  drainTimeoutMs?: number | string;
  /**
   * A kept-alive client connection waiting this long for its next request is closed, in ms (5000, Node's
   * default; nginx's keepalive_timeout). Behind a load balancer, set it above the balancer's idle timeout.
   */
  keepAliveTimeoutMs?: number | string;
  /** A client must send a whole request head within this, in ms (10000), else 408 and close (slowloris). */
  clientHeaderTimeoutMs?: number | string;
  /** A client must send a whole request body within this once its head is in, in ms (30000), else 408. */
  clientBodyTimeoutMs?: number | string;
  /** Requests that may wait for a free connection to one origin (1024); past it 503 with Retry-After. */
  originMaxQueue?: number | string;
  /** Seconds memcached keeps a page with a validator past its stale windows, to revalidate it with a 304 (3600). */
  keep?: number | string;
  /** Cap on the heuristic lifetime (10 % of the time since Last-Modified) used with ttl 0, in seconds (86400). */
  maxHeuristicTtl?: number | string;
  /** Honour the client's Cache-Control (no-cache, max-age, min-fresh) instead of ignoring it (false). */
  honorRequestCacheControl?: boolean | string;
  /** RFC 9213 field targeting this edge above CDN-Cache-Control ('Edge-Cache-Control'). */
  targetedCacheControl?: string;
  /** Store compressible pages compressed: 'gzip' (default, nginx-compatible), 'br' (smaller; envelope only) or 'off'. */
  compression?: string;
  /** Smallest body worth compressing, bytes (1024). */
  compressMinBytes?: number | string;
  /** Coalesce concurrent misses for one key into one origin fetch (true). */
  coalesce?: boolean | string;
  /** Also coalesce across processes and edges with a short memcached lock (true when memcached is set). */
  lockTimeoutMs?: number | string;
  /** Cache rules, evaluated in order, first match wins (README: Cache rules); usually from the config file. */
  rules?: readonly RuleOptions[];
}

export interface ResolvedOrigin {
  readonly url: URL;
  /** scheme://host:port as undici wants it. */
  readonly base: string;
}

export interface ResolvedEdgeOptions {
  readonly port: number;
  readonly host: string;
  readonly origins: readonly ResolvedOrigin[];
  readonly store: StoreConfig;
  readonly workers: number;
  readonly adminPort: number | undefined;
  readonly adminHost: string;
  readonly adminToken: string | undefined;
  /** host -> purge token of that host's tenant. */
  readonly siteTokens: ReadonlyMap<string, string>;
  /** Normalised host names, or undefined for any host. */
  readonly hosts: ReadonlySet<string> | undefined;
  /** Whether the hop at `addr` (i hops from the edge) is a trusted proxy (proxy-addr's compiled list); undefined: none is. */
  readonly trustProxy: ((addr: string, i: number) => boolean) | undefined;
  readonly keyPrefix: string;
  readonly format: EntryFormat;
  readonly defaultContentType: string;
  readonly gzipFlag: number;
  readonly maxEntryBytes: number;
  readonly policy: StorePolicyOptions;
  readonly originConnectTimeoutMs: number;
  readonly originTimeoutMs: number;
  readonly originBodyTimeoutMs: number;
  readonly originConnections: number;
  readonly originMaxFails: number;
  readonly originFailTimeoutMs: number;
  readonly originHealthPath: string | undefined;
  readonly originHealthIntervalMs: number;
  /**
   * What is looked up and what passes: the request policy the middleware shares. Cookies not in
   * ignoreCookies pass; unkeyed headers are stripped from (or set on) what the origin sees.
   */
  readonly request: ResolvedRequestPolicy;
  readonly accessLogSample: number;
  readonly maxHeaderBytes: number;
  readonly drainTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly clientHeaderTimeoutMs: number;
  readonly clientBodyTimeoutMs: number;
  readonly originMaxQueue: number;
  readonly coalesce: boolean;
  readonly lockTimeoutMs: number;
  /** Whether lookup obeys the request's Cache-Control (no-cache, max-age, min-fresh); only-if-cached always is. */
  readonly honorRequestCacheControl: boolean;
  readonly compression: Compression;
  readonly compressMinBytes: number;
  /** Compiled cache rules (empty: none, and the request path never looks at them). */
  readonly rules: readonly Rule[];
}

/** The edge's options (createEdgeServer, --config files): the table's, in its order. */
export const EDGE_OPTION_KEYS: readonly (keyof EdgeOptions)[] = EDGE_KEYS as readonly (keyof EdgeOptions)[];
const DEF = OPTION_TABLE;

export { DEFAULT_IGNORED_COOKIES } from '../core/cookies';

const MIB = 1024 * 1024;

function parseOrigin(value: string): ResolvedOrigin {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`origin must be an absolute http:// or https:// URL, got '${value}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`origin must be an absolute http:// or https:// URL, got '${value}'`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    throw new ConfigError(`origin must be scheme://host[:port] with no path, query or credentials, got '${value}'`);
  }
  return { url, base: url.origin };
}

/** Whether a cacheStatuses value says 'any' (as it is, or as a one-item list, any case). */
function isAny(v: unknown): boolean {
  const one = Array.isArray(v) && v.length === 1 ? (v as unknown[])[0] : v;
  return typeof one === 'string' && one.trim().toLowerCase() === ANY_STATUS;
}

/** An HTTP field name (RFC 9110 §5.1 token), lower-cased. */
function headerName(name: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) {
    throw new ConfigError(`${name} must be an HTTP header name (letters, digits, '-'), got ${JSON.stringify(value)}`);
  }
  return value.toLowerCase();
}

function has<K extends keyof EdgeOptions>(o: Readonly<EdgeOptions>, k: K): boolean {
  return o[k] !== undefined;
}

export function resolveEdgeOptions(input: Readonly<EdgeOptions>): ResolvedEdgeOptions {
  rejectUnknownKeys('', plainObject('options', input), EDGE_OPTION_KEYS);
  const o = input;

  const originList = o.origin === undefined ? [] : stringList('origin', o.origin);
  if (originList.length === 0) throw new ConfigError('origin is required: give at least one http://host:port');
  const origins = originList.map(parseOrigin);

  const memcached = o.memcached === undefined ? [] : parseServerList('memcached', o.memcached);
  const maxEntryBytes = has(o, 'maxEntryBytes') ? byteSize('maxEntryBytes', o.maxEntryBytes, 1024, MAX_ENTRY_BYTES_LIMIT) : DEF.maxEntryBytes.edge.value;
  const memoryBytes = has(o, 'memoryBytes')
    ? byteSize('memoryBytes', o.memoryBytes, 0, 64 * 1024 * MIB)
    : memcached.length > 0 ? DEF.memoryBytes.edge.value.withMemcached : DEF.memoryBytes.edge.value.embedded;
  if (memcached.length === 0 && memoryBytes < 1 * MIB) {
    throw new ConfigError(`memoryBytes must be at least 1m when there is no memcached (it is the whole cache), got ${memoryBytes}`);
  }
  if (memoryBytes > 0 && memoryBytes < maxEntryBytes) {
    throw new ConfigError(`memoryBytes (${memoryBytes}) must be 0 or at least maxEntryBytes (${maxEntryBytes})`);
  }

  // 'any': every final status with explicit freshness (RFC 9111 §3); the default list is also heuristically cacheable.
  const statuses: readonly number[] | typeof ANY_STATUS = has(o, 'cacheStatuses') && isAny(o.cacheStatuses)
    ? ANY_STATUS
    : has(o, 'cacheStatuses')
    ? stringList('cacheStatuses', Array.isArray(o.cacheStatuses) ? o.cacheStatuses.map(String) : o.cacheStatuses).map((s) =>
        integerIn('cacheStatuses', s, 200, 599),
      )
    : DEF.cacheStatuses.edge.value;

  let hosts: Set<string> | undefined;
  if (has(o, 'hosts')) {
    hosts = new Set();
    for (const h of stringList('hosts', o.hosts)) {
      const n = normalizeHost(h);
      if (n === undefined || n !== h.toLowerCase()) throw new ConfigError(`hosts: '${h}' is not a host name (no port, scheme or path)`);
      hosts.add(n);
    }
    if (hosts.size === 0) throw new ConfigError('hosts must name at least one host when given');
  }

  let trustProxy: ((addr: string, i: number) => boolean) | undefined;
  if (has(o, 'trustProxy')) {
    const list = stringList('trustProxy', o.trustProxy);
    try {
      trustProxy = proxyaddr.compile(list);
    } catch (err) {
      throw new ConfigError(`trustProxy must list IP addresses, CIDRs or loopback/linklocal/uniquelocal, got '${list.join(',')}': ${(err as Error).message}`);
    }
  }

  const request = resolveRequestPolicy(has(o, 'ignoreCookies') ? { ignoreCookies: stringList('ignoreCookies', o.ignoreCookies) } : {}, 'strip');

  const format = has(o, 'format') ? oneOf<EntryFormat>('format', o.format, ['envelope', 'raw']) : DEF.format.edge.value;
  const adminToken = o.adminToken;
  if (adminToken !== undefined && (typeof adminToken !== 'string' || adminToken.length < 16)) {
    throw new ConfigError('adminToken must be a string of at least 16 characters');
  }
  const siteTokens = new Map<string, string>();
  for (const item of has(o, 'siteTokens') ? stringList('siteTokens', o.siteTokens) : []) {
    const eq = item.indexOf('=');
    const site = eq === -1 ? undefined : normalizeHost(item.slice(0, eq));
    const t = item.slice(eq + 1);
    if (eq === -1 || site === undefined || site !== item.slice(0, eq).toLowerCase() || item.slice(0, eq).includes(':')) {
      throw new ConfigError(`siteTokens must be 'host=TOKEN' items (a host name, no port), got '${eq === -1 ? item : item.slice(0, eq)}=...'`);
    }
    if (t.length < 16) throw new ConfigError(`siteTokens: the token for ${site} must be at least 16 characters`);
    if (t === adminToken || [...siteTokens.values()].includes(t)) throw new ConfigError(`siteTokens: the token for ${site} must differ from --admin-token and every other site's`);
    siteTokens.set(site, t);
  }
  const accessLogSample = has(o, 'accessLogSample') ? Number(o.accessLogSample) : DEF.accessLogSample.edge.value;
  if (!(accessLogSample >= 0 && accessLogSample <= 1)) {
    throw new ConfigError(`accessLogSample must be a number from 0 to 1, got ${JSON.stringify(o.accessLogSample)}`);
  }
  const healthPath = o.originHealthPath;
  if (healthPath !== undefined && (typeof healthPath !== 'string' || !healthPath.startsWith('/'))) {
    throw new ConfigError(`originHealthPath must be a path starting with '/', got ${JSON.stringify(healthPath)}`);
  }
  const compression = has(o, 'compression') ? oneOf<Compression>('compression', o.compression, ['gzip', 'br', 'off']) : DEF.compression.edge.value;
  if (compression === 'br' && format === 'raw') {
    throw new ConfigError("compression 'br' needs format 'envelope': raw entries can only flag gzip for nginx");
  }
  const keyPrefix = o.keyPrefix ?? DEF.keyPrefix.edge.value;
  if (typeof keyPrefix !== 'string') throw new ConfigError('keyPrefix must be a string');

  const policy: ResolvedEdgeOptions['policy'] = {
    defaultTtlSeconds: has(o, 'ttl') ? nonNegativeInt('ttl', o.ttl, 10 * 365 * 86400) : DEF.ttl.edge.value,
    defaultStaleWhileRevalidateSeconds: has(o, 'staleWhileRevalidate')
      ? nonNegativeInt('staleWhileRevalidate', o.staleWhileRevalidate, 365 * 86400)
      : DEF.staleWhileRevalidate.edge.value,
    defaultStaleIfErrorSeconds: has(o, 'staleIfError') ? nonNegativeInt('staleIfError', o.staleIfError, 365 * 86400) : DEF.staleIfError.edge.value,
    statuses: statuses === ANY_STATUS ? ANY_STATUS : new Set(statuses),
    maxTtlSeconds: has(o, 'maxTtlSeconds') ? positiveInt('maxTtlSeconds', o.maxTtlSeconds) : DEF.maxTtlSeconds.edge.value,
    keepSeconds: has(o, 'keep') ? nonNegativeInt('keep', o.keep, 365 * 86400) : DEF.keep.edge.value,
    // Vary variants need headers in the entry: the envelope format keeps them, raw entries (nginx's) cannot.
    variants: format === 'envelope',
    maxHeuristicTtlSeconds: has(o, 'maxHeuristicTtl') ? positiveInt('maxHeuristicTtl', o.maxHeuristicTtl, 10 * 365 * 86400) : DEF.maxHeuristicTtl.edge.value,
    targetedField: has(o, 'targetedCacheControl') ? headerName('targetedCacheControl', o.targetedCacheControl) : DEF.targetedCacheControl.edge.value,
  };

  const resolved: ResolvedEdgeOptions = {
    port: has(o, 'port') ? port('port', o.port, true) : DEF.port.edge.value,
    host: o.host ?? DEF.host.edge.value,
    origins,
    store: {
      memcached,
      memcachedTimeoutMs: has(o, 'memcachedTimeoutMs') ? positiveInt('memcachedTimeoutMs', o.memcachedTimeoutMs, 60000) : DEF.memcachedTimeoutMs.edge.value,
      memcachedRetryAfterMs: has(o, 'memcachedRetryAfterMs')
        ? positiveInt('memcachedRetryAfterMs', o.memcachedRetryAfterMs, 3600000)
        : DEF.memcachedRetryAfterMs.edge.value,
      memoryBytes,
      l1TtlSeconds: has(o, 'l1TtlSeconds') ? positiveInt('l1TtlSeconds', o.l1TtlSeconds, 86400) : DEF.l1TtlSeconds.edge.value,
      maxEntryBytes,
      memcachedItemBytes: has(o, 'memcachedItemBytes') ? byteSize('memcachedItemBytes', o.memcachedItemBytes, 4096, 1024 * MIB) : DEF.memcachedItemBytes.edge.value,
    },
    workers: has(o, 'workers') ? positiveInt('workers', o.workers, 256) : DEF.workers.edge.value,
    adminPort: has(o, 'adminPort') ? port('adminPort', o.adminPort, true) : undefined,
    adminHost: o.adminHost ?? DEF.adminHost.edge.value,
    adminToken,
    siteTokens,
    hosts,
    trustProxy,
    keyPrefix,
    format,
    defaultContentType: o.defaultContentType ?? DEF.defaultContentType.edge.value,
    gzipFlag: has(o, 'gzipFlag') ? memcachedGzipFlag('gzipFlag', o.gzipFlag) : DEF.gzipFlag.edge.value,
    maxEntryBytes,
    policy,
    honorRequestCacheControl: has(o, 'honorRequestCacheControl') ? boolean('honorRequestCacheControl', o.honorRequestCacheControl) : DEF.honorRequestCacheControl.edge.value,
    originConnectTimeoutMs: has(o, 'originConnectTimeoutMs') ? positiveInt('originConnectTimeoutMs', o.originConnectTimeoutMs, 600000) : DEF.originConnectTimeoutMs.edge.value,
    originTimeoutMs: has(o, 'originTimeoutMs') ? positiveInt('originTimeoutMs', o.originTimeoutMs, 3600000) : DEF.originTimeoutMs.edge.value,
    originBodyTimeoutMs: has(o, 'originBodyTimeoutMs') ? positiveInt('originBodyTimeoutMs', o.originBodyTimeoutMs, 3600000) : DEF.originBodyTimeoutMs.edge.value,
    originConnections: has(o, 'originConnections') ? positiveInt('originConnections', o.originConnections, 100000) : DEF.originConnections.edge.value,
    originMaxFails: has(o, 'originMaxFails') ? positiveInt('originMaxFails', o.originMaxFails, 1000) : DEF.originMaxFails.edge.value,
    originFailTimeoutMs: has(o, 'originFailTimeoutMs') ? positiveInt('originFailTimeoutMs', o.originFailTimeoutMs, 3600000) : DEF.originFailTimeoutMs.edge.value,
    originHealthPath: healthPath,
    originHealthIntervalMs: has(o, 'originHealthIntervalMs') ? positiveInt('originHealthIntervalMs', o.originHealthIntervalMs, 3600000) : DEF.originHealthIntervalMs.edge.value,
    request,
    accessLogSample,
    maxHeaderBytes: has(o, 'maxHeaderBytes') ? byteSize('maxHeaderBytes', o.maxHeaderBytes, 1024, MIB) : DEF.maxHeaderBytes.edge.value,
    drainTimeoutMs: has(o, 'drainTimeoutMs') ? nonNegativeInt('drainTimeoutMs', o.drainTimeoutMs, 3600000) : DEF.drainTimeoutMs.edge.value,
    keepAliveTimeoutMs: has(o, 'keepAliveTimeoutMs') ? positiveInt('keepAliveTimeoutMs', o.keepAliveTimeoutMs, 3600000) : DEF.keepAliveTimeoutMs.edge.value,
    clientHeaderTimeoutMs: has(o, 'clientHeaderTimeoutMs') ? positiveInt('clientHeaderTimeoutMs', o.clientHeaderTimeoutMs, 3600000) : DEF.clientHeaderTimeoutMs.edge.value,
    clientBodyTimeoutMs: has(o, 'clientBodyTimeoutMs') ? positiveInt('clientBodyTimeoutMs', o.clientBodyTimeoutMs, 3600000) : DEF.clientBodyTimeoutMs.edge.value,
    originMaxQueue: has(o, 'originMaxQueue') ? nonNegativeInt('originMaxQueue', o.originMaxQueue, 10000000) : DEF.originMaxQueue.edge.value,
    coalesce: has(o, 'coalesce') ? boolean('coalesce', o.coalesce) : DEF.coalesce.edge.value,
    lockTimeoutMs: has(o, 'lockTimeoutMs') ? positiveInt('lockTimeoutMs', o.lockTimeoutMs, 600000) : DEF.lockTimeoutMs.edge.value,
    compression,
    compressMinBytes: has(o, 'compressMinBytes') ? byteSize('compressMinBytes', o.compressMinBytes, 1, MAX_ENTRY_BYTES_LIMIT) : DEF.compressMinBytes.edge.value,
    // Validated and compiled here, so a reload's configuration goes through the same checks as the first.
    rules: compileRules(o.rules, { request, policy }),
  };
  return Object.freeze(resolved);
}
