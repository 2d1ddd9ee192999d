// Behind a TLS-terminating load balancer: the edge believes X-Forwarded-For and X-Forwarded-Proto only from
// the proxies --trust-proxy names, forwards them to the origin, and keeps the page rendered for https apart
// from the one rendered for http, so a site that redirects http to https never serves its redirect to an
// https client (nor its https page to an http one).
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeOptions } from '../../src/edge/options';
import type { EdgeServer } from '../../src/edge/server';
import { listen, uniquePrefix } from '../helpers/express-app';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

let origin: TestOrigin;
beforeAll(async () => {
  // A site behind TLS termination: http requests are redirected to https, https ones get the page.
  origin = await startOrigin((req, res) => {
    const proto = String(req.headers['x-forwarded-proto'] ?? '');
    if (proto !== 'https') {
      res.writeHead(301, { location: `https://${String(req.headers.host)}${req.url}`, 'cache-control': 'max-age=60' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
    res.end(`<link rel="canonical" href="https://${String(req.headers.host)}${req.url}"> for ${String(req.headers['x-forwarded-for'])}`);
  });
});
afterAll(() => origin.close());

const edges: EdgeServer[] = [];
afterEach(async () => {
  await Promise.all(edges.splice(0).map((e) => e.close()));
});
async function edgeWith(extra: EdgeOptions): Promise<number> {
  const edge = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: uniquePrefix('trust'), ...extra }, { registry: new Registry() });
  edges.push(edge);
  return edge.listen();
}

describe('edge with --trust-proxy naming the balancer (loopback here)', () => {
  it('https and http renderings are stored apart: each client gets its own, from the cache', async () => {
    const port = await edgeWith({ trustProxy: 'loopback' });
    const https = { 'x-forwarded-proto': 'https' };
    const a = await request(port, '/page', { headers: https });
    expect(a.status).toBe(200);
    const b = await request(port, '/page');
    expect(b.status).toBe(301);
    // Both are cached now, each under its own key.
    const a2 = await request(port, '/page', { headers: https });
    expect(a2.status).toBe(200);
    expect(a2.headers['x-cache']).toBe('HIT');
    const b2 = await request(port, '/page');
    expect(b2.status).toBe(301);
    expect(b2.headers['x-cache']).toBe('HIT');
    expect(origin.hits('/page')).toBe(2);
  });

  it('X-Forwarded-Proto and the client chain of X-Forwarded-For reach the origin', async () => {
    const port = await edgeWith({ trustProxy: '127.0.0.1' });
    await request(port, '/xff', { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' } });
    const seen = origin.lastHeaders('/xff')!;
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
  });

  it('a purge of the URL removes both renderings', async () => {
    const edge = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: uniquePrefix('trust-purge'), trustProxy: 'loopback' }, { registry: new Registry() });
    edges.push(edge);
    const port = await edge.listen();
    const https = { 'x-forwarded-proto': 'https' };
    await request(port, '/purged', { headers: https });
    await request(port, '/purged');
    await edge.purge(['http://example.com/purged'], []);
    expect((await request(port, '/purged', { headers: https })).headers['x-cache']).toBe('MISS');
    expect((await request(port, '/purged')).headers['x-cache']).toBe('MISS');
  });
});

describe('edge without --trust-proxy, or with a list that does not name the peer', () => {
  it.each<[string, EdgeOptions]>([
    ['no --trust-proxy', {}],
    ['--trust-proxy 10.0.0.0/8 (the peer is 127.0.0.1)', { trustProxy: '10.0.0.0/8' }],
  ])('%s: a client\'s X-Forwarded-Proto and X-Forwarded-For are not believed', async (_what, extra) => {
    const port = await edgeWith(extra);
    const r = await request(port, '/untrusted', { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.9' } });
    expect(r.status).toBe(301);
    const seen = origin.lastHeaders('/untrusted')!;
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
  });
});

it('the middleware with Express trust proxy keeps https pages apart instead of bypassing them', async () => {
  const mw = pageCache({ ttl: 60, keyPrefix: uniquePrefix('trust-mw'), registry: new Registry() });
  const app = express();
  app.set('trust proxy', 'loopback');
  app.use(mw);
  let renders = 0;
  app.get('/p', (req, res) => {
    renders++;
    if (req.protocol !== 'https') res.redirect(301, `https://${req.hostname}${req.originalUrl}`);
    else res.send(`https page ${renders}`);
  });
  const running = await listen(app);
  try {
    const https = { 'x-forwarded-proto': 'https' };
    let r = await request(running.port, '/p', { headers: https });
    for (let i = 0; i < 20 && r.headers['x-cache'] !== 'HIT'; i++) r = await request(running.port, '/p', { headers: https });
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('https page 1');
    const plain = await request(running.port, '/p');
    expect(plain.status).toBe(301);
  } finally {
    await running.close();
    await mw.close();
  }
});
