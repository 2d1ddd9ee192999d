// Compiled by `npm run typecheck` (never run): the public surface users import from the package root.
// An accidental rename or removal of an export fails the build here.
import type {
  EdgeOptions,
  EdgeServer,
  ResolvedEdgeOptions,
  CacheEntry,
  CacheStatus,
  CacheStore,
  EntryFormat,
  MiddlewareOptions,
  PageCache,
  ResolvedMiddlewareOptions,
  ServerAddress,
  StoreDecision,
} from '../../src';
import {
  createEdgeServer,
  resolveEdgeOptions,
  cacheKey,
  cacheTags,
  ConfigError,
  createHashRing,
  createMemcachedStore,
  createMemoryStore,
  createPageCache,
  createTieredStore,
  EdgeCacheError,
  keyForUrl,
  normalizeHost,
  pageCache,
  parseServerList,
  purgeTags,
  purgeUrls,
} from '../../src';

export const surface = {
  createEdgeServer: createEdgeServer satisfies (options: Readonly<EdgeOptions>) => EdgeServer,
  resolveEdgeOptions: resolveEdgeOptions satisfies (options: Readonly<EdgeOptions>) => ResolvedEdgeOptions,
  cacheKey: cacheKey satisfies (prefix: string, host: string, uri: string) => string,
  keyForUrl,
  normalizeHost,
  createHashRing,
  parseServerList,
  createMemoryStore,
  createMemcachedStore,
  createTieredStore,
  createPageCache,
  pageCache: pageCache satisfies (options?: MiddlewareOptions) => unknown,
  cacheTags,
  purgeUrls,
  purgeTags,
  errors: [ConfigError, EdgeCacheError] as const,
};

export type Surface = [CacheEntry, CacheStatus, CacheStore, EntryFormat, PageCache, ResolvedMiddlewareOptions, ServerAddress, StoreDecision];
