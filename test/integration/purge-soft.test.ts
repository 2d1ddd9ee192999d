// Soft purge (issue 16): pages marked stale instead of deleted. Through the real CLI and a 2-worker edge on
// memcached: after `purge --soft` the next requests get the old page at once (UPDATING) while exactly one
// refresh reaches the origin, nobody waits on it; a must-revalidate page is revalidated before use; hard
// purge stays the default; --rewarm refetches the purged URLs; the middleware's purgeUrls takes { soft }.
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { cacheKey } from '../../src/core/key';
import { decodeEntry } from '../../src/core/entry';
import { freshness } from '../../src/core/policy';
import { runCli, startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { memcachedForSuite } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';
import { tagHeadKey, tagIndexKey } from '../../src/core/tags';

const TOKEN = 'purge-soft-token-0123456789';
const PREFIX = `soft${Date.now()}:`;
const mc = memcachedForSuite();
let origin: TestOrigin;
let edge: EdgeProcess;
/** Origin requests by path, and the version each path renders now. */
const hits = new Map<string, number>();
const version = new Map<string, number>();
let slowMs = 0;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const v = version.get(path) ?? 1;
    const etag = `"v${v}"`;
    const cc = path.startsWith('/strict/') ? 'max-age=300, must-revalidate' : 'max-age=300';
    setTimeout(() => {
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag, 'cache-control': cc });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', etag, 'cache-control': cc, 'surrogate-key': 'news' });
      res.end(`${path} v${v}`);
    }, slowMs);
  });
  edge = await startEdge(['--origin', origin.url, '--memcached', mc.address, '--workers', '2', '--admin-token', TOKEN, '--key-prefix', PREFIX]);
});
afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

const admin = (): string[] => ['--admin', `http://127.0.0.1:${edge.adminPort}`, '--admin-token', TOKEN];

async function stored(path: string): Promise<void> {
  let r = await request(edge.port, path);
  for (let i = 0; i < 20 && r.headers['x-cache'] !== 'HIT'; i++) r = await request(edge.port, path);
  expect(r.headers['x-cache']).toBe('HIT');
}

it('after purge --soft, 20 concurrent requests get the old page at once while exactly one refresh reaches the origin', async () => {
  const path = `/page/${Date.now()}`;
  await stored(path);
  expect(hits.get(path)).toBe(1);
  const out = await runCli(['purge', '--soft', `http://example.com${path}`, ...admin()]);
  expect(out.code).toBe(0);
  version.set(path, 2);
  slowMs = 800;
  try {
    const t0 = Date.now();
    const replies = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const start = Date.now();
        const r = await request(edge.port, path);
        return { ms: Date.now() - start, cache: r.headers['x-cache'], body: r.body.toString() };
      }),
    );
    // Nobody waited on the 800 ms origin: every answer was the stored page.
    for (const r of replies) {
      expect(r.body).toBe(`${path} v1`);
      expect(r.cache).toBe('UPDATING');
      expect(r.ms).toBeLessThan(600);
    }
    expect(Date.now() - t0).toBeLessThan(700);
    await sleep(1200);
  } finally {
    slowMs = 0;
  }
  // One refresh for both workers (the fill lock), whose answer (a new ETag) is the page from now on.
  expect(hits.get(path)).toBe(2);
  const after = await request(edge.port, path);
  expect(after.headers['x-cache']).toBe('HIT');
  expect(after.body.toString()).toBe(`${path} v2`);
});

it('a soft-purged must-revalidate page is revalidated before use, never served stale', async () => {
  const path = `/strict/${Date.now()}`;
  await stored(path);
  expect((await runCli(['purge', '--soft', `http://example.com${path}`, ...admin()])).code).toBe(0);
  const r = await request(edge.port, path);
  expect(r.headers['x-cache']).toBe('REVALIDATED');
  expect(hits.get(path)).toBe(2);
});

it('hard purge stays the default: the next request is a MISS', async () => {
  const path = `/hard/${Date.now()}`;
  await stored(path);
  expect((await runCli(['purge', `http://example.com${path}`, ...admin()])).code).toBe(0);
  expect((await request(edge.port, path)).headers['x-cache']).toBe('MISS');
});

it('--rewarm refetches the purged URLs through the edge, so the next visitor gets the new page as a HIT', async () => {
  const path = `/rewarm/${Date.now()}`;
  await stored(path);
  version.set(path, 2);
  const out = await runCli(['purge', '--soft', '--rewarm', '--edge', `http://127.0.0.1:${edge.port}`, `http://example.com${path}`, ...admin()]);
  expect(out.code).toBe(0);
  expect(out.stdout).toMatch(/rewarmed 1 of 1 URL/);
  for (let i = 0; i < 50 && hits.get(path) !== 2; i++) await sleep(20);
  expect(hits.get(path)).toBe(2);
  await sleep(100);
  const r = await request(edge.port, path);
  expect(r.headers['x-cache']).toBe('HIT');
  expect(r.body.toString()).toBe(`${path} v2`);
});

it("the middleware's purgeUrls({ soft }) leaves the page in memcached, stale while revalidating", async () => {
  const prefix = `softmw${Date.now()}:`;
  const mw = pageCache({ memcached: mc.address, keyPrefix: prefix, registry: new Registry() });
  try {
    const entry = { status: 200, headers: ['content-type', 'text/plain'], body: Buffer.from('x'), storedAt: Date.now(), ttlSeconds: 300, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, tags: [], format: 'envelope' as const };
    const key = cacheKey(prefix, 'example.com', '/mw');
    expect(await mw.cache.put(key, entry)).toBe(true);
    expect(await mw.purgeUrls(['http://example.com/mw'], { soft: true })).toBeGreaterThanOrEqual(1);
    const v = await mc.direct.get(key);
    expect(v).toBeDefined();
    const raw = { defaultContentType: 'text/html', gzipFlag: 2, ttlSeconds: 0 };
    expect(freshness(decodeEntry(v!.value, v!.flags, raw), Date.now())).toBe('stale-while-revalidate');
  } finally {
    await mw.close();
  }
});

it('a soft tag purge after memcached lost the tag index: the old page at once (UPDATING), one refresh (generation counters)', async () => {
  const path = `/tagged/${Date.now()}`;
  await stored(path);
  await mc.direct.delete(tagHeadKey(PREFIX, 'news'));
  for (let chunk = 0; chunk < 4; chunk++) await mc.direct.delete(tagIndexKey(PREFIX, 'news', chunk));
  version.set(path, 2);
  const r = await request(edge.adminPort, '/purge', {
    method: 'POST',
    host: '127.0.0.1',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tags: ['news'], soft: true }),
  });
  expect(r.status).toBe(200);
  // Both workers learn the new version within --l1-ttl (2 s).
  await sleep(2100);
  const first = await request(edge.port, path);
  expect(first.headers['x-cache']).toBe('UPDATING');
  expect(first.body.toString()).toBe(`${path} v1`);
  for (let i = 0; i < 50 && hits.get(path) !== 2; i++) await sleep(20);
  expect(hits.get(path)).toBe(2);
  await sleep(100);
  const after = await request(edge.port, path);
  expect(after.body.toString()).toBe(`${path} v2`);
  expect(hits.get(path)).toBe(2);
});
