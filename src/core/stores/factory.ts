// Builds the store a deployment asks for: memcached (behind an in-process L1) when servers are given,
// else the embedded in-process store. Shared by the middleware and the edge so both read the same options.
import type { CacheMetrics } from '../metrics';
import type { ServerAddress } from '../ring';
import type { CacheStore } from '../store';
import { createMemcachedStore } from './memcached';
import { createMemoryStore } from './memory';
import { createTieredStore } from './tiered';

export interface StoreConfig {
  /** memcached nodes; empty: the embedded in-process store is the cache. */
  readonly memcached: readonly ServerAddress[];
  readonly memcachedTimeoutMs: number;
  readonly memcachedRetryAfterMs: number;
  /** Bytes for the in-process tier (the whole cache when embedded); 0 disables L1 in front of memcached. */
  readonly memoryBytes: number;
  /** Longest an item stays in L1 in front of memcached, in seconds. */
  readonly l1TtlSeconds: number;
  /** Largest value stored. */
  readonly maxEntryBytes: number;
  /** memcached's item size (-I): larger envelope values are chunked; absent: maxEntryBytes (no chunking). */
  readonly memcachedItemBytes?: number;
}

export function createStore(config: StoreConfig, metrics?: CacheMetrics): CacheStore {
  const m = metrics === undefined ? {} : { metrics };
  if (config.memcached.length === 0) {
    return createMemoryStore({ maxBytes: config.memoryBytes, maxEntryBytes: config.maxEntryBytes, tier: 'l2', ...m });
  }
  const l2 = createMemcachedStore({
    servers: config.memcached,
    timeoutMs: config.memcachedTimeoutMs,
    retryAfterMs: config.memcachedRetryAfterMs,
    maxItemBytes: config.memcachedItemBytes ?? config.maxEntryBytes,
    ...m,
  });
  if (config.memoryBytes === 0) return l2;
  const l1 = createMemoryStore({
    maxBytes: config.memoryBytes,
    maxEntryBytes: Math.min(config.maxEntryBytes, Math.floor(config.memoryBytes / 4)),
    maxTtlSeconds: config.l1TtlSeconds,
    tier: 'l1',
    ...m,
  });
  return createTieredStore({ l1, l2, l1TtlSeconds: config.l1TtlSeconds, joinWindowMs: config.memcachedTimeoutMs });
}
