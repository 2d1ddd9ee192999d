// Conditional requests from clients (RFC 9110 §13, RFC 9111 §4.3.2) answered 304 whatever coding the client
// gets, and the request's Cache-Control (RFC 9111 §5.2.1): ignored by default (as Varnish), obeyed with
// --honor-request-cache-control; only-if-cached misses get 504 either way. Through the edge and the middleware.
import express from 'express';
import type http from 'node:http';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { request } from '../helpers/origin';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { startScriptedEdge, startScriptedOrigin } from '../helpers/scripted-origin';
import type { ScriptedOrigin } from '../helpers/scripted-origin';

let mc: MemcachedProcess;
let o: ScriptedOrigin;
let e: Awaited<ReturnType<typeof startScriptedEdge>>;
let honoring: Awaited<ReturnType<typeof startScriptedEdge>>;

const LM = 'Sat, 01 Nov 2025 00:00:00 GMT';
const BIG = `<p>${'compressible text '.repeat(200)}</p>`;

beforeAll(async () => {
  mc = await startMemcached();
  o = await startScriptedOrigin();
  e = await startScriptedEdge(o, { memcached: mc.address });
  honoring = await startScriptedEdge(o, { memcached: mc.address, honorRequestCacheControl: true });
  for (const path of ['/gz', '/rcc', '/rcc-honor', '/oic']) {
    o.script(path, (req) =>
      req.headers['if-none-match'] === '"g1"'
        ? { status: 304, headers: { etag: '"g1"', 'cache-control': 'max-age=600' } }
        : { headers: { 'content-type': 'text/html', 'cache-control': 'max-age=600', etag: '"g1"', 'last-modified': LM }, body: BIG },
    );
  }
});

afterAll(async () => {
  await e.edge.close();
  await honoring.edge.close();
  await o.close();
  await mc.stop();
});

describe('conditional requests on a page stored gzip (RFC 9110 §13.1)', () => {
  it('answers If-Modified-Since with 304 for a client without Accept-Encoding', async () => {
    // The miss streams the origin's bytes; the page is stored compressed for the requests after it.
    expect((await e.get('/gz', { 'accept-encoding': 'gzip' })).headers['x-cache']).toBe('MISS');
    const first = await e.get('/gz', { 'accept-encoding': 'gzip' });
    expect(first.headers['content-encoding']).toBe('gzip');
    const r = await e.get('/gz', { 'if-modified-since': LM });
    // RFC 9110 §13.1.3: not modified since the date: 304, whatever coding this client would get.
    expect(r.status).toBe(304);
    expect(r.body.length).toBe(0);
  });

  it('answers If-None-Match with the stored weak ETag with 304 for a client without Accept-Encoding', async () => {
    const r = await e.get('/gz', { 'if-none-match': 'W/"g1"' });
    // RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
    expect(r.status).toBe(304);
  });

  it('still sends the decoded page in full to that client when it is modified (control)', async () => {
    const r = await e.get('/gz', { 'if-modified-since': 'Sat, 01 Nov 2020 00:00:00 GMT' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(BIG);
  });
});

describe('request Cache-Control (RFC 9111 §5.2.1)', () => {
  it('is ignored by default: no-cache and max-age=0 get the stored page (a deliberate deviation, as Varnish)', async () => {
    await e.get('/rcc');
    const a = await e.get('/rcc', { 'cache-control': 'no-cache' });
    const b = await e.get('/rcc', { 'cache-control': 'max-age=0' });
    expect(a.headers['x-cache']).toBe('HIT');
    expect(b.headers['x-cache']).toBe('HIT');
    expect(o.seen('/rcc')).toHaveLength(1);
  });

  it('with --honor-request-cache-control, no-cache revalidates with the origin (RFC 9111 §5.2.1.4)', async () => {
    await honoring.get('/rcc-honor');
    const r = await honoring.get('/rcc-honor', { 'cache-control': 'no-cache' });
    // RFC 9111 §5.2.1.4: the cache MUST NOT use a stored response without successful validation.
    expect(r.headers['x-cache']).toBe('REVALIDATED');
    expect(o.seen('/rcc-honor')[1]!['if-none-match']).toBe('"g1"');
  });

  it('with --honor-request-cache-control, max-age=0 revalidates; a larger max-age is a HIT (RFC 9111 §5.2.1.1)', async () => {
    const before = o.seen('/rcc-honor').length;
    const r = await honoring.get('/rcc-honor', { 'cache-control': 'max-age=0' });
    await new Promise((res) => setTimeout(res, 1100));
    const hit = await honoring.get('/rcc-honor', { 'cache-control': 'max-age=600' });
    // RFC 9111 §5.2.1.1: the client accepts no response older than max-age.
    expect(r.headers['x-cache']).toBe('REVALIDATED');
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(o.seen('/rcc-honor').length).toBe(before + 1);
  });

  it.each([
    ['by default', () => e],
    ['with --honor-request-cache-control', () => honoring],
  ])('only-if-cached: a miss gets 504 and the origin is not asked, a stored page is served (%s; RFC 9111 §5.2.1.7)', async (_n, edge) => {
    const path = `/oic-${_n.length}`;
    o.script(path, { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }, body: 'here' });
    const miss = await edge().get(path, { 'cache-control': 'only-if-cached' });
    // RFC 9111 §5.2.1.7: respond with a stored response or a 504.
    expect(miss.status).toBe(504);
    expect(o.seen(path)).toHaveLength(0);
    await edge().get(path);
    const hit = await edge().get(path, { 'cache-control': 'only-if-cached' });
    expect(hit.status).toBe(200);
    expect(hit.headers['x-cache']).toBe('HIT');
  });
});

describe('the middleware', () => {
  it('answers If-Modified-Since with 304 from a page stored gzip, for a client without Accept-Encoding', async () => {
    const app = express();
    app.use(pageCache({ registry: new Registry(), keyPrefix: `rfc-cond-mw-${Date.now()}:` }));
    app.get('/page', (_req, res) => {
      res.setHeader('cache-control', 'max-age=600');
      res.setHeader('last-modified', LM);
      res.setHeader('content-encoding', 'gzip');
      res.setHeader('content-type', 'text/html');
      res.end(gzipSync(BIG));
    });
    const server: http.Server = await new Promise((r) => {
      const s = app.listen(0, '127.0.0.1', () => r(s));
    });
    try {
      const port = (server.address() as AddressInfo).port;
      await request(port, '/page', { headers: { 'accept-encoding': 'gzip' } });
      const r = await request(port, '/page', { headers: { 'if-modified-since': LM } });
      // RFC 9110 §13.1.3: 304 whatever coding the client would get.
      expect(r.status).toBe(304);
      expect(r.headers['x-cache']).toBe('HIT');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
