// The page cache both the middleware and the edge use: entries (not bytes) over any CacheStore, with
// decode-once memoisation, the envelope/raw format, size limits, and purge by URL; the tag indexes that
// purge by tag reads are tags.ts's.
import type { IncomingHttpHeaders } from 'node:http';
import { EntryDecodeError } from './errors';
import { decodeEntry, encodeEntry, entryHeader, entryLifetimeSeconds } from './entry';
import type { CacheEntry, EntryFormat, RawFormatOptions } from './entry';
import { createKeyFunction, httpsVariantKey, keyForUrl } from './key';
import { MAX_VARIANTS, newVariantIndex, readVariantIndex, sameNames, variantIndexEntry, variantKey } from './variants';
import { componentLogger, RateLimitedLog } from './logger';
import { cacheMetrics } from './metrics';
import { headersVaryOnCookie } from './policy';
import { OPTION_TABLE } from './option-table';
import type { CacheMetrics } from './metrics';
import type { CacheStore, StoredValue } from './store';
import { createTagIndex, isExplicitTag } from './tags';
import { softPurged } from './soft-purge';
import { createGenerations, plainTags } from './generations';

// tags.ts owns these; re-exported because test/integration/tags.test.ts and middleware-purge.test.ts import them from here.
export { tagHeadKey, tagIndexKey } from './tags';

export interface PageCacheOptions {
  readonly store: CacheStore;
  readonly keyPrefix: string;
  readonly format: EntryFormat;
  readonly raw: RawFormatOptions;
  /** Pages whose stored form is larger are not stored (counted and logged, never an error). */
  readonly maxEntryBytes: number;
  /** Seconds memcached keeps an entry with a validator past its stale windows, to revalidate it (0: none). */
  readonly keepSeconds?: number;
  readonly metrics?: CacheMetrics;
  /** How long this process uses a purge version without reading it again, ms (the --l1-ttl; 2000). */
  readonly versionTtlMs?: number;
}

export interface PageCache {
  readonly store: CacheStore;
  readonly keyPrefix: string;
  readonly format: EntryFormat;
  /** The contract key for a normalised host and a raw request_uri. */
  keyFor(host: string, requestUri: string): string;
  /** The key of the same URL's page rendered for https (key.ts httpsVariantKey): kept apart from the http one. */
  secureKeyFor(host: string, requestUri: string): string;
  /** From an in-process tier only; undefined means "ask get()". `now`: the request's clock, if read already. */
  getSync(key: string, now?: number): CacheEntry | undefined;
  get(key: string): Promise<CacheEntry | undefined>;
  /** Encodes and writes; false when not written (too large, store fault). Never rejects. */
  put(key: string, entry: CacheEntry): Promise<boolean>;
  /**
   * Stores a page whose response varies on request headers (RFC 9111 §4.1, variants.ts): the page under the
   * secondary key this request's values select, and the variant index at `key`. Resolves with that secondary
   * key, or undefined when not stored (raw format, MAX_VARIANTS reached, a write refused). Never rejects.
   */
  putVariant(key: string, entry: CacheEntry, names: readonly string[], headers: IncomingHttpHeaders): Promise<string | undefined>;
  delete(key: string): Promise<boolean>;
  /**
   * Deletes a URL's page by its contract key, both the http and the https rendering (invalidation after an
   * unsafe request); returns the keys deleted, for other processes' L1.
   */
  deletePage(key: string): string[];
  /**
   * A stored entry that decoded but cannot be delivered (a header Node refuses, a body that does not
   * inflate): counted as a decode error, logged, and deleted everywhere, so the next request stores a good one.
   */
  discard(key: string, err: Error): void;
  /** Deletes the entries for absolute URLs (or, with soft, marks them stale: soft-purge.ts); returns how many were valid URLs. */
  purgeUrls(urls: readonly string[], options?: PurgeOptions): Promise<number>;
  /** Deletes every entry stored with one of these tags; returns how many keys were deleted. */
  purgeTags(tags: readonly string[], options?: PurgeOptions): Promise<number>;
  /** Both at once, returning the keys deleted (so other processes can drop their L1 copies). */
  purge(urls: readonly string[], tags: readonly string[], options?: PurgeOptions): Promise<string[]>;
  /** Every page stored so far becomes a miss (a new global version, generations.ts); no key is listed or deleted. */
  purgeAll(): Promise<void>;
}

/** How a purge leaves its pages: deleted (default), or with soft marked stale, served while one refresh runs. */
export interface PurgeOptions {
  readonly soft?: boolean;
  /** Also every page stored so far (a new global version): purge() and the admin port's {"all": true}. */
  readonly all?: boolean;
}

const SAME_BYTES_LIMIT = 64 * 1024;
const SAME_BYTES_MAX = 128;

/** What either door's resolved options say about the page cache (both resolvers produce these fields). */
export interface PageCacheSettings {
  readonly keyPrefix: string;
  readonly format: EntryFormat;
  readonly defaultContentType: string;
  readonly gzipFlag: number;
  readonly maxEntryBytes: number;
  /** keepSeconds: the edge's --keep; the middleware takes the table's default (it is not its option). */
  readonly policy: { readonly defaultTtlSeconds: number; readonly keepSeconds?: number };
}

/** The page cache a door's resolved options describe, over the store it built (one construction for both doors). */
export function pageCacheFor(store: CacheStore, o: PageCacheSettings, metrics: CacheMetrics): PageCache {
  return createPageCache({
    store,
    keyPrefix: o.keyPrefix,
    format: o.format,
    raw: { defaultContentType: o.defaultContentType, gzipFlag: o.gzipFlag, ttlSeconds: o.policy.defaultTtlSeconds },
    maxEntryBytes: o.maxEntryBytes,
    keepSeconds: o.policy.keepSeconds ?? OPTION_TABLE.keep.edge.value,
    // Versions are re-read as often as an L1 copy of a page is (--l1-ttl): the middleware's resolved
    // options have it at the top, the edge's under store (both validated numbers; read here, once).
    versionTtlMs: 1000 * Number((o as { l1TtlSeconds?: number }).l1TtlSeconds ?? (o as { store?: { l1TtlSeconds?: number } }).store?.l1TtlSeconds ?? OPTION_TABLE.l1TtlSeconds.edge.value),
    metrics,
  });
}

export function createPageCache(options: PageCacheOptions): PageCache {
  const { store, keyPrefix, format, raw, maxEntryBytes } = options;
  const keepSeconds = options.keepSeconds ?? 0;
  const metrics = options.metrics ?? cacheMetrics();
  const log = new RateLimitedLog(componentLogger('cache'));
  const tooLarge = metrics.notStored.labels('too-large');
  const rawMismatch = metrics.notStored.labels('raw-format');
  const rawType = mediaType(raw.defaultContentType);

  function fitsRaw(entry: CacheEntry): boolean {
    if (entry.status !== 200 || mediaType(entryHeader(entry, 'content-type') ?? raw.defaultContentType) !== rawType) return false;
    // nginx serves a raw entry to every request, cookies or not: a page that varies on Cookie stays out.
    if (headersVaryOnCookie(entry.headers)) return false;
    // Only gzip can be marked (by its flag); any other coding would come back as identity garbage.
    const coding = (entryHeader(entry, 'content-encoding') ?? 'identity').trim().toLowerCase();
    return coding === 'identity' || (coding === 'gzip' && raw.gzipFlag !== 0);
  }
  const stored = metrics.stored.labels(store.kind === 'memory' ? 'l1' : 'l2');
  const tagIndex = createTagIndex(store, keyPrefix, metrics);
  // Purge by tag, site, prefix or everything holds through evicted indexes: pages carry a version stamp.
  const generations = createGenerations(store, keyPrefix, options.versionTtlMs ?? 2000);

  // Values read from memcached arrive as new Buffers each time. For small ones, the last decoded entry
  // per key is kept with its bytes: when memcached returns the same bytes (one memcmp), that entry is
  // reused, and with it the header list already built for delivery. Always checked against what
  // memcached holds now, so it is never stale; bounded to SAME_BYTES_MAX entries of SAME_BYTES_LIMIT.
  let same = new Map<string, { bytes: Buffer; flags: number; entry: CacheEntry }>();

  function decoded(key: string, v: StoredValue): CacheEntry | undefined {
    if (v.decoded !== undefined) return v.decoded;
    const small = v.value.length <= SAME_BYTES_LIMIT;
    if (small) {
      const prev = same.get(key);
      if (prev !== undefined && prev.flags === v.flags && prev.bytes.equals(v.value)) {
        v.decoded = prev.entry;
        return prev.entry;
      }
    }
    try {
      // Memoised on the stored value: the in-process tier keeps this object, so later hits skip decoding.
      v.decoded = decodeEntry(v.value, v.flags, raw);
      if (small) {
        if (same.size >= SAME_BYTES_MAX) same = new Map();
        same.set(key, { bytes: v.value, flags: v.flags, entry: v.decoded });
      }
      return v.decoded;
    } catch (err) {
      if (!(err instanceof EntryDecodeError)) throw err;
      // A corrupt or unknown-version entry is a miss: remove it so the next request stores a good one.
      discard(key, err);
      return undefined;
    }
  }

  function discard(key: string, err: Error): void {
    metrics.decodeErrors.inc();
    log.warn({ key, err: err.message }, 'undecodable entry deleted');
    same.delete(key);
    store.delete(key).catch(noop);
  }

  const keyFor = createKeyFunction(keyPrefix);
  // Memoised like keyFor: an https hit hashes nothing either.
  const secureKeyFor = createKeyFunction(keyPrefix, undefined, httpsVariantKey);
  const cache: PageCache = {
    store,
    keyPrefix,
    format,
    keyFor,
    secureKeyFor,
    getSync(key: string, now = Date.now()): CacheEntry | undefined {
      const v = store.getSync(key);
      if (v === undefined) return undefined;
      const e = decoded(key, v);
      if (e === undefined) return undefined;
      // A page stored under versions a purge has replaced is a miss (stale after a soft purge); undefined
      // (versions to read from memcached first) sends the caller to get(), which reads them in one round trip.
      const c = generations.currentSync(e, now);
      return c === 'current' ? e : c === 'stale' ? softened(e, now) : undefined;
    },
    async get(key: string): Promise<CacheEntry | undefined> {
      const v = await store.get(key);
      if (v === undefined) return undefined;
      const e = decoded(key, v);
      if (e === undefined) return undefined;
      const now = Date.now();
      const c = generations.currentSync(e, now) ?? (await generations.current(e, now));
      return c === 'current' ? e : c === 'stale' ? softened(e, now) : undefined;
    },
    async put(key: string, entry: CacheEntry): Promise<boolean> {
      if (format === 'raw' && !fitsRaw(entry)) {
        // A raw entry is served back as 200 with the configured type (nginx's default_type): a JSON page or
        // a 404 stored raw would come back as an HTML 200, so only what it would faithfully restore is stored.
        rawMismatch.inc();
        return false;
      }
      // Stamped with the versions now (its tags' and the global one), so a later purge holds without its index.
      const tags = plainTags(entry.tags);
      if (format === 'envelope' && tags.length > 0) entry = generations.stamp(entry);
      const { value, flags } = encodeEntry(entry, format, raw.gzipFlag);
      if (value.length > maxEntryBytes) {
        tooLarge.inc();
        log.warn({ key, bytes: value.length, maxEntryBytes }, 'page over the size limit not stored');
        return false;
      }
      // memcached keeps the entry through its stale windows, so it can still be served on error, and with a
      // validator through the keep window too, so it can be revalidated with a 304 (RFC 9111 §4.3).
      // Raw entries carry no times: nginx serves them while present, so they live for their freshness only.
      // Raw entries are fresh while present (here and in nginx), so they live for the freshness left now.
      const lifetime =
        format === 'envelope' ? entryLifetimeSeconds(entry, keepSeconds) : Math.max(1, Math.floor(entry.ttlSeconds - (Date.now() - entry.storedAt) / 1000));
      const ok = await store.set(key, value, flags, lifetime);
      if (ok) {
        stored.inc();
        // Envelope pages carry their versions, so the automatic site and prefix tags need no index: indexing
        // them appended every page to one ever-growing list per site (in memcached, or copied whole by the
        // embedded store on every store: 23 % of a cold-miss profile). Raw entries have no stamp: indexed.
        const indexed = format === 'envelope' ? tags.filter(isExplicitTag) : tags;
        if (indexed.length > 0) await tagIndex.index(key, indexed);
      }
      return ok;
    },
    async putVariant(key: string, entry: CacheEntry, names: readonly string[], headers: IncomingHttpHeaders): Promise<string | undefined> {
      // nginx serves a raw entry to every request whatever its headers: a varying page never goes raw.
      if (format === 'raw') {
        rawMismatch.inc();
        return undefined;
      }
      // The index this process holds (L1), else memcached's (another process may have made it): a new
      // generation only when there is none, so variants stored elsewhere stay reachable.
      let current: CacheEntry | undefined;
      try {
        current = cache.getSync(key) ?? (await cache.get(key));
      } catch {
        current = undefined;
      }
      const found = current === undefined ? undefined : readVariantIndex(current);
      let index = found !== undefined && sameNames(found.names, names) ? found : newVariantIndex(names);
      const secondary = variantKey(key, index, headers);
      if (!index.keys.includes(secondary)) {
        if (index.keys.length >= MAX_VARIANTS) {
          metrics.notStored.labels('vary').inc();
          return undefined;
        }
        index = { ...index, keys: [...index.keys, secondary] };
      }
      // The variant first: a lookup that reads the new index then finds its page (or misses and fetches it).
      const lifetime = entryLifetimeSeconds(entry, keepSeconds);
      if (!(await cache.put(secondary, entry))) return undefined;
      const ok = await cache.put(key, variantIndexEntry(index, lifetime, Date.now(), format));
      return ok ? secondary : undefined;
    },
    deletePage(key: string): string[] {
      const keys = [key, httpsVariantKey(key)];
      for (const k of keys) {
        same.delete(k);
        store.delete(k).catch(noop);
      }
      return keys;
    },
    delete(key: string): Promise<boolean> {
      same.delete(key);
      return store.delete(key);
    },
    discard,
    async purgeUrls(urls: readonly string[], options?: PurgeOptions): Promise<number> {
      return (await purgeUrlKeys(urls, options?.soft === true)).length;
    },
    async purgeTags(tags: readonly string[], options?: PurgeOptions): Promise<number> {
      return (await purgeTagKeys(tags, options?.soft === true)).length;
    },
    async purge(urls: readonly string[], tags: readonly string[], options?: PurgeOptions): Promise<string[]> {
      const soft = options?.soft === true;
      if (options?.all === true) await cache.purgeAll();
      return [...(await purgeUrlKeys(urls, soft)), ...(await purgeTagKeys(tags, soft))];
    },
    purgeAll(): Promise<void> {
      metrics.purged.labels('tag').inc();
      return generations.bump('all');
    },
  };

  // A page a soft purge by version reached, as lookups see it (stale), made once per decoded entry.
  const soft = new WeakMap<CacheEntry, CacheEntry | null>();
  function softened(e: CacheEntry, now: number): CacheEntry | undefined {
    let s = soft.get(e);
    if (s === undefined) {
      s = softPurged(e, now) ?? null;
      soft.set(e, s);
    }
    return s ?? undefined;
  }

  /**
   * Marks a stored page stale in every tier (soft-purge.ts), or deletes it when it cannot be served stale
   * (raw, or a response that forbids it); false when there was none.
   */
  async function softPurge(key: string): Promise<boolean> {
    store.evictLocal(key);
    const entry = await cache.get(key);
    if (entry === undefined) return false;
    const index = readVariantIndex(entry);
    if (index !== undefined) {
      // A page stored as Vary variants: each variant is marked stale; the index itself is no page.
      for (const variant of index.keys) await softPurge(variant);
      return true;
    }
    const stale = softPurged(entry, Date.now());
    if (stale === undefined) await cache.delete(key);
    else if (!(await cache.put(key, stale))) await cache.delete(key);
    return true;
  }

  /**
   * A tag purge sets new versions first (every page stamped with the old ones is a miss, or stale when soft,
   * whatever the indexes still hold), then deletes the pages its indexes list, or marks them stale.
   */
  async function purgeTagKeys(tags: readonly string[], soft: boolean): Promise<string[]> {
    if (tags.length === 0) return [];
    // Soft too: the indexes' pages are marked stale at once, the versions hold for those an index lost.
    await generations.bump(tags, soft);
    return tagIndex.purge(tags, soft ? softPurge : undefined);
  }

  async function purgeUrlKeys(urls: readonly string[], soft = false): Promise<string[]> {
    const out: string[] = [];
    for (const url of urls) {
      const key = keyForUrl(keyPrefix, url);
      if (key === undefined) continue;
      // The page as rendered for http (nginx's key) and for https (behind --trust-proxy), whatever the URL's scheme.
      // The https one is counted (and named to other processes) only where it was there: a site without
      // --trust-proxy never has one, and a purge of one URL reports one page.
      const secure = httpsVariantKey(key);
      let secureThere: boolean;
      if (soft) {
        await softPurge(key);
        secureThere = await softPurge(secure);
      } else {
        [, secureThere] = await Promise.all([store.delete(key), store.delete(secure)]);
      }
      metrics.purged.labels('url').inc();
      out.push(key);
      if (secureThere) out.push(secure);
    }
    return out;
  }

  return cache;
}

function noop(): void {}

/** 'Text/HTML; charset=utf-8' -> 'text/html'. */
function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

