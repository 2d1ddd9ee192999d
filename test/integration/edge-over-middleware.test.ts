// The layout the README describes for a Node site: the edge in front of an Express app whose pageCache()
// shares the edge's memcached and key prefix. The edge takes the page's fill lock and asks the app; the
// app's middleware must not wait on that same lock (it would wait for itself until the lock expired): it
// renders at once, stores the page, and the edge serves it from then on.
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { createEdgeServer } from '../../src/edge/server';
import { listen, uniquePrefix } from '../helpers/express-app';
import { memcachedForSuite } from '../helpers/memcached';
import { request } from '../helpers/origin';

const mc = memcachedForSuite();

it('a miss through the edge is rendered once, at once, and is a hit afterwards', async () => {
  const prefix = uniquePrefix('edge-over-mw');
  const mw = pageCache({ ttl: 60, memcached: mc.address, keyPrefix: prefix, registry: new Registry() });
  const app = express();
  app.use(mw);
  let renders = 0;
  app.get('/article', (_req, res) => {
    renders++;
    res.send('<p>article</p>');
  });
  const running = await listen(app);
  const edge = createEdgeServer({ origin: `http://127.0.0.1:${running.port}`, port: 0, host: '127.0.0.1', memcached: mc.address, keyPrefix: prefix }, { registry: new Registry() });
  const port = await edge.listen();
  try {
    const t0 = performance.now();
    const first = await request(port, '/article');
    // Waiting on the edge's own lock would take its whole lifetime (--lock-timeout, 5 s).
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(first.status).toBe(200);
    expect(first.body.toString()).toBe('<p>article</p>');
    let again = await request(port, '/article');
    for (let i = 0; i < 20 && again.headers['x-cache'] !== 'HIT'; i++) again = await request(port, '/article');
    expect(again.headers['x-cache']).toBe('HIT');
    expect(renders).toBe(1);
  } finally {
    await edge.close();
    await running.close();
    await mw.close();
  }
});
