// Clients that send no Accept-Encoding (curl, health checks, API clients, bots, autocannon, wrk) asking for
// a page stored gzip: they get the page's exact bytes, decoded, with a Content-Length (a decoded copy kept
// beside the entry) instead of a body streamed through zlib on every hit; gzip clients keep the stored bytes.
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import { listen, uniquePrefix } from '../helpers/express-app';
import type { RunningApp } from '../helpers/express-app';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

/** Random text: stays over 256 KiB gzip, so identity clients get it streamed through zlib, not copied. */
const LARGE = randomBytes(450 * 1024).toString('base64');
const PAGE = `<!doctype html><title>t</title>${Array.from({ length: 400 }, (_, i) => `<p>paragraph ${i}</p>`).join('\n')}`;

describe('edge', () => {
  let origin: TestOrigin;
  let edge: EdgeServer;
  let port: number;
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=60', etag: '"v1"' });
      res.end(req.url === '/large' ? LARGE : PAGE);
    });
    edge = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: uniquePrefix('identity') }, { registry: new Registry() });
    port = await edge.listen();
  });
  afterAll(async () => {
    await edge.close();
    await origin.close();
  });

  it('serves identity clients the decoded page with a Content-Length, and gzip clients the stored bytes', async () => {
    // The miss streams the origin's bytes; the page is stored compressed for the requests after it.
    expect((await request(port, '/page', { headers: { 'accept-encoding': 'gzip' } })).headers['x-cache']).toBe('MISS');
    const gz = await request(port, '/page', { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toBe(PAGE);
    for (let i = 0; i < 3; i++) {
      const plain = await request(port, '/page');
      expect(plain.headers['x-cache']).toBe('HIT');
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.headers['content-length']).toBe(String(Buffer.byteLength(PAGE)));
      // The stored tag named the gzip bytes: a decoded body never carries it.
      expect(plain.headers.etag).toBeUndefined();
      expect(plain.headers.vary).toMatch(/accept-encoding/i);
      expect(plain.body.toString()).toBe(PAGE);
    }
    const head = await request(port, '/page', { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(PAGE)));
    expect(head.body.length).toBe(0);
    expect(origin.hits('/page')).toBe(1);
  });

  it('streams a large page through zlib for identity clients (no copy, no Content-Length), byte-exact', async () => {
    // The miss streams the origin's bytes; the page is stored compressed for the requests after it.
    expect((await request(port, '/large', { headers: { 'accept-encoding': 'gzip' } })).headers['x-cache']).toBe('MISS');
    const gz = await request(port, '/large', { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.body.length).toBeGreaterThan(256 * 1024);
    const plain = await request(port, '/large');
    expect(plain.headers['x-cache']).toBe('HIT');
    expect(plain.headers['content-length']).toBeUndefined();
    expect(plain.headers['transfer-encoding']).toBe('chunked');
    expect(plain.body.toString()).toBe(LARGE);
  });

  it('answers an identity client\'s conditional request with 304 (RFC 9110 §13.1.3)', async () => {
    await request(port, '/cond', { headers: { 'accept-encoding': 'gzip' } });
    const gz = await request(port, '/cond', { headers: { 'accept-encoding': 'gzip' } });
    const r = await request(port, '/cond', { headers: { 'if-none-match': String(gz.headers.etag) } });
    expect(r.status).toBe(304);
  });
});

describe('middleware', () => {
  let app: RunningApp;
  let mw: ReturnType<typeof pageCache>;
  let renders = 0;
  beforeAll(async () => {
    mw = pageCache({ ttl: 60, keyPrefix: uniquePrefix('identity-mw'), registry: new Registry() });
    const a = express();
    a.use(mw);
    a.get('/page', (_req, res) => {
      renders++;
      // An app behind compression() (or one writing gzip itself): the page is stored gzip.
      res.set({ 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'gzip', vary: 'Accept-Encoding' });
      res.end(gzipSync(PAGE));
    });
    app = await listen(a);
  });
  afterAll(async () => {
    await app.close();
    await mw.close();
  });

  it('serves identity clients the decoded page with a Content-Length', async () => {
    await request(app.port, '/page', { headers: { 'accept-encoding': 'gzip' } });
    await sleep(50);
    for (let i = 0; i < 3; i++) {
      const plain = await request(app.port, '/page');
      expect(plain.headers['x-cache']).toBe('HIT');
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.headers['content-length']).toBe(String(Buffer.byteLength(PAGE)));
      expect(plain.body.toString()).toBe(PAGE);
    }
    expect(renders).toBe(1);
  });
});
