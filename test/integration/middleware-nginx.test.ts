// format: 'raw' and stock nginx: the classic set_md5 + memcached_pass + error_page -> @fallback pattern in
// front of the Express app. A page is rendered once; nginx then serves it from memcached without the app
// seeing the request, on one node and on three with `hash $memcached_key consistent`.
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import express from 'express';
import { pageCache } from '../../middleware';
import type { PageCacheMiddleware } from '../../middleware';
import { cacheKey } from '../../src/core/key';
import { createHashRing, parseServerList } from '../../src/core/ring';
import { createMemcachedStore } from '../../src/core/stores/memcached';
import { Counter, listen, waitStored } from '../helpers/express-app';
import type { RunningApp } from '../helpers/express-app';
import { startMemcacheds } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { startNginx } from '../helpers/nginx';
import type { NginxProcess } from '../helpers/nginx';
import { request } from '../helpers/origin';
import { freePort } from '../helpers/ports';

let nodes: MemcachedProcess[] = [];
let app: RunningApp | undefined;
let mw: PageCacheMiddleware | undefined;
let nginx: NginxProcess | undefined;

afterEach(async () => {
  await nginx?.stop();
  await app?.close();
  await mw?.close();
  await Promise.all(nodes.map((n) => n.stop()));
  nginx = undefined;
  app = undefined;
  mw = undefined;
  nodes = [];
});

const runs = new Counter();

/** The Express site behind nginx: raw entries, so nginx can serve them as they are. */
async function startSite(servers: string, gzip: boolean): Promise<number> {
  mw = pageCache({ memcached: servers, format: 'raw', ttl: 60 });
  const site = express();
  site.use(mw);
  if (gzip) site.use(compression({ threshold: 0 }));
  site.get('/posts/:id', (req, res) => {
    runs.inc(req.originalUrl);
    res.type('html').send(`<h1>post ${req.params.id}</h1><p>${'words '.repeat(100)}</p>`);
  });
  app = await listen(site);
  return app.port;
}

/** The README's nginx config: md5 of $host$request_uri, memcached first, the app on a miss. */
function nginxConf(port: number, appPort: number, servers: readonly string[]): string {
  const upstream =
    servers.length === 1
      ? `upstream memcached { server ${servers[0]}; keepalive 8; }`
      : `upstream memcached {\n    hash $memcached_key consistent;\n    ${servers.map((s) => `server ${s};`).join('\n    ')}\n    keepalive 8;\n  }`;
  return `
  ${upstream}
  upstream app { server 127.0.0.1:${appPort}; }
  server {
    listen 127.0.0.1:${port};
    location / {
      set_md5 $memcached_key "$host$request_uri";
      memcached_pass memcached;
      memcached_gzip_flag 2;
      default_type text/html;
      error_page 404 502 504 = @fallback;
    }
    location @fallback {
      proxy_pass http://app;
      proxy_set_header Host $host;
    }
  }`;
}

async function setUp(nodeCount: number, gzip = false): Promise<{ port: number; servers: string[] }> {
  nodes = await startMemcacheds(nodeCount);
  const servers = nodes.map((n) => n.address);
  const appPort = await startSite(servers.join(','), gzip);
  const port = await freePort();
  nginx = await startNginx(port, nginxConf(port, appPort, servers));
  return { port, servers };
}

it('one node: the app renders a page once, then nginx serves it from memcached', async () => {
  const { port, servers } = await setUp(1);
  const direct = createMemcachedStore({ servers: parseServerList('memcached', servers), timeoutMs: 1000 });
  try {
    const first = await request(port, '/posts/1?ref=home', { host: 'blog.example' });
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    await waitStored(direct, '', 'blog.example', '/posts/1?ref=home');
    // The raw entry is the body alone, exactly the bytes the client got.
    const stored = await direct.get(cacheKey('', 'blog.example', '/posts/1?ref=home'));
    expect(stored!.value.equals(first.body)).toBe(true);
    expect(stored!.flags).toBe(0);
    for (let i = 0; i < 3; i++) {
      const again = await request(port, '/posts/1?ref=home', { host: 'Blog.Example' });
      expect(again.status).toBe(200);
      expect(again.headers['x-cache']).toBeUndefined(); // nginx answered, not the app
      expect(again.headers['content-type']).toMatch(/^text\/html/);
      expect(again.body.equals(first.body)).toBe(true);
    }
    // The middleware reads its own raw entries too: body from memcached, Content-Type from rawContentType.
    const own = await request(app!.port, '/posts/1?ref=home', { host: 'blog.example' });
    expect(own.headers['x-cache']).toBe('HIT');
    expect(own.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(own.body.equals(first.body)).toBe(true);
    expect(runs.get('/posts/1?ref=home')).toBe(1);
    expect(nginx!.errorLog()).not.toMatch(/\[(error|crit|emerg)\]/);
  } finally {
    await direct.close();
  }
});

it('three nodes with hash $memcached_key consistent: nginx finds every page where the middleware put it', async () => {
  const { port, servers } = await setUp(3);
  const ring = createHashRing(parseServerList('memcached', servers));
  const direct = createMemcachedStore({ servers: parseServerList('memcached', servers), timeoutMs: 1000 });
  const paths = Array.from({ length: 24 }, (_, i) => `/posts/${i}`);
  const perNode = [0, 0, 0];
  try {
    const bodies = new Map<string, Buffer>();
    for (const path of paths) {
      const r = await request(port, path, { host: 'shop.example' });
      expect(r.headers['x-cache']).toBe('MISS');
      bodies.set(path, r.body);
      perNode[ring.nodeFor(cacheKey('', 'shop.example', path))]!++;
    }
    for (const path of paths) await waitStored(direct, '', 'shop.example', path);
    for (const n of perNode) expect(n).toBeGreaterThan(0);
    for (const path of paths) {
      const r = await request(port, path, { host: 'shop.example' });
      expect(r.status).toBe(200);
      expect(r.headers['x-cache']).toBeUndefined();
      expect(r.body.equals(bodies.get(path)!)).toBe(true);
    }
    for (const path of paths) expect(runs.get(path)).toBe(1);
  } finally {
    await direct.close();
  }
});

it('gzip bodies carry the flag nginx names in memcached_gzip_flag', async () => {
  const { port, servers } = await setUp(1, true);
  const direct = createMemcachedStore({ servers: parseServerList('memcached', servers), timeoutMs: 1000 });
  try {
    const first = await request(port, '/posts/gz', { host: 'gz.example', headers: { 'accept-encoding': 'gzip' } });
    expect(first.headers['content-encoding']).toBe('gzip');
    await waitStored(direct, '', 'gz.example', '/posts/gz');
    expect((await direct.get(cacheKey('', 'gz.example', '/posts/gz')))!.flags).toBe(2);
    const again = await request(port, '/posts/gz', { host: 'gz.example', headers: { 'accept-encoding': 'gzip' } });
    expect(again.headers['x-cache']).toBeUndefined();
    expect(again.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(again.body).equals(gunzipSync(first.body))).toBe(true);
    expect(runs.get('/posts/gz')).toBe(1);
  } finally {
    await direct.close();
  }
});
