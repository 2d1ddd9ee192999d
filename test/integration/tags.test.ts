// Tag purge at scale: indexes grow in chunks when the store refuses a bigger one, re-stores do not
// duplicate keys, and a purge reaches every page of the tag, on the embedded store and on memcached.
import { Registry } from 'prom-client';
import { createPageCache, tagHeadKey } from '../../src/core/cache';
import type { CacheEntry } from '../../src/core/entry';
import { cacheMetrics } from '../../src/core/metrics';
import { parseServerList } from '../../src/core/ring';
import { createMemcachedStore } from '../../src/core/stores/memcached';
import { createMemoryStore } from '../../src/core/stores/memory';
import type { CacheStore } from '../../src/core/store';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';

let mc: MemcachedProcess;
beforeAll(async () => {
  // A 64 KiB item limit, so a tag index of a few thousand keys needs several chunks on memcached too.
  mc = await startMemcached(['-I', '64k', '-o', 'slab_chunk_max=32768']);
});
afterAll(() => mc.stop());

function page(tags: string[]): CacheEntry {
  return { status: 200, headers: ['content-type', 'text/html'], body: Buffer.from('<p>x</p>'), storedAt: Date.now(), ttlSeconds: 300, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, tags, format: 'envelope' };
}

describe.each<[string, () => CacheStore, number]>([
  ['the embedded store (4 KiB chunks)', () => createMemoryStore({ maxBytes: 64 * 1024 * 1024, maxEntryBytes: 4096, tier: 'l2', metrics: cacheMetrics(new Registry()) }), 500],
  ['memcached (-I 64k)', () => createMemcachedStore({ servers: parseServerList('memcached', mc.address), timeoutMs: 1000, metrics: cacheMetrics(new Registry()) }), 4000],
])('tag purge on %s', (_name, makeStore, pages) => {
  it(`reaches all ${pages} pages of a tag, past several index chunks, and stays right when pages are stored again`, async () => {
    const store = makeStore();
    const cache = createPageCache({
      store,
      keyPrefix: `tags${Date.now()}:`,
      format: 'envelope',
      raw: { defaultContentType: 'text/html', gzipFlag: 2, ttlSeconds: 0 },
      maxEntryBytes: 1024 * 1024,
      metrics: cacheMetrics(new Registry()),
    });
    try {
      const keys = Array.from({ length: pages }, (_, i) => cache.keyFor('example.com', `/p/${i}`));
      for (const key of keys) expect(await cache.put(key, page(['all', 'other']))).toBe(true);
      // Stored again (each store appends again; a purge reads each key once).
      for (const key of keys.slice(0, 50)) await cache.put(key, page(['all', 'other']));
      const purged = await cache.purge([], ['all']);
      expect(purged.length).toBe(pages);
      expect(new Set(purged)).toEqual(new Set(keys));
      for (const key of [keys[0]!, keys[pages - 1]!]) expect(await cache.get(key)).toBeUndefined();
      // Writers racing to move the head can leave it behind chunks in use: a purge still reads them all.
      for (const key of keys) await cache.put(key, page(['late']));
      await store.set(tagHeadKey(cache.keyPrefix, 'late'), Buffer.from('1'), 0, 0);
      expect(new Set(await cache.purge([], ['late']))).toEqual(new Set(keys));
      // A page stored after the purge is found by the next one.
      await cache.put(keys[0]!, page(['all']));
      expect(await cache.purge([], ['all'])).toEqual([keys[0]]);
    } finally {
      await store.close();
    }
  });
});

it('a purge by another process still finds a page stored again after an earlier purge', async () => {
  // Two page caches on one memcached, nothing shared but memcached, as two edges or workers.
  const keyPrefix = `tags-x${Date.now()}:`;
  const make = (): ReturnType<typeof createPageCache> =>
    createPageCache({
      store: createMemcachedStore({ servers: parseServerList('memcached', mc.address), timeoutMs: 1000, metrics: cacheMetrics(new Registry()) }),
      keyPrefix,
      format: 'envelope',
      raw: { defaultContentType: 'text/html', gzipFlag: 2, ttlSeconds: 0 },
      maxEntryBytes: 1024 * 1024,
      metrics: cacheMetrics(new Registry()),
    });
  const a = make();
  const b = make();
  try {
    const key = b.keyFor('example.com', '/tagged');
    await b.put(key, page(['tagA']));
    expect(await a.purge([], ['tagA'])).toEqual([key]);
    await b.put(key, page(['tagA']));
    expect(await a.purge([], ['tagA'])).toEqual([key]);
    expect(await b.get(key)).toBeUndefined();
  } finally {
    await a.store.close();
    await b.store.close();
  }
});

it('in raw format, refuses bodies whose coding a raw entry cannot mark (only gzip has a flag)', async () => {
  const cache = createPageCache({
    store: createMemoryStore({ maxBytes: 1024 * 1024, tier: 'l2', metrics: cacheMetrics(new Registry()) }),
    keyPrefix: '',
    format: 'raw',
    raw: { defaultContentType: 'text/html', gzipFlag: 2, ttlSeconds: 60 },
    maxEntryBytes: 1024 * 1024,
    metrics: cacheMetrics(new Registry()),
  });
  const coded = (coding: string): CacheEntry => ({ ...page([]), headers: ['content-type', 'text/html', 'content-encoding', coding] });
  expect(await cache.put('k-br', coded('br'))).toBe(false);
  expect(await cache.put('k-deflate', coded('deflate'))).toBe(false);
  expect(await cache.put('k-gzip', coded('gzip'))).toBe(true);
  expect(await cache.put('k-plain', page([]))).toBe(true);
});
