// explain (GET /explain on the admin port, `edge-page-cache explain`): the verdict and every reason, from the
// policy code the edge runs, for a stored page, a Set-Cookie page, a private page, a too-large page and a
// bypassed request; against a real memcached and a real origin, through the admin port and straight from memcached.
import { Registry } from 'prom-client';
import { explainCommand } from '../../src/cli/explain';
import { createAdminServer } from '../../src/edge/admin';
import type { AdminServer } from '../../src/edge/admin';
import type { ExplainReport } from '../../src/edge/explain';
import { localAdminBackend } from '../../src/edge/server';
import { request } from '../helpers/origin';
import { scriptedSuite, startScriptedEdge } from '../helpers/scripted-origin';
import { waitUntil } from '../helpers/express-app';

const s = scriptedSuite({ maxEntryBytes: 65536 });
let admin: AdminServer;
let adminUrl: string;

beforeAll(async () => {
  admin = createAdminServer({ port: 0, host: '127.0.0.1', token: undefined, registry: new Registry() }, localAdminBackend(s.e.edge));
  adminUrl = `http://127.0.0.1:${await admin.listen()}`;
  s.o.script('/stored', { headers: { 'cache-control': 'max-age=300', 'surrogate-key': 'news front', 'content-type': 'text/html' }, body: 'stored page' });
  s.o.script('/cookie', { headers: { 'cache-control': 'max-age=300', 'set-cookie': 'sid=1' }, body: 'cookie page' });
  s.o.script('/private', { headers: { 'cache-control': 'private, max-age=300', 'set-cookie': 'sid=2', vary: '*' }, body: 'private page' });
  s.o.script('/lang', (req) => ({ headers: { 'cache-control': 'max-age=300', vary: 'Accept-Language' }, body: `page in ${String(req.headers['accept-language'])}` }));
  s.o.script('/big', { headers: { 'cache-control': 'max-age=300', 'content-type': 'application/octet-stream' }, body: Buffer.alloc(100_000, 7) });
});
afterAll(async () => {
  await admin?.close();
});

async function explain(...args: string[]): Promise<ExplainReport> {
  return JSON.parse(await explainCommand([...args, '--admin', adminUrl, '--json'], {})) as ExplainReport;
}

describe('explain', () => {
  it('a stored page: key, node, HIT, age, TTL left, tags, and the origin answer would be stored', async () => {
    const first = await s.e.get('/stored');
    expect(first.headers['x-cache']).toBe('MISS');
    await waitUntil('stored in memcached', async () => (await explain('http://example.com/stored')).stored.memcached !== null);
    const before = s.o.seen('/stored').length;
    const r = await explain('http://example.com/stored', '--fetch');
    expect(r.key).toBe(s.e.edge.cache.keyFor('example.com', '/stored'));
    expect(r.node).toBe(s.mc.address);
    expect(r.request).toEqual({ method: 'GET', verdict: 'lookup', reasons: [] });
    for (const tier of [r.stored.l1, r.stored.memcached]) {
      expect(tier).toMatchObject({ state: 'fresh', status: 200, ttlSeconds: 300, tags: expect.arrayContaining(['news', 'front']), format: 'envelope', encoding: 'identity', bodyBytes: 11 });
      expect((tier as { ttlLeftSeconds: number }).ttlLeftSeconds).toBeGreaterThan(290);
    }
    expect(r.origin).toMatchObject({ status: 200, wouldStore: true, reasons: [], bodyBytes: 11 });
    expect(r.verdict).toMatch(/^HIT from L1/);
    // --fetch asked the origin once and stored nothing: the next request is still the stored page's HIT.
    expect(s.o.seen('/stored').length).toBe(before + 1);
    expect((await s.e.get('/stored')).headers['x-cache']).toBe('HIT');
  });

  it('a Set-Cookie page is not stored, for that reason', async () => {
    await s.e.get('/cookie');
    const r = await explain('http://example.com/cookie', '--fetch');
    expect(r.stored.memcached).toBeNull();
    expect(r.stored.l1).toBeNull();
    expect(r.origin).toMatchObject({ status: 200, wouldStore: false, reasons: ['set-cookie'] });
    expect(r.verdict).toBe("MISS: not stored now; the origin's answer now (200) would not be stored: set-cookie");
  });

  it('a private page lists every reason (private, Set-Cookie, Vary: *), not only the first', async () => {
    const r = await explain('http://example.com/private', '--fetch');
    expect(r.origin).toMatchObject({ wouldStore: false, reasons: ['private', 'set-cookie', 'vary'] });
  });

  it('a page with Vary: the variant the request selects, and how many the index holds', async () => {
    await s.e.get('/lang', { 'accept-language': 'fr' });
    await s.e.get('/lang', { 'accept-language': 'de' });
    const variants = async (): Promise<number> => ((await explain('http://example.com/lang', '--header', 'Accept-Language: fr')).stored.memcached as { variants?: number } | null)?.variants ?? 0;
    await waitUntil('both variants stored', async () => (await variants()) === 2);
    const fr = await explain('http://example.com/lang', '--header', 'Accept-Language: fr');
    expect(fr.stored.memcached).toMatchObject({ state: 'fresh', variants: 2, varyOn: ['accept-language'], bodyBytes: 'page in fr'.length });
    const none = await explain('http://example.com/lang', '--header', 'Accept-Language: it');
    expect(none.stored.memcached).toBeNull();
    expect(none.verdict).toMatch(/^MISS/);
  });

  it('a page over --max-entry-size is too-large', async () => {
    const got = await s.e.get('/big');
    expect(got.body.length).toBe(100_000);
    const r = await explain('http://example.com/big', '--fetch');
    expect(r.stored.memcached).toBeNull();
    expect(r.origin).toMatchObject({ status: 200, wouldStore: false, reasons: ['too-large'] });
    expect((r.origin as { bodyBytes: number }).bodyBytes).toBeGreaterThan(65536);
  });

  it('a bypassed request (POST with a session cookie) passes, with every reason, and is never stored', async () => {
    const r = await explain('http://example.com/stored', '--method', 'POST', '--header', 'Cookie: session=abc', '--fetch');
    expect(r.request).toEqual({ method: 'POST', verdict: 'pass', reasons: ['method', 'cookie'] });
    expect(r.verdict).toBe('BYPASS: this request is never looked up (method, cookie)');
    expect(r.origin).toMatchObject({ wouldStore: false });
    // The fill is never made for a POST: the store policy says 'method' too (the cookie is the request's reason).
    expect((r.origin as unknown as { reasons: string[] }).reasons).toEqual(['method']);
    // The same page without them is still a HIT: explain stored and deleted nothing.
    expect((await explain('http://example.com/stored')).stored.memcached).toMatchObject({ state: 'fresh' });
  });

  it('reads memcached directly with --memcached, and prints human text without --json', async () => {
    const text = await explainCommand(['http://example.com/stored', 'http://example.com/cookie', '--memcached', s.mc.address, '--key-prefix', s.e.edge.options.keyPrefix], {});
    expect(text).toContain(`key       ${s.e.edge.cache.keyFor('example.com', '/stored')} on memcached node ${s.mc.address}`);
    expect(text).toMatch(/memcached fresh, status 200, age \d+ s, \d+ s fresh left \(ttl 300 s/);
    expect(text).toMatch(/tags: news front/);
    expect(text).toContain('verdict   MISS: not stored now');
  });

  it('GET /explain refuses a query without an absolute URL (400 naming it) and a bad --header', async () => {
    const adminPort = Number(new URL(adminUrl).port);
    const bad = await request(adminPort, '/explain?url=/relative', { host: '127.0.0.1' });
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toContain('absolute http(s) URL');
    await expect(explainCommand(['http://example.com/', '--header', 'nocolon', '--admin', adminUrl], {})).rejects.toThrow("--header must be 'Name: value'");
  });
});

describe('explain with cache rules', () => {
  it('applies the rule the edge would: bypass, a normalised key, and the rule\'s own store policy', async () => {
    s.o.script('/news/a', { headers: { 'content-type': 'text/html' }, body: 'no freshness stated' });
    const ruled = await startScriptedEdge(s.o, {
      memcached: s.mc.address,
      ttl: 0,
      rules: [
        { path: '/account/**', bypass: true },
        { path: '/news/**', ttl: 60, key: { dropParams: ['utm_*'] } },
      ],
    });
    try {
      const bypassed = await ruled.edge.explain({ url: 'http://example.com/account/me', method: 'GET', headers: {}, fetch: false });
      expect(bypassed).toMatchObject({ rule: 0, request: { verdict: 'pass', reasons: ['rule 0 bypasses'] } });
      const news = await ruled.edge.explain({ url: 'http://example.com/news/a?utm_source=x', method: 'GET', headers: {}, fetch: true });
      // The key of the URI without utm_*, as recv computes it; and stored for the rule's ttl although the page states none.
      expect(news).toMatchObject({ rule: 1, requestUri: '/news/a', key: ruled.edge.cache.keyFor('example.com', '/news/a') });
      expect(news.origin).toMatchObject({ wouldStore: true, reasons: [] });
      const other = await ruled.edge.explain({ url: 'http://example.com/other', method: 'GET', headers: {}, fetch: false });
      expect(other.rule).toBeUndefined();
    } finally {
      await ruled.edge.close();
    }
  });
});
