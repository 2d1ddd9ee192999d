// The edge in front of a real origin, on the embedded store and on real memcached: misses, hits, HEAD,
// 304, pass, privacy rules, invalidation, and refused input.
import { Registry } from 'prom-client';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import type { EdgeOptions } from '../../src/edge/options';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { rawRequest, request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

let origin: TestOrigin;
let mc: MemcachedProcess;
let prefixSeq = 0;

beforeAll(async () => {
  mc = await startMemcached();
  origin = await startOrigin((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/private')) {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'private, max-age=60' });
      res.end(`private page for ${req.headers['x-user'] ?? 'nobody'}`);
    } else if (url.startsWith('/cookie')) {
      res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'sid=secret', 'cache-control': 'max-age=60' });
      res.end(`cookie page ${Math.random()}`);
    } else if (url.startsWith('/whoami')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end(`cookie=${req.headers.cookie ?? ''} auth=${req.headers.authorization ?? ''}`);
    } else if (url.startsWith('/django')) {
      // As Django's session and CSRF middleware answer: the page depends on the session cookie.
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60', vary: 'Cookie, Accept-Encoding' });
      res.end(req.headers.cookie?.includes('sessionid=') ? `hello ${req.headers.cookie}` : 'hello anonymous');
    } else if (url.startsWith('/by-language')) {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60', vary: 'Accept-Language' });
      res.end(`page in ${req.headers['accept-language'] ?? 'en'}`);
    } else if (url.startsWith('/echo')) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/octet-stream', location: '/page' });
        res.end(Buffer.concat(chunks));
      });
    } else if (url.startsWith('/headers')) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(req.headers));
    } else {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'max-age=60',
        etag: '"v1"',
        'last-modified': 'Sat, 01 Nov 2026 00:00:00 GMT',
        'surrogate-key': 'page all',
      });
      res.end(`<h1>page ${url}</h1>`);
    }
  });
});

afterAll(async () => {
  await origin.close();
  await mc.stop();
});

async function edgeWith(extra: EdgeOptions = {}): Promise<{ edge: EdgeServer; port: number }> {
  prefixSeq++;
  const edge = createEdgeServer(
    { origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: `basic${prefixSeq}-${Date.now()}:`, ...extra },
    { registry: new Registry() },
  );
  const port = await edge.listen();
  return { edge, port };
}

describe.each([
  ['embedded store', (): EdgeOptions => ({})],
  ['memcached', (): EdgeOptions => ({ memcached: mc.address })],
])('edge on the %s', (_name, extra) => {
  let edge: EdgeServer;
  let port: number;
  beforeAll(async () => {
    ({ edge, port } = await edgeWith(extra()));
  });
  afterAll(async () => {
    await edge.close();
  });

  it('misses once, then hits without reaching the origin', async () => {
    const path = `/page?x=${prefixSeq}&name=${_name.replace(' ', '')}`;
    const a = await request(port, path);
    expect(a.status).toBe(200);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.headers['cache-status']).toBe('edge-page-cache; fwd=uri-miss');
    expect(a.headers['surrogate-key']).toBeUndefined();
    const b = await request(port, path);
    expect(b.status).toBe(200);
    expect(b.headers['x-cache']).toBe('HIT');
    expect(b.headers['cache-status']).toBe('edge-page-cache; hit');
    expect(b.headers.age).toBe('0');
    expect(b.body.equals(a.body)).toBe(true);
    expect(b.body.toString()).toBe(`<h1>page ${path}</h1>`);
    expect(b.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(b.headers['content-length']).toBe(String(a.body.length));
    expect(origin.hits(path)).toBe(1);
  });

  it('keys on host and the raw request_uri: another host or query order is another page', async () => {
    const path = `/page?a=1&b=2&k=${_name.length}`;
    await request(port, path);
    expect((await request(port, path, { host: 'EXAMPLE.com:8080' })).headers['x-cache']).toBe('HIT');
    expect((await request(port, path, { host: 'other.example' })).headers['x-cache']).toBe('MISS');
    expect((await request(port, `/page?b=2&a=1&k=${_name.length}`)).headers['x-cache']).toBe('MISS');
  });

  it('answers HEAD from the cache without a body, and a HEAD miss fills the cache', async () => {
    const path = `/page/head-${_name.length}`;
    const h = await request(port, path, { method: 'HEAD' });
    expect(h.status).toBe(200);
    expect(h.body.length).toBe(0);
    expect(h.headers['content-length']).toBe(String(`<h1>page ${path}</h1>`.length));
    const g = await request(port, path);
    expect(g.headers['x-cache']).toBe('HIT');
    expect(g.body.toString()).toBe(`<h1>page ${path}</h1>`);
    expect(origin.hits(path)).toBe(1);
  });

  it('answers conditional requests with 304 from the cache', async () => {
    const path = `/page/cond-${_name.length}`;
    await request(port, path);
    const inm = await request(port, path, { headers: { 'if-none-match': 'W/"v1"' } });
    expect(inm.status).toBe(304);
    expect(inm.body.length).toBe(0);
    expect(inm.headers.etag).toBe('"v1"');
    expect(inm.headers['x-cache']).toBe('HIT');
    const ims = await request(port, path, { headers: { 'if-modified-since': 'Sun, 02 Nov 2026 00:00:00 GMT' } });
    expect(ims.status).toBe(304);
    const changed = await request(port, path, { headers: { 'if-none-match': '"v0"' } });
    expect(changed.status).toBe(200);
    expect(origin.hits(path)).toBe(1);
  });

  it('never serves a private response to another client', async () => {
    const path = `/private/${_name.length}`;
    const a = await request(port, path, { headers: { 'x-user': 'alice' } });
    const b = await request(port, path, { headers: { 'x-user': 'bob' } });
    expect(a.body.toString()).toBe('private page for alice');
    expect(b.body.toString()).toBe('private page for bob');
    expect(b.headers['x-cache']).toBe('MISS');
    expect(origin.hits(path)).toBe(2);
  });

  it('never stores a response with Set-Cookie', async () => {
    const path = `/cookie/${_name.length}`;
    const a = await request(port, path);
    const b = await request(port, path);
    expect(a.headers['set-cookie']).toEqual(['sid=secret']);
    expect(b.body.equals(a.body)).toBe(false);
    expect(origin.hits(path)).toBe(2);
  });

  it('passes requests with a session cookie or Authorization, with them, and stores nothing', async () => {
    const path = `/whoami/${_name.length}`;
    const a = await request(port, path, { headers: { cookie: 'sid=alice' } });
    expect(a.headers['x-cache']).toBe('BYPASS');
    expect(a.body.toString()).toBe('cookie=sid=alice auth=');
    const b = await request(port, path, { headers: { authorization: 'Bearer bob' } });
    expect(b.headers['x-cache']).toBe('BYPASS');
    expect(b.body.toString()).toBe('cookie= auth=Bearer bob');
    const c = await request(port, path);
    expect(c.headers['x-cache']).toBe('MISS');
    expect(c.body.toString()).toBe('cookie= auth=');
  });

  it('caches requests whose only cookies are analytics ones, without sending them to the origin', async () => {
    const path = `/whoami/analytics-${_name.length}`;
    const a = await request(port, path, { headers: { cookie: '_ga=GA1.2.3; _gid=x' } });
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.body.toString()).toBe('cookie= auth=');
    const b = await request(port, path, { headers: { cookie: '_ga=GA1.9.9' } });
    expect(b.headers['x-cache']).toBe('HIT');
    expect(origin.hits(path)).toBe(1);
  });

  it('stores a Vary: Cookie page as the cookie-less variant and never serves it to a session', async () => {
    const path = `/django/${_name.length}`;
    const a = await request(port, path);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.headers.vary).toBe('Cookie, Accept-Encoding');
    const b = await request(port, path, { headers: { cookie: '_ga=GA1.2.3' } });
    expect(b.headers['x-cache']).toBe('HIT');
    expect(b.body.toString()).toBe('hello anonymous');
    expect(origin.hits(path)).toBe(1);
    const c = await request(port, path, { headers: { cookie: 'sessionid=alice' } });
    expect(c.headers['x-cache']).toBe('BYPASS');
    expect(c.body.toString()).toBe('hello sessionid=alice');
    expect((await request(port, path)).body.toString()).toBe('hello anonymous');
    expect(origin.hits(path)).toBe(2);
  });

  it('does not store Vary on other request headers: every language reaches the origin and gets its own page', async () => {
    const path = `/by-language/${_name.length}`;
    const fr = await request(port, path, { headers: { 'accept-language': 'fr' } });
    expect(fr.headers['x-cache']).toBe('MISS');
    const de = await request(port, path, { headers: { 'accept-language': 'de' } });
    expect(de.body.toString()).toBe('page in de');
    expect(de.headers['x-cache']).toBe('MISS');
    expect(origin.hits(path)).toBe(2);
  });

  it('passes POST bodies byte for byte and invalidates the target and its Location', async () => {
    await request(port, '/page');
    expect((await request(port, '/page')).headers['x-cache']).toBe('HIT');
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
    const r = await request(port, '/echo', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(201);
    expect(r.headers['x-cache']).toBe('BYPASS');
    expect(r.body.equals(body)).toBe(true);
    await new Promise((res) => setTimeout(res, 50));
    expect((await request(port, '/page')).headers['x-cache']).toBe('MISS');
  });

  it('sets X-Forwarded-* itself, never trusting the client, passes Host, and strips hop-by-hop headers', async () => {
    const r = await request(port, '/headers', {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', connection: 'x-secret', 'x-secret': '1', 'keep-alive': 'timeout=5' },
    });
    const seen = JSON.parse(r.body.toString()) as Record<string, string>;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe('example.com');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen.host).toBe('example.com');
    expect(seen['x-secret']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
  });

  it('purges by URL and by Surrogate-Key tag', async () => {
    const p1 = `/page/purge-a-${_name.length}`;
    const p2 = `/page/purge-b-${_name.length}`;
    await request(port, p1);
    await request(port, p2);
    await new Promise((res) => setTimeout(res, 50));
    expect((await request(port, p1)).headers['x-cache']).toBe('HIT');
    expect(await edge.purge([`http://example.com${p1}`], [])).toHaveLength(1);
    expect((await request(port, p1)).headers['x-cache']).toBe('MISS');
    await new Promise((res) => setTimeout(res, 50));
    expect((await edge.purge([], ['page'])).length).toBeGreaterThanOrEqual(2);
    expect((await request(port, p2)).headers['x-cache']).toBe('MISS');
  });
});

describe('refused input', () => {
  let edge: EdgeServer;
  let port: number;
  beforeAll(async () => {
    ({ edge, port } = await edgeWith({ hosts: ['example.com', 'www.example.com'] }));
  });
  afterAll(async () => {
    await edge.close();
  });

  it('answers 421 for a Host it does not serve, and never forwards it', async () => {
    const before = origin.total();
    const r = await request(port, '/page', { host: 'attacker.example' });
    expect(r.status).toBe(421);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(origin.total()).toBe(before);
  });

  it('answers 400 for an invalid Host', async () => {
    const raw = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a..b\r\n\r\n');
    expect(raw.startsWith('HTTP/1.1 400')).toBe(true);
  });

  it('refuses an absolute-form target for another host (no open proxy)', async () => {
    const before = origin.total();
    const raw = await rawRequest(port, 'GET http://internal.example/admin HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(raw.startsWith('HTTP/1.1 400')).toBe(true);
    expect(origin.total()).toBe(before);
  });

  it('accepts an absolute-form target for its own host', async () => {
    const raw = await rawRequest(port, 'GET http://example.com/page/abs HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    expect(raw.startsWith('HTTP/1.1 200')).toBe(true);
    expect(raw).toContain('<h1>page /page/abs</h1>');
  });

  it('answers 431 for oversize request headers', async () => {
    const raw = await rawRequest(port, `GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
    expect(raw.startsWith('HTTP/1.1 431')).toBe(true);
  });

  it('answers 400 for a malformed request line', async () => {
    const raw = await rawRequest(port, 'GARBAGE\r\n\r\n');
    expect(raw.startsWith('HTTP/1.1 400')).toBe(true);
  });
});
