// The in-process store on lru-cache, bounded in bytes (values plus a fixed per-item overhead): the
// embedded default when no memcached is configured, and the L1 of the tiered store.
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../errors';
import { cacheMetrics } from '../metrics';
import type { CacheMetrics, StoreTier } from '../metrics';
import { storedValue } from '../store';
import type { CacheStore, NodeHealth, StoredValue } from '../store';

export interface MemoryStoreOptions {
  /** Total bytes held, values plus 1 KiB overhead each (ITEM_OVERHEAD). Required: an unbounded cache is refused. */
  maxBytes: number;
  /** Values larger than this are not stored. Default: min(1 MiB, maxBytes / 8). */
  maxEntryBytes?: number;
  /** Upper bound on any item's life in this store, in seconds (L1 coherence); 0: only the item's own TTL. */
  maxTtlSeconds?: number;
  /** Label for metrics: 'l1' when in front of memcached, 'l2' when it is the only store. */
  tier?: StoreTier;
  metrics?: CacheMetrics;
}

/**
 * What one entry costs beyond its value's bytes, counted against --memory: the key string, lru-cache's slots,
 * the StoredValue and Buffer objects and the decoded memo (headers, entry). Measured with 80,000 distinct
 * small pages: heap plus external memory grew by about 650 bytes per entry over the value's own bytes, and
 * RSS more (allocator slack); at 200 bytes a flood of distinct URLs took RSS to six times --memory
 * (bench/rss.ts). At 1 KiB RSS levels off under the bound the README states.
 */
const ITEM_OVERHEAD = 1024;

/** How many bytes a value holds; a view into a much larger buffer is copied once so it cannot pin it. */
function own(value: Buffer): Buffer {
  if (value.buffer.byteLength > value.length * 2 && value.buffer.byteLength > 16384) return Buffer.from(value);
  return value;
}

export interface MemoryStore extends CacheStore {
  /** getSync without counting a hit or miss (for a tier that already counted this lookup). */
  peek(key: string): StoredValue | undefined;
  /** Stores a value object as is, keeping its decoded memo (the tiered store fills L1 this way). */
  putValue(key: string, value: StoredValue, ttlSeconds: number): boolean;
}

export function createMemoryStore(options: MemoryStoreOptions): MemoryStore {
  const { maxBytes } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) {
    throw new ConfigError(`memory store maxBytes must be an integer of at least 1024, got ${String(maxBytes)}`);
  }
  const maxEntryBytes = options.maxEntryBytes ?? Math.min(1024 * 1024, Math.floor(maxBytes / 8));
  if (!Number.isSafeInteger(maxEntryBytes) || maxEntryBytes < 1 || maxEntryBytes > maxBytes) {
    throw new ConfigError(`memory store maxEntryBytes must be from 1 to maxBytes (${maxBytes}), got ${String(maxEntryBytes)}`);
  }
  const maxTtlMs = (options.maxTtlSeconds ?? 0) * 1000;
  const tier = options.tier ?? 'l1';
  const metrics = options.metrics ?? cacheMetrics();
  const evictions = metrics.l1Evictions;
  const lru = new LRUCache<string, StoredValue>({
    // Counted for the stats page; called on writes and deletes only (never on a get that hits).
    dispose(_value: StoredValue, _key: string, reason: LRUCache.DisposeReason): void {
      if (reason === 'evict') evictions.inc();
    },
    maxSize: maxBytes,
    maxEntrySize: maxEntryBytes + ITEM_OVERHEAD,
    sizeCalculation: (v) => v.value.length + ITEM_OVERHEAD,
    // Expired items are dropped when read; nothing scans in the background.
    ttlAutopurge: false,
    allowStale: false,
    updateAgeOnGet: false,
    // Read the clock on every TTL check instead of caching it for 1 ms behind a setTimeout: under load the
    // default armed a new timer every millisecond (seen in the hit-path profile). The clock stays lru-cache's
    // monotonic performance.now(): with the wall clock, a clock set back would keep L1 entries past --l1-ttl.
    ttlResolution: 0,
  });
  const hit = metrics.storeOps.labels(tier, 'get', 'hit');
  const miss = metrics.storeOps.labels(tier, 'get', 'miss');
  const tooBig = metrics.notStored.labels('too-large');
  const bytes = tier === 'l1' ? metrics.l1Bytes : undefined;

  function ttlMs(ttlSeconds: number): number {
    const own = ttlSeconds > 0 ? ttlSeconds * 1000 : 0;
    if (maxTtlMs === 0) return own;
    return own === 0 ? maxTtlMs : Math.min(own, maxTtlMs);
  }

  function putValue(key: string, value: StoredValue, ttlSeconds: number): boolean {
    // A value read from memcached may be a view into a larger receive buffer: own its bytes (the decoded
    // memo, if any, is rebuilt from the copy on the next hit) so L1's byte count is what it holds.
    const owned = own(value.value);
    return put(key, owned === value.value ? value : storedValue(owned, value.flags), ttlSeconds);
  }

  function put(key: string, value: StoredValue, ttlSeconds: number): boolean {
    if (value.value.length > maxEntryBytes) {
      tooBig.inc();
      lru.delete(key);
      return false;
    }
    const ttl = ttlMs(ttlSeconds);
    lru.set(key, value, ttl > 0 ? { ttl } : {});
    bytes?.set(lru.calculatedSize);
    return true;
  }

  const store: MemoryStore = {
    kind: 'memory',
    getSync(key: string): StoredValue | undefined {
      const v = lru.get(key);
      if (v === undefined) miss.inc();
      else hit.inc();
      return v;
    },
    get(key: string): Promise<StoredValue | undefined> {
      return Promise.resolve(store.getSync(key));
    },
    peek(key: string): StoredValue | undefined {
      return lru.get(key);
    },
    set(key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean> {
      return Promise.resolve(put(key, storedValue(own(value), flags), ttlSeconds));
    },
    add(key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean> {
      if (lru.has(key)) return Promise.resolve(false);
      return Promise.resolve(put(key, storedValue(own(value), flags), ttlSeconds));
    },
    append(key: string, value: Buffer): Promise<boolean> {
      const old = lru.get(key);
      if (old === undefined) return Promise.resolve(false);
      // Like memcached past its item size: refused, and what is there stays.
      if (old.value.length + value.length > maxEntryBytes) return Promise.resolve(false);
      const remaining = lru.getRemainingTTL(key);
      const ttlSeconds = Number.isFinite(remaining) && remaining > 0 ? remaining / 1000 : 0;
      return Promise.resolve(put(key, storedValue(Buffer.concat([old.value, value]), old.flags), ttlSeconds));
    },
    delete(key: string): Promise<boolean> {
      const had = lru.delete(key);
      bytes?.set(lru.calculatedSize);
      return Promise.resolve(had);
    },
    evictLocal(key: string): void {
      // As L1 this drops a possibly outdated copy; as the only store (tier l2) it holds the truth, so no-op.
      if (tier === 'l1') lru.delete(key);
    },
    putValue,
    health(): readonly NodeHealth[] {
      return [{ name: 'memory', up: true, failures: 0, retryAt: 0 }];
    },
    close(): Promise<void> {
      lru.clear();
      bytes?.set(0);
      return Promise.resolve();
    },
  };
  return store;
}
