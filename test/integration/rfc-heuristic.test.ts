// Freshness without an explicit lifetime (RFC 9111 §4.2.2) with --ttl 0: 10 % of the time since
// Last-Modified, capped by --max-heuristic-ttl, for heuristically cacheable statuses (RFC 9110 §15.1); and
// --cache-statuses any: any final status with explicit freshness may be stored (RFC 9111 §3).
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { sleep, startScriptedEdge, startScriptedOrigin } from '../helpers/scripted-origin';
import type { ScriptedOrigin } from '../helpers/scripted-origin';

let mc: MemcachedProcess;
let o: ScriptedOrigin;
let e: Awaited<ReturnType<typeof startScriptedEdge>>;
let capped: Awaited<ReturnType<typeof startScriptedEdge>>;
let any: Awaited<ReturnType<typeof startScriptedEdge>>;

const TEN_DAYS_AGO = new Date(Date.now() - 10 * 86400_000).toUTCString();

beforeAll(async () => {
  mc = await startMemcached();
  o = await startScriptedOrigin();
  e = await startScriptedEdge(o, { memcached: mc.address, ttl: 0 });
  capped = await startScriptedEdge(o, { memcached: mc.address, ttl: 0, maxHeuristicTtl: 1, l1TtlSeconds: 1 });
  any = await startScriptedEdge(o, { memcached: mc.address, ttl: 0, cacheStatuses: 'any' });
});

afterAll(async () => {
  for (const x of [e, capped, any]) await x.edge.close();
  await o.close();
  await mc.stop();
});

async function secondOf(edge: typeof e, path: string, status: number, headers: Record<string, string>): Promise<string | undefined> {
  o.script(path, { status, headers: { 'content-type': 'text/plain', ...headers }, body: `page ${path}` });
  await edge.get(path);
  return (await edge.get(path)).headers['x-cache'] as string | undefined;
}

describe('heuristic freshness with --ttl 0 (RFC 9111 §4.2.2)', () => {
  it('stores a 200 with Last-Modified and no stated lifetime', async () => {
    // RFC 9111 §4.2.2: a cache may assign a heuristic lifetime; 10 % of the time since Last-Modified.
    expect(await secondOf(e, '/lm-200', 200, { 'last-modified': TEN_DAYS_AGO })).toBe('HIT');
  });

  it('stores a heuristically cacheable 404 the same way (RFC 9110 §15.1)', async () => {
    expect(await secondOf(e, '/lm-404', 404, { 'last-modified': TEN_DAYS_AGO })).toBe('HIT');
  });

  it('does not store a page with neither a lifetime nor Last-Modified', async () => {
    expect(await secondOf(e, '/nothing', 200, {})).toBe('MISS');
  });

  it('caps the heuristic lifetime at --max-heuristic-ttl', async () => {
    o.script('/lm-capped', { headers: { 'content-type': 'text/plain', 'last-modified': TEN_DAYS_AGO }, body: 'capped' });
    await capped.get('/lm-capped');
    expect((await capped.get('/lm-capped')).headers['x-cache']).toBe('HIT');
    await sleep(2100);
    // 10 % of ten days is a day; the cap of 1 s made it stale (revalidated with If-Modified-Since).
    const r = await capped.get('/lm-capped');
    expect(r.headers['x-cache']).not.toBe('HIT');
    expect(o.seen('/lm-capped').at(-1)!['if-modified-since']).toBe(TEN_DAYS_AGO);
  });
});

describe('--cache-statuses any (RFC 9111 §3)', () => {
  it('stores a 500 with explicit freshness', async () => {
    expect(await secondOf(any, '/500-max-age', 500, { 'cache-control': 'max-age=600' })).toBe('HIT');
  });

  it('stores a 302 with explicit freshness', async () => {
    expect(await secondOf(any, '/302-max-age', 302, { 'cache-control': 'max-age=600', location: '/elsewhere' })).toBe('HIT');
  });

  it('does not store a 500 without explicit freshness, even with Last-Modified (not heuristically cacheable)', async () => {
    expect(await secondOf(any, '/500-lm', 500, { 'last-modified': TEN_DAYS_AGO })).toBe('MISS');
  });

  it('without it, a 500 with max-age is not stored (control)', async () => {
    expect(await secondOf(e, '/500-default', 500, { 'cache-control': 'max-age=600' })).toBe('MISS');
  });
});
