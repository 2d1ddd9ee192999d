// Tags (Surrogate-Key or cacheTags()) and purge by URL and by tag: through the middleware itself and
// through the package's purge helpers against the memcached node list.
import { plainTags } from '../../src/core/generations';
import express from 'express';
import { cacheTags, pageCache, purgeTags, purgeUrls } from '../../src';
import { tagIndexKey } from '../../src/core/cache';
import { decodeEnvelope } from '../../src/core/entry';
import { cacheKey } from '../../src/core/key';
import { parseServerList } from '../../src/core/ring';
import { createMemcachedStore } from '../../src/core/stores/memcached';
import type { CacheStore } from '../../src/core/store';
import { Counter, listen, uniquePrefix, waitStored, waitUntil, closeAfterEach } from '../helpers/express-app';
import { startMemcacheds } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request } from '../helpers/origin';

let nodes: MemcachedProcess[] = [];
let list = '';
let direct: CacheStore;
const track = closeAfterEach();

beforeAll(async () => {
  nodes = await startMemcacheds(3);
  list = nodes.map((n) => n.address).join(',');
  direct = createMemcachedStore({ servers: parseServerList('memcached', list), timeoutMs: 1000 });
});
afterAll(async () => {
  await direct.close();
  await Promise.all(nodes.map((n) => n.stop()));
});

/** Posts tagged by header, by cacheTags(), or both; memoryBytes 0 so every read goes to memcached. */
async function blog(memoryBytes?: number) {
  const prefix = uniquePrefix('purge');
  const mw = pageCache({ memcached: list, keyPrefix: prefix, ttl: 60, ...(memoryBytes === undefined ? {} : { memoryBytes }) });
  const app = express();
  app.use(mw);
  const runs = new Counter();
  app.get('/posts/:id', (req, res) => {
    runs.inc(req.params.id);
    res.set('surrogate-key', `post-${req.params.id}`);
    cacheTags(res, 'posts', `author-${Number(req.params.id) % 2}`);
    res.send(`<h1>post ${req.params.id}</h1>`);
  });
  const running = await listen(app);
  track(running, mw);
  return { port: running.port, prefix, runs, mw };
}

async function warm(port: number, prefix: string, ids: readonly number[]): Promise<void> {
  for (const id of ids) await request(port, `/posts/${id}`);
  for (const id of ids) await waitStored(direct, prefix, 'example.com', `/posts/${id}`);
  // Tag indexes are written after the page itself; the last one is author-N.
  for (const id of ids) {
    const key = cacheKey(prefix, 'example.com', `/posts/${id}`);
    await waitUntil(`post ${id} in its tag index`, () => inTagIndex(prefix, `author-${id % 2}`, key));
  }
}

/**
 * Whether `key` is in any chunk of the tag's index. Stores finish after their responses, so the stores of
 * pages warmed one after another overlap; when two create a tag's first chunk at once, the one whose `add`
 * loses moves on to chunk 1 (and records it as the head a purge reads up to), so chunk 0 alone is not enough.
 */
async function inTagIndex(prefix: string, tag: string, key: string): Promise<boolean> {
  const chunks = await Promise.all(Array.from({ length: 8 }, (_, chunk) => direct.get(tagIndexKey(prefix, tag, chunk))));
  return chunks.some((c) => c !== undefined && c.value.toString('latin1').split(' ').includes(key));
}

it('stores the tags from Surrogate-Key and cacheTags(), and keeps the header off the wire', async () => {
  const b = await blog();
  const first = await request(b.port, '/posts/1');
  expect(first.headers['surrogate-key']).toBeUndefined();
  await waitStored(direct, b.prefix, 'example.com', '/posts/1');
  const stored = await direct.get(cacheKey(b.prefix, 'example.com', '/posts/1'));
  // Then the automatic site and path-prefix tags (purgeSites / purgePrefixes, src/core/tags.ts).
  // (The last, a generation stamp, is not a tag: generations.ts.)
  expect(plainTags(decodeEnvelope(stored!.value).tags)).toEqual(['post-1', 'posts', 'author-1', 'epc:site:example.com', 'epc:prefix:example.com/posts/']);
});

it('purges by tag through the middleware: only the tagged pages render again', async () => {
  const b = await blog();
  await warm(b.port, b.prefix, [1, 2, 3, 4]);
  expect(await b.mw.purgeTags(['author-1'])).toBe(2);
  const x = await Promise.all([1, 2, 3, 4].map((id) => request(b.port, `/posts/${id}`)));
  expect(x.map((r) => r.headers['x-cache'])).toEqual(['MISS', 'HIT', 'MISS', 'HIT']);
  expect([1, 2, 3, 4].map((id) => b.runs.get(String(id)))).toEqual([2, 1, 2, 1]);
});

it('purges by URL through the middleware, L1 included', async () => {
  const b = await blog();
  await warm(b.port, b.prefix, [5]);
  expect((await request(b.port, '/posts/5')).headers['x-cache']).toBe('HIT');
  expect(await b.mw.purgeUrls(['http://example.com/posts/5'])).toBe(1);
  expect((await request(b.port, '/posts/5')).headers['x-cache']).toBe('MISS');
  expect(b.runs.get('5')).toBe(2);
});

it('purges by URL and by tag with the exported helpers against the memcached node list', async () => {
  const b = await blog(0);
  await warm(b.port, b.prefix, [1, 2, 3]);
  expect(await purgeUrls(['https://EXAMPLE.com:8443/posts/1'], { memcached: list, keyPrefix: b.prefix })).toBe(1);
  expect(await purgeTags(['post-2'], { memcached: list, keyPrefix: b.prefix })).toBe(1);
  await waitUntil('purged pages to be gone', async () => (await direct.get(cacheKey(b.prefix, 'example.com', '/posts/2'))) === undefined);
  const x = await Promise.all([1, 2, 3].map((id) => request(b.port, `/posts/${id}`)));
  expect(x.map((r) => r.headers['x-cache'])).toEqual(['MISS', 'MISS', 'HIT']);
});

it('rejects tags that would split into several', () => {
  const res = { getHeader: () => undefined, setHeader: () => undefined } as unknown as Parameters<typeof cacheTags>[0];
  expect(() => cacheTags(res, 'two words')).toThrow(TypeError);
});
