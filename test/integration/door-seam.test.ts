// Bugs found where the middleware and the edge meet, each reproduced from outside: an edge in front of a
// middleware on another store, a route that declares more bytes than it writes, and stored entries that
// decode but cannot be delivered (a header Node refuses, a gzip body that does not inflate).
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { encodeEntry } from '../../src/core/entry';
import type { CacheEntry } from '../../src/core/entry';
import { cacheKey } from '../../src/core/key';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import { closeAfterEach, listen, uniquePrefix, waitUntil } from '../helpers/express-app';
import { memcachedForSuite } from '../helpers/memcached';
import { rawRequest, request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

const mc = memcachedForSuite();
const track = closeAfterEach();

describe('an edge on memcached in front of an app whose middleware uses the embedded store', () => {
  it('stores the first response itself (the middleware no longer says "stored" for a store the edge cannot read)', async () => {
    let renders = 0;
    let reached = 0;
    const mw = pageCache({ ttl: 60 });
    const app = express();
    app.use((_req, _res, next) => {
      reached++;
      next();
    });
    app.use(mw);
    app.get('/', (_req, res) => {
      renders++;
      res.send('<h1>home</h1>');
    });
    const running = await listen(app);
    track(running, mw);
    const edge = createEdgeServer(
      { origin: `http://127.0.0.1:${running.port}`, memcached: mc.address, port: 0, host: '127.0.0.1', keyPrefix: uniquePrefix('seam') },
      { registry: new Registry() },
    );
    const port = await edge.listen();
    try {
      const first = await request(port, '/');
      expect(first.headers['x-cache']).toBe('MISS');
      // The edge's write goes out after its response; give it a moment, then the very next request is a HIT.
      await new Promise((r) => setTimeout(r, 200));
      expect((await request(port, '/')).headers['x-cache']).toBe('HIT');
      expect(reached).toBe(1);
      expect(renders).toBe(1);
    } finally {
      await edge.close();
    }
  });
});

describe('a route that declares more bytes than it writes', () => {
  it('is never stored: the next request renders again instead of a HIT with the cut page', async () => {
    let renders = 0;
    const registry = new Registry();
    const mw = pageCache({ ttl: 60, memcached: mc.address, keyPrefix: uniquePrefix('short'), registry });
    const app = express();
    app.use(mw);
    app.get('/short', (_req, res) => {
      renders++;
      res.setHeader('content-type', 'text/html');
      res.setHeader('content-length', '100');
      res.end('ten bytes!');
    });
    const running = await listen(app);
    track(running, mw);
    const raw = `GET /short HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`;
    expect(await rawRequest(running.port, raw)).toMatch(/x-cache: MISS/i);
    await new Promise((r) => setTimeout(r, 100));
    const second = await rawRequest(running.port, raw);
    expect(second).not.toMatch(/x-cache: HIT/i);
    expect(second).toMatch(/x-cache: MISS/i);
    expect(renders).toBe(2);
    expect(await registry.getSingleMetricAsString('edge_cache_not_stored_total')).toContain('reason="truncated"} 2');
  });
});

describe('an edge reading an entry it cannot deliver', () => {
  let origin: TestOrigin;
  let edge: EdgeServer;
  let port: number;
  let registry: Registry;
  let prefix: string;
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
      res.end(`<p>fresh ${req.url}</p>`);
    });
  });
  beforeEach(async () => {
    registry = new Registry();
    prefix = uniquePrefix('broken');
    edge = createEdgeServer({ origin: origin.url, memcached: mc.address, port: 0, host: '127.0.0.1', keyPrefix: prefix, memoryBytes: 0 }, { registry });
    port = await edge.listen();
  });
  afterEach(async () => {
    await edge.close();
  });
  afterAll(async () => {
    await origin.close();
  });

  async function plant(path: string, headers: readonly string[], body: Buffer): Promise<string> {
    const entry: CacheEntry = { status: 200, headers, body, storedAt: Date.now(), ttlSeconds: 60, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, tags: [], format: 'envelope' };
    const { value, flags } = encodeEntry(entry, 'envelope');
    const key = cacheKey(prefix, 'example.com', path);
    expect(await mc.direct.set(key, value, flags, 60)).toBe(true);
    return key;
  }

  async function decodeErrors(): Promise<string> {
    return registry.getSingleMetricAsString('edge_cache_entry_decode_errors_total');
  }

  it('answers a stored header Node refuses as a MISS from the origin, deletes the entry and counts it (was a 500 labelled HIT, forever)', async () => {
    const key = await plant('/bad-header', ['content-type', 'text/html', 'x-bad', 'line\nbreak'], Buffer.from('<p>stored</p>'));
    const r = await request(port, '/bad-header');
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('MISS');
    expect(r.body.toString()).toBe('<p>fresh /bad-header</p>');
    expect(await decodeErrors()).toContain('edge_cache_entry_decode_errors_total 1');
    await waitUntil('the good page to replace the bad entry', async () => {
      const v = await mc.direct.get(key);
      return v !== undefined && !v.value.includes('line\nbreak');
    });
    expect((await request(port, '/bad-header')).headers['x-cache']).toBe('HIT');
  });

  it('ends the response to an identity client when a stored gzip body does not inflate, deletes the entry and counts it', async () => {
    const key = await plant('/bad-gzip', ['content-type', 'text/html', 'content-encoding', 'gzip', 'vary', 'Accept-Encoding'], Buffer.from('1f8b08000000000000ffdeadbeefdeadbeef', 'hex'));
    await expect(request(port, '/bad-gzip', { headers: { 'accept-encoding': 'identity' } })).rejects.toThrow();
    await waitUntil('the decode error to be counted', async () => (await decodeErrors()).includes('edge_cache_entry_decode_errors_total 1'));
    await waitUntil('the entry to be deleted', async () => (await mc.direct.get(key)) === undefined);
    const next = await request(port, '/bad-gzip', { headers: { 'accept-encoding': 'identity' } });
    expect(next.status).toBe(200);
    expect(next.headers['x-cache']).toBe('MISS');
    expect(origin.hits('/bad-gzip')).toBe(1);
  });
});
