// MiddlewareOptions -> ResolvedMiddlewareOptions: the only place that knows a middleware default. Validates
// every field once, at pageCache() time, with the shared validators, and precomputes what requests use.
import type { Registry } from 'prom-client';
import type { EntryFormat } from '../src/core/entry';
import { ConfigError } from '../src/core/errors';
import { resolveRequestPolicy } from '../src/core/request-policy';
import type { CacheableMethod, ResolvedRequestPolicy } from '../src/core/request-policy';
import {
  boolean,
  byteSize,
  describe,
  integerIn,
  memcachedGzipFlag,
  nonNegativeInt,
  oneOf,
  plainObject,
  positiveInt,
  rejectUnknownKeys,
} from '../src/core/options';
import type { StorePolicyOptions } from '../src/core/policy';
import { compileRules } from '../src/core/rules';
import type { Rule, RuleOptions } from '../src/core/rules';
import { MAX_ENTRY_BYTES_LIMIT, MIDDLEWARE_KEYS, OPTION_TABLE } from '../src/core/option-table';
import { parseServerList } from '../src/core/ring';
import type { ServerAddress } from '../src/core/ring';
import type { CacheStore } from '../src/core/store';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const YEAR_SECONDS = 365 * 24 * 3600;

/** Session cookies of common Node and PHP stacks, for `bypassCookies: DEFAULT_BYPASS_COOKIES` on sites whose other cookies never change a page. */
export const DEFAULT_BYPASS_COOKIES: readonly string[] = [
  'connect.sid',
  'sid',
  'session',
  'sessionid',
  'express:sess',
  'koa.sess',
  'PHPSESSID',
  'laravel_session',
  'wordpress_logged_in',
  'remember_token',
];

export type { CacheableMethod } from '../src/core/request-policy';

/** Options of pageCache(). Every field is optional; units are in the names or documented. */
export interface MiddlewareOptions {
  /** memcached nodes, 'host:port[,host:port...]' or a list; same order as nginx's upstream. Absent: in-process store. */
  readonly memcached?: string | readonly string[];
  /** A ready CacheStore to use instead (tests, embedding). Exclusive with `memcached`. Not closed by close(). */
  readonly store?: CacheStore;
  /** Freshness in seconds for responses that state none (no s-maxage, max-age or Expires). Default 0: store only what states one. */
  readonly ttl?: number;
  /** Namespace prepended to the key text before hashing (then nginx must use it too). Default ''. */
  readonly keyPrefix?: string;
  /** 'envelope' (default: status, headers, tags, body) or 'raw' (body alone, for nginx memcached_pass). */
  readonly format?: EntryFormat;
  /** Methods answered from the cache. Default ['GET', 'HEAD']; a HEAD miss is never stored. */
  readonly methods?: readonly CacheableMethod[];
  /**
   * Which cookies make a request private (bypassed). Default 'all': every cookie except those in
   * ignoreCookies (a cookie we do not know may be a session, as Varnish assumes). A list of names bypasses
   * only those (for sites whose other cookies never change a page, e.g. DEFAULT_BYPASS_COOKIES).
   */
  readonly bypassCookies?: readonly string[] | 'all';
  /** With bypassCookies 'all': cookies that never change a page ('name' or 'prefix*'). Default: analytics and consent cookies. */
  readonly ignoreCookies?: readonly string[];
  /** Paths never cached: strings are prefixes of the request target, RegExps are tested against it. Default []. */
  readonly bypassPaths?: readonly (string | RegExp)[];
  /** Largest page stored, in bytes (number, or '512k', '1m'). Default 1 MiB, memcached's default item limit. */
  readonly maxEntryBytes?: number | string;
  /** Status codes that may be stored. Default 200, 203, 204, 300, 301, 308, 404, 410. */
  readonly cacheStatuses?: readonly number[];
  /** @deprecated the earlier name of cacheStatuses (the edge's name); still taken. */
  readonly statuses?: readonly number[];
  /** Deadline of each memcached call, in ms. Default 100. A hanging node costs this once, then is skipped. */
  readonly memcachedTimeoutMs?: number;
  /** How long a failed memcached node is skipped before it is probed again, in ms. Default 2000. */
  readonly memcachedRetryAfterMs?: number;
  /** In-process bytes: the L1 in front of memcached (default 32 MiB, 0 disables it) or the whole embedded store (default 64 MiB). */
  readonly memoryBytes?: number | string;
  /** Longest a page stays in the L1 in front of memcached, in seconds: how long a purge made elsewhere can go unseen. Default 2. */
  readonly l1TtlSeconds?: number;
  /** Content-Type of pages read back from raw entries (nginx's default_type). Default 'text/html; charset=utf-8'. */
  readonly defaultContentType?: string;
  /** @deprecated the earlier name of defaultContentType (the edge's name); still taken. */
  readonly rawContentType?: string;
  /** memcached flag marking gzip raw bodies (nginx's memcached_gzip_flag). Default 2. */
  readonly gzipFlag?: number;
  /** Concurrent misses for one page wait for the first render instead of rendering again. Default true. */
  readonly coalesce?: boolean;
  /** Longest a coalesced request waits for the first render (here or in another process) before rendering itself, in ms. Default 10000. */
  readonly lockTimeoutMs?: number;
  /** @deprecated the earlier name of lockTimeoutMs (the edge's name); still taken. */
  readonly coalesceWaitMs?: number;
  /** prom-client registry for the edge_cache_* metrics. Default: the package's registry. */
  readonly registry?: Registry;
  /** Cache rules, evaluated in order, first match wins (README: Cache rules). Default []. */
  readonly rules?: readonly RuleOptions[];
}

/** The validated, frozen form; every field present. */
export interface ResolvedMiddlewareOptions {
  readonly memcached: readonly ServerAddress[];
  readonly store: CacheStore | undefined;
  readonly keyPrefix: string;
  readonly format: EntryFormat;
  /** What is looked up and what bypasses: the request policy the edge shares (unkeyed headers bypass here). */
  readonly request: ResolvedRequestPolicy;
  readonly maxEntryBytes: number;
  readonly policy: StorePolicyOptions;
  readonly memcachedTimeoutMs: number;
  readonly memcachedRetryAfterMs: number;
  readonly memoryBytes: number;
  readonly l1TtlSeconds: number;
  readonly defaultContentType: string;
  readonly gzipFlag: number;
  readonly coalesce: boolean;
  readonly lockTimeoutMs: number;
  readonly registry: Registry | undefined;
  /** Compiled cache rules (empty: none). */
  readonly rules: readonly Rule[];
}

/** The table's middleware options, plus the earlier names still taken for three of them. */
const ALIASES = { statuses: 'cacheStatuses', rawContentType: 'defaultContentType', coalesceWaitMs: 'lockTimeoutMs' } as const;
const KNOWN: readonly string[] = [...MIDDLEWARE_KEYS, ...Object.keys(ALIASES)];
const DEF = OPTION_TABLE;

/** An option given under its name or its earlier one (not both). */
function aliased<K extends keyof typeof ALIASES>(o: Readonly<MiddlewareOptions>, old: K): unknown {
  const name = ALIASES[old];
  const now = (o as Record<string, unknown>)[name];
  const before = o[old];
  if (now !== undefined && before !== undefined) throw new ConfigError(`${name} and ${old} are the same option (${old} is its earlier name): give one`);
  return now ?? before;
}

function isCacheStore(value: unknown): value is CacheStore {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<Record<keyof CacheStore, unknown>>;
  return typeof s.get === 'function' && typeof s.getSync === 'function' && typeof s.set === 'function' && typeof s.delete === 'function';
}

function isRegistry(value: unknown): value is Registry {
  return typeof value === 'object' && value !== null && typeof (value as { getSingleMetric?: unknown }).getSingleMetric === 'function';
}

function resolveStatuses(o: Readonly<MiddlewareOptions>): ReadonlySet<number> {
  const value = aliased(o, 'statuses');
  if (value === undefined) return new Set(DEF.cacheStatuses.middleware.value);
  const name = o.cacheStatuses !== undefined ? 'cacheStatuses' : 'statuses';
  if (!Array.isArray(value) || value.length === 0) throw new ConfigError(`${name} must be a non-empty list of status codes, got ${describe(value)}`);
  const out = new Set<number>();
  for (const s of value as readonly unknown[]) out.add(integerIn(name, s, 200, 599));
  return out;
}

/** Validates the options and fills in the defaults; throws ConfigError naming the option on anything wrong. */
export function resolveMiddlewareOptions(input: Readonly<MiddlewareOptions> = {}): ResolvedMiddlewareOptions {
  const o = plainObject('pageCache options', input);
  rejectUnknownKeys('', o, KNOWN);
  if (o.memcached !== undefined && o.store !== undefined) {
    throw new ConfigError('memcached and store are exclusive: give memcached nodes or a ready store, not both');
  }
  const memcached = o.memcached === undefined ? [] : parseServerList('memcached', o.memcached);
  if (o.store !== undefined && !isCacheStore(o.store)) throw new ConfigError(`store must be a CacheStore, got ${describe(o.store)}`);
  if (o.registry !== undefined && !isRegistry(o.registry)) throw new ConfigError('registry must be a prom-client Registry');
  const keyPrefix = o.keyPrefix === undefined ? DEF.keyPrefix.middleware.value : o.keyPrefix;
  if (typeof keyPrefix !== 'string') throw new ConfigError(`keyPrefix must be a string, got ${describe(keyPrefix)}`);
  const maxEntryBytes = o.maxEntryBytes === undefined ? DEF.maxEntryBytes.middleware.value : byteSize('maxEntryBytes', o.maxEntryBytes, 1024, MAX_ENTRY_BYTES_LIMIT);
  const embedded = memcached.length === 0;
  const memoryBytes =
    o.memoryBytes === undefined
      ? embedded
        ? DEF.memoryBytes.middleware.value.embedded
        : DEF.memoryBytes.middleware.value.withMemcached
      : byteSize('memoryBytes', o.memoryBytes, embedded ? 1024 : 0, 64 * GiB);
  if (embedded && o.store === undefined && memoryBytes < maxEntryBytes) {
    throw new ConfigError(`memoryBytes (${memoryBytes}) must be at least maxEntryBytes (${maxEntryBytes}) for the in-process store`);
  }
  if (memoryBytes !== 0 && memoryBytes < 64 * 1024) {
    throw new ConfigError(`memoryBytes must be 0 (no L1) or at least 64 KiB, got ${describe(o.memoryBytes)}`);
  }
  const gzipFlag = o.gzipFlag === undefined ? DEF.gzipFlag.middleware.value : memcachedGzipFlag('gzipFlag', o.gzipFlag);
  const defaultContentType = aliased(o, 'rawContentType') ?? DEF.defaultContentType.middleware.value;
  if (typeof defaultContentType !== 'string' || defaultContentType === '') {
    throw new ConfigError(`defaultContentType must be a non-empty string, got ${describe(defaultContentType)}`);
  }
  const lockTimeoutMs = aliased(o, 'coalesceWaitMs');
  // The middleware runs inside the app, which sees the request as it came: unkeyed headers bypass.
  const request = resolveRequestPolicy(o, 'bypass');
  const policy: StorePolicyOptions = Object.freeze({
    defaultTtlSeconds: o.ttl === undefined ? DEF.ttl.middleware.value : nonNegativeInt('ttl', o.ttl, YEAR_SECONDS),
    // The middleware serves only fresh pages itself; stale windows come from the app's own
    // stale-while-revalidate / stale-if-error directives, for an edge reading the same memcached.
    defaultStaleWhileRevalidateSeconds: 0,
    defaultStaleIfErrorSeconds: DEF.staleIfError.middleware.value,
    statuses: resolveStatuses(o),
    maxTtlSeconds: DEF.maxTtlSeconds.middleware.value,
  });
  const resolved: ResolvedMiddlewareOptions = {
    memcached,
    store: o.store as CacheStore | undefined,
    keyPrefix,
    format: o.format === undefined ? DEF.format.middleware.value : oneOf('format', o.format, ['envelope', 'raw'] as const),
    request,
    maxEntryBytes,
    policy,
    memcachedTimeoutMs: o.memcachedTimeoutMs === undefined ? DEF.memcachedTimeoutMs.middleware.value : positiveInt('memcachedTimeoutMs', o.memcachedTimeoutMs, 60_000),
    memcachedRetryAfterMs:
      o.memcachedRetryAfterMs === undefined ? DEF.memcachedRetryAfterMs.middleware.value : positiveInt('memcachedRetryAfterMs', o.memcachedRetryAfterMs, 3_600_000),
    memoryBytes,
    l1TtlSeconds: o.l1TtlSeconds === undefined ? DEF.l1TtlSeconds.middleware.value : positiveInt('l1TtlSeconds', o.l1TtlSeconds, 3600),
    defaultContentType,
    gzipFlag,
    coalesce: o.coalesce === undefined ? DEF.coalesce.middleware.value : boolean('coalesce', o.coalesce),
    lockTimeoutMs: lockTimeoutMs === undefined ? DEF.lockTimeoutMs.middleware.value : positiveInt('lockTimeoutMs', lockTimeoutMs, 600_000),
    registry: o.registry as Registry | undefined,
    rules: compileRules(o.rules, { request, policy }),
  };
  return Object.freeze(resolved);
}
