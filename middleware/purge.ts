// Purge helpers for scripts and admin code: delete pages by absolute URL or by tag from a store or a
// memcached node list. The middleware and the edge read the same keys and tag indexes, so both honour them.
import { createPageCache } from '../src/core/cache';
import type { PageCache } from '../src/core/cache';
import { DEFAULT_GZIP_FLAG } from '../src/core/entry';
import { ConfigError } from '../src/core/errors';
import { describe, positiveInt } from '../src/core/options';
import { parseServerList } from '../src/core/ring';
import type { CacheStore } from '../src/core/store';
import { createMemcachedStore } from '../src/core/stores/memcached';

/** Where to purge: a memcached node list (as given to the middleware, same order) or a ready store. */
export interface PurgeOptions {
  readonly memcached?: string | readonly string[];
  readonly store?: CacheStore;
  /** Must match the keyPrefix the pages were stored with. Default ''. */
  readonly keyPrefix?: string;
  /** Deadline of each memcached call, in ms. Default 1000 (purges are not on a request path). */
  readonly memcachedTimeoutMs?: number;
  /** Mark the pages stale instead of deleting them: an edge reading the same memcached serves them while one refresh runs. Default false. */
  readonly soft?: boolean;
}

async function withCache<T>(options: Readonly<PurgeOptions>, fn: (cache: PageCache) => Promise<T>): Promise<T> {
  if ((options.memcached === undefined) === (options.store === undefined)) {
    throw new ConfigError('purge needs exactly one of memcached (node list) or store');
  }
  const keyPrefix = options.keyPrefix ?? '';
  if (typeof keyPrefix !== 'string') throw new ConfigError(`keyPrefix must be a string, got ${describe(keyPrefix)}`);
  const timeoutMs = options.memcachedTimeoutMs === undefined ? 1000 : positiveInt('memcachedTimeoutMs', options.memcachedTimeoutMs, 60_000);
  const owned = options.store === undefined;
  const store = options.store ?? createMemcachedStore({ servers: parseServerList('memcached', options.memcached), timeoutMs });
  // Purging only deletes: format and size limit do not matter here.
  const cache = createPageCache({
    store,
    keyPrefix,
    format: 'envelope',
    raw: { defaultContentType: 'text/html', gzipFlag: DEFAULT_GZIP_FLAG, ttlSeconds: 0 },
    maxEntryBytes: 1024 * 1024,
  });
  try {
    return await fn(cache);
  } finally {
    if (owned) await store.close();
  }
}

/**
 * Deletes the pages stored for these absolute URLs (`https://example.com/posts/1?x=y`, keyed as nginx
 * would: host without port, path and query as written). Resolves to how many URLs were valid.
 * An in-process L1 elsewhere (another middleware or edge) may keep its copy up to its l1TtlSeconds.
 */
export function purgeUrls(urls: readonly string[], options: Readonly<PurgeOptions>): Promise<number> {
  return withCache(options, function purgeByUrl(cache) {
    return cache.purgeUrls(urls, { soft: options.soft === true });
  });
}

/** Deletes every page stored with one of these tags (Surrogate-Key or cacheTags()); resolves to how many. */
export function purgeTags(tags: readonly string[], options: Readonly<PurgeOptions>): Promise<number> {
  return withCache(options, function purgeByTag(cache) {
    return cache.purgeTags(tags, { soft: options.soft === true });
  });
}
