// Prefix and site purge across two edge processes sharing one memcached (through the automatic site and
// path-prefix tags, no listing of memcached keys), by the CLI through the admin port and straight in
// memcached, and per-site admin tokens: a tenant purges its own host only.
import { startEdge, runCli } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';
import { tagHeadKey, tagIndexKey } from '../../src/core/tags';
import { parseServerList } from '../../src/core/ring';
import { createMemcachedStore } from '../../src/core/stores/memcached';

const TOKEN = 'purge-scope-global-token-0123';
const TENANT = 'purge-scope-tenant-token-4567';
const PREFIX = `scope${Date.now()}:`;

let mc: MemcachedProcess;
let origin: TestOrigin;
let a: EdgeProcess;
let b: EdgeProcess;
const renders = new Map<string, number>();

beforeAll(async () => {
  mc = await startMemcached();
  origin = await startOrigin((req, res) => {
    const k = `${req.headers.host}${req.url}`;
    renders.set(k, (renders.get(k) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300', 'surrogate-key': `section-${(req.url ?? '/').split('/')[1]}` });
    res.end(k);
  });
  const flags = ['--origin', origin.url, '--memcached', mc.address, '--l1-ttl', '1', '--key-prefix', PREFIX, '--admin-token', TOKEN, '--site-token', `example.com=${TENANT}`];
  [a, b] = await Promise.all([startEdge(flags), startEdge(flags)]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await origin?.close();
  await mc?.stop();
});

const PAGES: [host: string, path: string][] = [
  ['example.com', '/blog/a'],
  ['example.com', '/blog/2024/b'],
  ['example.com', '/shop/c'],
  ['other.com', '/blog/a'],
];

async function xcache(edge: EdgeProcess, host: string, path: string): Promise<string | string[] | undefined> {
  return (await request(edge.port, path, { host })).headers['x-cache'];
}

/** Fills every page through edge a, and waits until edge b finds each in memcached. */
async function fillAll(): Promise<void> {
  for (const [host, path] of PAGES) await request(a.port, path, { host });
  for (const [host, path] of PAGES) {
    let x = await xcache(b, host, path);
    for (let i = 0; i < 20 && x !== 'HIT'; i++) x = await xcache(b, host, path);
    expect(x).toBe('HIT');
  }
}

function purgeBody(token: string, body: unknown): Promise<{ status: number; body: Buffer }> {
  return request(a.adminPort, '/purge', {
    method: 'POST',
    host: '127.0.0.1',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

it('purge --prefix through one edge: the other edge misses every page under it (within --l1-ttl) and keeps the rest', async () => {
  await fillAll();
  const out = await runCli(['purge', '--prefix', 'https://example.com/blog/', '--admin', `http://127.0.0.1:${a.adminPort}`, '--admin-token', TOKEN]);
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  // Prefixes are purged by a new version, not by listing pages (no index is kept for the automatic tags).
  expect(JSON.parse(out.stdout)).toEqual({ purged: 0, versioned: 1 });
  await sleep(1100);
  expect(await xcache(b, 'example.com', '/blog/a')).toBe('MISS');
  expect(await xcache(b, 'example.com', '/blog/2024/b')).toBe('MISS');
  expect(await xcache(b, 'example.com', '/shop/c')).toBe('HIT');
  expect(await xcache(b, 'other.com', '/blog/a')).toBe('HIT');
});

it('purge --site straight in memcached: every page of that host, on both edges, and no other host', async () => {
  await fillAll();
  const out = await runCli(['purge', '--site', 'other.com', '--memcached', mc.address, '--key-prefix', PREFIX]);
  expect(out.code).toBe(0);
  expect(out.stdout).toMatch(/^purged 0 key\(s\) in memcached; 1 prefix\/site\/all version\(s\) renewed: every page under them is a miss/);
  await sleep(1100);
  expect(await xcache(a, 'other.com', '/blog/a')).toBe('MISS');
  expect(await xcache(b, 'example.com', '/shop/c')).toBe('HIT');
});

it('POST /purge {"sites"} purges a whole host through the admin port', async () => {
  await fillAll();
  const r = await purgeBody(TOKEN, { sites: ['example.com'] });
  expect(r.status).toBe(200);
  expect(JSON.parse(r.body.toString())).toEqual({ purged: 0, versioned: 1 });
  await sleep(1100);
  for (const path of ['/blog/a', '/blog/2024/b', '/shop/c']) expect(await xcache(b, 'example.com', path)).toBe('MISS');
  expect(await xcache(b, 'other.com', '/blog/a')).toBe('HIT');
});

it('a tenant token purges its own host, and is refused (403) for another host or for tags', async () => {
  await fillAll();
  const foreign = await purgeBody(TENANT, { urls: ['http://other.com/blog/a'] });
  expect(foreign.status).toBe(403);
  expect(foreign.body.toString()).toMatch(/purges only example\.com, not http:\/\/other\.com\/blog\/a/);
  expect((await purgeBody(TENANT, { sites: ['other.com'] })).status).toBe(403);
  expect((await purgeBody(TENANT, { prefixes: ['https://other.com/blog/'] })).status).toBe(403);
  expect((await purgeBody(TENANT, { tags: ['anything'] })).status).toBe(403);
  await sleep(1100);
  expect(await xcache(b, 'other.com', '/blog/a')).toBe('HIT');
  const own = await purgeBody(TENANT, { prefixes: ['https://example.com/shop/'] });
  expect(own.status).toBe(200);
  await sleep(1100);
  expect(await xcache(b, 'example.com', '/shop/c')).toBe('MISS');
  // Neither the tenant's token nor a wrong one opens the rest of the admin port.
  expect((await request(a.adminPort, '/reload', { method: 'POST', host: '127.0.0.1', headers: { authorization: `Bearer ${TENANT}` } })).status).toBe(401);
});

it('a prefix no tag covers is refused with the reason', async () => {
  const r = await purgeBody(TOKEN, { prefixes: ['https://example.com/blog'] });
  expect(r.status).toBe(400);
  expect(r.body.toString()).toMatch(/must end with '\/'/);
  const cli = await runCli(['purge', '--prefix', 'https://example.com/a/b/c/d/', '--admin', `http://127.0.0.1:${a.adminPort}`, '--admin-token', TOKEN]);
  expect(cli.code).not.toBe(0);
  expect(cli.stderr).toMatch(/4 directories deep/);
});

it('a tag purge still reaches every page after memcached lost every index chunk of that tag (generation counters)', async () => {
  await fillAll();
  // As if memcached had evicted them: the tag's index chunks and head, and the site's and prefixes' too.
  const direct = createMemcachedStore({ servers: parseServerList('memcached', mc.address), timeoutMs: 1000 });
  try {
    for (const tag of ['section-blog', 'epc:site:example.com', 'epc:prefix:example.com/blog/', 'epc:prefix:example.com/blog/2024/']) {
      await direct.delete(tagHeadKey(PREFIX, tag));
      for (let chunk = 0; chunk < 4; chunk++) await direct.delete(tagIndexKey(PREFIX, tag, chunk));
    }
  } finally {
    await direct.close();
  }
  const r = await purgeBody(TOKEN, { tags: ['section-blog'] });
  expect(r.status).toBe(200);
  // Nothing listed, nothing deleted: the pages are still in memcached, yet none is served any more.
  expect(JSON.parse(r.body.toString())).toEqual({ purged: 0 });
  await sleep(1100);
  for (const [host, path] of PAGES.filter(([, p]) => p.startsWith('/blog/'))) expect(await xcache(b, host, path)).toBe('MISS');
  expect(await xcache(b, 'example.com', '/shop/c')).toBe('HIT');
  // And a site purge, with its index gone too.
  await fillAll();
  for (const chunk of [0, 1]) {
    const d = createMemcachedStore({ servers: parseServerList('memcached', mc.address), timeoutMs: 1000 });
    await d.delete(tagIndexKey(PREFIX, 'epc:site:example.com', chunk));
    await d.close();
  }
  expect((await purgeBody(TOKEN, { sites: ['example.com'] })).status).toBe(200);
  await sleep(1100);
  expect(await xcache(b, 'example.com', '/shop/c')).toBe('MISS');
  expect(await xcache(a, 'other.com', '/blog/a')).toBe('HIT');
});

it('purge --all (a new global version) makes every page a miss; a tenant token may not ask for it', async () => {
  await fillAll();
  expect((await purgeBody(TENANT, { all: true })).status).toBe(403);
  const out = await runCli(['purge', '--all', '--admin', `http://127.0.0.1:${a.adminPort}`, '--admin-token', TOKEN]);
  expect(out.code).toBe(0);
  await sleep(1100);
  for (const [host, path] of PAGES) expect(await xcache(b, host, path)).toBe('MISS');
});
