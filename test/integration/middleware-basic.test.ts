// pageCache() on a real Express app over HTTP with real memcached: key, HIT/MISS/BYPASS, HEAD, 304,
// freshness, and everything that must never be stored.
import { createHash } from 'node:crypto';
import express from 'express';
import type { Express, RequestHandler } from 'express';
import { pageCache } from '../../middleware';
import type { PageCacheMiddleware } from '../../middleware';
import type { MiddlewareOptions } from '../../middleware';
import { decodeEnvelope } from '../../src/core/entry';
import { STORED_BY_ORIGIN } from '../../src/core/headers';
import { Counter, listen, uniquePrefix, waitStored, closeAfterEach } from '../helpers/express-app';
import { memcachedForSuite } from '../helpers/memcached';
import { request } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const mc = memcachedForSuite();
const track = closeAfterEach();


interface Site {
  port: number;
  prefix: string;
  runs: Counter;
  mw: PageCacheMiddleware;
}

/** An Express app with the middleware first, then `routes`; every route counts its runs by path. */
async function site(routes: (app: Express, runs: Counter) => void, options: MiddlewareOptions = {}, before?: (app: Express) => void): Promise<Site> {
  const prefix = uniquePrefix('basic');
  const mw = pageCache({ memcached: mc.address, keyPrefix: prefix, ttl: 60, ...options });
  const app = express();
  before?.(app);
  app.use(mw);
  const runs = new Counter();
  routes(app, runs);
  const running = await listen(app);
  track(running, mw);
  return { port: running.port, prefix, runs, mw };
}

function page(runs: Counter, name: string, headers: Record<string, string> = {}): RequestHandler {
  return (_req, res) => {
    runs.inc(name);
    res.set(headers).send(`<h1>${name}</h1><p>${'x'.repeat(200)}</p>`);
  };
}

/**
 * A middleware, to mount before pageCache, that sets a header in an on-headers hook (as express-session
 * does): it runs after pageCache's own writeHead wrapper, so only the final headers show it.
 */
function atWriteHead(name: string, value: string): RequestHandler {
  return (_req, res, next) => {
    const writeHead = res.writeHead;
    res.writeHead = function hookedWriteHead(this: typeof res, ...args: Parameters<typeof res.writeHead>) {
      this.setHeader(name, value);
      return writeHead.apply(this, args);
    } as typeof res.writeHead;
    next();
  };
}

describe('hit and miss', () => {
  it('stores a GET miss after it finished and serves the next request as a HIT without running the route', async () => {
    const s = await site((app, runs) => app.get('/a', page(runs, 'a', { 'cache-control': 'max-age=60', etag: '"v1"' })));
    const first = await request(s.port, '/a');
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers['cache-status']).toBe('edge-page-cache; fwd=uri-miss');
    expect(first.headers[STORED_BY_ORIGIN]).toBe('1');
    await waitStored(mc.direct, s.prefix, 'example.com', '/a');
    const second = await request(s.port, '/a');
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['cache-status']).toBe('edge-page-cache; hit');
    expect(second.headers['age']).toMatch(/^\d+$/);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(second.headers['etag']).toBe('"v1"');
    expect(second.headers['content-length']).toBe(String(first.body.length));
    expect(second.headers[STORED_BY_ORIGIN]).toBeUndefined();
    expect(second.body.equals(first.body)).toBe(true);
    expect(s.runs.get('a')).toBe(1);
  });

  it('writes the envelope to memcached under md5(keyPrefix + host + request_uri)', async () => {
    const s = await site((app, runs) => app.get('/p', page(runs, 'p')));
    await request(s.port, '/p?b=2&a=1', { host: 'Example.COM:8080' });
    const key = createHash('md5').update(`${s.prefix}example.com/p?b=2&a=1`).digest('hex');
    await waitStored(mc.direct, s.prefix, 'example.com', '/p?b=2&a=1');
    const stored = await mc.direct.get(key);
    const entry = decodeEnvelope(stored!.value);
    expect(entry.status).toBe(200);
    expect(entry.body.toString()).toBe(`<h1>p</h1><p>${'x'.repeat(200)}</p>`);
    expect(entry.ttlSeconds).toBe(60);
    // Same host spelled differently: HIT. Same query re-ordered: a different page.
    expect((await request(s.port, '/p?b=2&a=1', { host: 'example.com' })).headers['x-cache']).toBe('HIT');
    expect((await request(s.port, '/p?a=1&b=2')).headers['x-cache']).toBe('MISS');
    expect(s.runs.get('p')).toBe(2);
  });

  it('keys on originalUrl under a mounted router', async () => {
    const prefix = uniquePrefix('router');
    const mw = pageCache({ memcached: mc.address, keyPrefix: prefix, ttl: 60 });
    const runs = new Counter();
    const router = express.Router();
    router.use(mw);
    router.get('/post', page(runs, 'post'));
    const app = express();
    app.use('/blog', router);
    const running = await listen(app);
    track(running, mw);
    await request(running.port, '/blog/post?x=1');
    await waitStored(mc.direct, prefix, 'example.com', '/blog/post?x=1');
    expect((await request(running.port, '/blog/post?x=1')).headers['x-cache']).toBe('HIT');
    expect(runs.get('post')).toBe(1);
  });

  it('does not cache a request whose Host nginx would refuse', async () => {
    const s = await site((app, runs) => app.get('/h', page(runs, 'h')));
    for (let i = 0; i < 2; i++) {
      const r = await request(s.port, '/h', { host: 'a..b' });
      expect(r.status).toBe(200);
      expect(r.headers['x-cache']).toBe('BYPASS');
    }
    expect(s.runs.get('h')).toBe(2);
  });
});

describe('HEAD and conditional requests', () => {
  it('answers HEAD from the cache with the headers and no body', async () => {
    const s = await site((app, runs) => app.get('/h', page(runs, 'h')));
    const full = await request(s.port, '/h');
    await waitStored(mc.direct, s.prefix, 'example.com', '/h');
    const head = await request(s.port, '/h', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['x-cache']).toBe('HIT');
    expect(head.headers['content-length']).toBe(String(full.body.length));
    expect(head.body.length).toBe(0);
    expect(s.runs.get('h')).toBe(1);
  });

  it('does not store a HEAD miss', async () => {
    const s = await site((app, runs) => app.get('/h', page(runs, 'h')));
    expect((await request(s.port, '/h', { method: 'HEAD' })).headers['x-cache']).toBe('MISS');
    await sleep(100);
    expect((await request(s.port, '/h')).headers['x-cache']).toBe('MISS');
    expect(s.runs.get('h')).toBe(2);
  });

  it('answers 304 when the stored ETag or Last-Modified matches, without running the route', async () => {
    const lastModified = 'Wed, 01 Jan 2025 00:00:00 GMT';
    const s = await site((app, runs) => {
      app.get('/e', page(runs, 'e', { etag: '"abc"' }));
      app.get('/m', (_req, res) => {
        runs.inc('m');
        // res.end, not res.send: Express would answer the conditional itself and hide the cache's 304.
        res.setHeader('last-modified', lastModified);
        res.setHeader('content-type', 'text/plain');
        res.end('dated');
      });
    });
    await request(s.port, '/e');
    await request(s.port, '/m');
    await waitStored(mc.direct, s.prefix, 'example.com', '/e');
    await waitStored(mc.direct, s.prefix, 'example.com', '/m');
    const e = await request(s.port, '/e', { headers: { 'if-none-match': 'W/"abc"' } });
    expect(e.status).toBe(304);
    expect(e.headers['x-cache']).toBe('HIT');
    expect(e.headers['etag']).toBe('"abc"');
    expect(e.body.length).toBe(0);
    expect((await request(s.port, '/e', { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    const m = await request(s.port, '/m', { headers: { 'if-modified-since': lastModified } });
    expect(m.status).toBe(304);
    expect((await request(s.port, '/m', { headers: { 'if-modified-since': 'Tue, 31 Dec 2024 00:00:00 GMT' } })).status).toBe(200);
    expect(s.runs.get('e')).toBe(1);
    expect(s.runs.get('m')).toBe(1);
  });
});

describe('freshness', () => {
  it('takes max-age over the ttl option and re-renders once it has expired', async () => {
    const s = await site((app, runs) => app.get('/f', page(runs, 'f', { 'cache-control': 'max-age=1' })), { ttl: 300 });
    await request(s.port, '/f');
    await waitStored(mc.direct, s.prefix, 'example.com', '/f');
    expect((await request(s.port, '/f')).headers['x-cache']).toBe('HIT');
    await sleep(1100);
    // memcached's own expiry (freshness + stale windows) has usually dropped it already: MISS; else EXPIRED.
    expect(['MISS', 'EXPIRED']).toContain((await request(s.port, '/f')).headers['x-cache']);
    expect(s.runs.get('f')).toBe(2);
  });

  it('stores nothing that states no freshness when ttl is 0 (the default)', async () => {
    const s = await site((app, runs) => {
      app.get('/plain', page(runs, 'plain'));
      app.get('/smax', page(runs, 'smax', { 'cache-control': 's-maxage=30' }));
    }, { ttl: 0 });
    const first = await request(s.port, '/plain');
    expect(first.headers[STORED_BY_ORIGIN]).toBeUndefined();
    await request(s.port, '/smax');
    await waitStored(mc.direct, s.prefix, 'example.com', '/smax');
    expect((await request(s.port, '/plain')).headers['x-cache']).toBe('MISS');
    expect((await request(s.port, '/smax')).headers['x-cache']).toBe('HIT');
    expect(s.runs.get('plain')).toBe(2);
    expect(s.runs.get('smax')).toBe(1);
  });
});

describe('never stored', () => {
  it.each<[string, Record<string, string>]>([
    ['Set-Cookie', { 'set-cookie': 'sid=1; HttpOnly' }],
    ['Cache-Control: private', { 'cache-control': 'private, max-age=60' }],
    ['Cache-Control: no-store', { 'cache-control': 'no-store' }],
    ['Vary: Accept-Language', { vary: 'Accept-Language' }],
    ['Vary: *', { vary: '*' }],
  ])('a response with %s', async (_name, headers) => {
    const s = await site((app, runs) => app.get('/n', page(runs, 'n', headers)));
    const first = await request(s.port, '/n');
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers[STORED_BY_ORIGIN]).toBeUndefined();
    await sleep(100);
    expect((await request(s.port, '/n')).headers['x-cache']).toBe('MISS');
    expect(s.runs.get('n')).toBe(2);
  });

  it.each<[string, Record<string, string>, MiddlewareOptions]>([
    ['Authorization', { authorization: 'Bearer x' }, {}],
    ['a session cookie', { cookie: 'theme=dark; connect.sid=s%3Aabc' }, {}],
    ['any cookie not on the ignore list, by default (an unknown cookie may be a session)', { cookie: 'jwt=alice' }, {}],
    ['a configured session cookie', { cookie: 'shop_session=1' }, { bypassCookies: ['shop_session'] }],
    ['any cookie with bypassCookies: all', { cookie: 'theme=dark' }, { bypassCookies: 'all' }],
  ])('a request with %s is bypassed (and a stored page is not served to it)', async (_name, headers, options) => {
    const s = await site((app, runs) => app.get('/b', page(runs, 'b')), options);
    await request(s.port, '/b');
    await waitStored(mc.direct, s.prefix, 'example.com', '/b');
    for (let i = 0; i < 2; i++) {
      const r = await request(s.port, '/b', { headers });
      expect(r.headers['x-cache']).toBe('BYPASS');
      expect(r.headers['cache-status']).toBe('edge-page-cache; fwd=bypass');
    }
    expect(s.runs.get('b')).toBe(3);
  });

  it('bypasses a request whose X-Forwarded-Host or override headers differ from what is keyed (no poisoning)', async () => {
    const s = await site((app, runs) => app.get('/xfh', page(runs, 'xfh')));
    expect((await request(s.port, '/xfh', { headers: { 'x-forwarded-host': 'evil.example' } })).headers['x-cache']).toBe('BYPASS');
    expect((await request(s.port, '/xfh', { headers: { 'x-original-url': '/admin' } })).headers['x-cache']).toBe('BYPASS');
    // A proxy in front that sets X-Forwarded-Host to the same host is fine.
    expect((await request(s.port, '/xfh', { headers: { 'x-forwarded-host': 'example.com' } })).headers['x-cache']).toBe('MISS');
  });

  it('stores a Vary: Cookie page as the cookie-less variant and never serves or stores it for a cookie that reaches the page', async () => {
    const s = await site(
      (app, runs) =>
        app.get('/v', (req, res) => {
          runs.inc('v');
          res.set({ 'cache-control': 'max-age=60', vary: 'Cookie' }).send(req.headers.cookie?.includes('theme=dark') ? 'dark page' : 'light page');
        }),
      // Only shop_session bypasses, so a theme cookie is looked up: the Vary rule alone must keep it apart.
      { bypassCookies: ['shop_session'] },
    );
    const dark = await request(s.port, '/v', { headers: { cookie: 'theme=dark' } });
    expect(dark.body.toString()).toBe('dark page');
    await sleep(100);
    // Not stored for the theme cookie (nor marked uncacheable): the next cookie-less request renders and stores.
    const light = await request(s.port, '/v');
    expect(light.headers['x-cache']).toBe('MISS');
    expect(light.body.toString()).toBe('light page');
    await waitStored(mc.direct, s.prefix, 'example.com', '/v');
    const hit = await request(s.port, '/v', { headers: { cookie: '_ga=GA1.2.3' } });
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.body.toString()).toBe('light page');
    const again = await request(s.port, '/v', { headers: { cookie: 'theme=dark' } });
    expect(again.headers['x-cache']).toBe('BYPASS');
    expect(again.body.toString()).toBe('dark page');
    expect(s.runs.get('v')).toBe(3);
  });

  it('caches a request whose only cookies are analytics ones', async () => {
    const s = await site((app, runs) => app.get('/c', page(runs, 'c')));
    await request(s.port, '/c', { headers: { cookie: '_ga=GA1.2.3; _gid=x' } });
    await waitStored(mc.direct, s.prefix, 'example.com', '/c');
    expect((await request(s.port, '/c', { headers: { cookie: '_ga=GA1.9.9' } })).headers['x-cache']).toBe('HIT');
    expect(s.runs.get('c')).toBe(1);
  });

  it('with a list of session cookies, caches requests with other cookies', async () => {
    const s = await site((app, runs) => app.get('/c2', page(runs, 'c2')), { bypassCookies: ['connect.sid'] });
    await request(s.port, '/c2', { headers: { cookie: 'theme=dark; sid_pref=1' } });
    await waitStored(mc.direct, s.prefix, 'example.com', '/c2');
    expect((await request(s.port, '/c2', { headers: { cookie: 'theme=dark' } })).headers['x-cache']).toBe('HIT');
    expect(s.runs.get('c2')).toBe(1);
  });

  it('never stores a page whose Set-Cookie is added by a middleware mounted before it (express-session style)', async () => {
    // A session-like middleware adds Set-Cookie in an on-headers hook, which runs after pageCache's own
    // writeHead wrapper: only the final headers show it.
    const s = await site(
      (app, runs) => app.get('/login', page(runs, 'login')),
      {},
      (app) => app.use(atWriteHead('set-cookie', 'connect.sid=SECRET-alice; HttpOnly')),
    );
    const first = await request(s.port, '/login');
    expect(first.headers['set-cookie']).toEqual(['connect.sid=SECRET-alice; HttpOnly']);
    await sleep(150);
    const second = await request(s.port, '/login');
    expect(second.headers['x-cache']).toBe('MISS');
    expect(s.runs.get('login')).toBe(2);
  });

  it('sees Vary: Cookie on any Vary line, and when a middleware mounted before it adds it late', async () => {
    const s = await site(
      (app, runs) => {
        app.get('/two-lines', (_req, res) => {
          runs.inc('two');
          res.set('cache-control', 'max-age=60').append('Vary', 'Accept-Encoding').append('Vary', 'Cookie').send('two lines');
        });
        app.get('/late', page(runs, 'late', { 'cache-control': 'max-age=60' }));
      },
      { bypassCookies: ['shop_session'] },
      (app) => app.use('/late', atWriteHead('vary', 'Cookie')),
    );
    // Two Vary lines: stored once as the cookie-less page, and never served to the theme cookie.
    await request(s.port, '/two-lines');
    await waitStored(mc.direct, s.prefix, 'example.com', '/two-lines');
    expect((await request(s.port, '/two-lines')).headers['x-cache']).toBe('HIT');
    expect((await request(s.port, '/two-lines', { headers: { cookie: 'theme=dark' } })).headers['x-cache']).toBe('BYPASS');
    expect(s.runs.get('two')).toBe(2);
    // Vary: Cookie added after the snapshot: not stored (the entry would not say it varies).
    await request(s.port, '/late');
    await sleep(150);
    expect((await request(s.port, '/late', { headers: { cookie: 'theme=dark' } })).headers['x-cache']).not.toBe('HIT');
    expect(s.runs.get('late')).toBe(2);
  });

  it('bypasses configured paths (prefixes and RegExps)', async () => {
    const s = await site(
      (app, runs) => {
        app.get('/admin/x', page(runs, 'admin'));
        app.get('/a/preview', page(runs, 'preview'));
      },
      { bypassPaths: ['/admin', /\/preview$/] },
    );
    for (let i = 0; i < 2; i++) {
      expect((await request(s.port, '/admin/x')).headers['x-cache']).toBe('BYPASS');
      expect((await request(s.port, '/a/preview')).headers['x-cache']).toBe('BYPASS');
    }
    expect(s.runs.get('admin')).toBe(2);
    expect(s.runs.get('preview')).toBe(2);
  });

  it('passes other methods through, and a successful POST invalidates the stored page (RFC 9111 §4.4)', async () => {
    const s = await site((app, runs) => {
      app.get('/p', page(runs, 'get'));
      app.post('/p', (_req, res) => {
        runs.inc('post');
        res.send('saved');
      });
    });
    await request(s.port, '/p');
    await waitStored(mc.direct, s.prefix, 'example.com', '/p');
    const post = await request(s.port, '/p', { method: 'POST', body: 'x' });
    expect(post.headers['x-cache']).toBe('BYPASS');
    expect(post.body.toString()).toBe('saved');
    await sleep(50);
    expect((await request(s.port, '/p')).headers['x-cache']).toBe('MISS');
    expect(s.runs.get('get')).toBe(2);
    expect(s.runs.get('post')).toBe(1);
  });

  it('does not answer HEAD from the cache when methods is [GET]', async () => {
    const s = await site((app, runs) => app.get('/g', page(runs, 'g')), { methods: ['GET'] });
    await request(s.port, '/g');
    await waitStored(mc.direct, s.prefix, 'example.com', '/g');
    expect((await request(s.port, '/g', { method: 'HEAD' })).headers['x-cache']).toBe('BYPASS');
    expect(s.runs.get('g')).toBe(2);
  });
});
