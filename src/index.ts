// Public surface of edge-page-cache: the middleware, the edge server, the shared core's types and
// helpers, and the error classes. Nothing a user needs lives behind a deep import.
export { cacheKey, keyForUrl, normalizeHost, splitUrl } from './core/key';
export { createHashRing, parseServerList } from './core/ring';
export type { HashRing, ServerAddress } from './core/ring';
export {
  DEFAULT_GZIP_FLAG,
  ENVELOPE_FLAG,
  ENVELOPE_VERSION,
  decodeEntry,
  decodeEnvelope,
  encodeEntry,
  encodeEnvelope,
} from './core/entry';
export type { CacheEntry, EntryFormat, RawFormatOptions } from './core/entry';
export type { CacheStore, NodeHealth, StoredValue } from './core/store';
export { createMemoryStore } from './core/stores/memory';
export type { MemoryStore, MemoryStoreOptions } from './core/stores/memory';
export { createMemcachedStore } from './core/stores/memcached';
export type { MemcachedStoreOptions } from './core/stores/memcached';
export { createTieredStore } from './core/stores/tiered';
export type { TieredStoreOptions } from './core/stores/tiered';
export { createPageCache } from './core/cache';
export { tagIndexKey } from './core/tags';
export type { PageCache, PageCacheOptions } from './core/cache';
export { decideStore, freshness, DEFAULT_STORABLE_STATUSES } from './core/policy';
export type { Freshness, NotStoredReason, StoreDecision, StorePolicyOptions } from './core/policy';
export { CACHE_STATUSES } from './core/status';
export type { CacheStatus } from './core/status';
export {
  ClientAbortError,
  ClientTimeoutError,
  ConfigError,
  EdgeCacheError,
  EntryDecodeError,
  OriginBusyError,
  OriginError,
  OriginTimeoutError,
  OriginUnavailableError,
  StoreError,
  StoreTimeoutError,
  StoreUnavailableError,
} from './core/errors';
export type { EdgeCacheErrorCode } from './core/errors';
// The Express middleware (middleware/), its tag helpers, and purge helpers both the middleware and the edge honour.
export { pageCache, cacheTags, responseCacheTags, purgeUrls, purgeTags, resolveMiddlewareOptions, DEFAULT_BYPASS_COOKIES } from '../middleware';
export type { CacheableMethod, MiddlewareOptions, PageCacheMiddleware, PurgeOptions, ResolvedMiddlewareOptions } from '../middleware';
// The edge server, for embedding it in a program instead of running the CLI.
export { createEdgeServer, localAdminBackend } from './edge/server';
export type { EdgeServer, CreateEdgeServerExtras } from './edge/server';
export { resolveEdgeOptions, DEFAULT_IGNORED_COOKIES } from './edge/options';
export type { EdgeOptions, ResolvedEdgeOptions, ResolvedOrigin } from './edge/options';
export { createAdminServer } from './edge/admin';
export type { AdminBackend, AdminOptions, AdminServer, HealthReport, StatsReport } from './edge/admin';
export { acceptsEncoding } from './core/accept';
export type { Compression } from './core/compress';
