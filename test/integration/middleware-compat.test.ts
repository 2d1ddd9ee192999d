// pageCache() inside the Express stacks people already run: Express 4.16, 4.21 and 5, with morgan, compression,
// helmet, cookie-parser, express-session and response-time mounted before and after it, and pages from
// res.send, express.static, res.render (pug) and res.sendFile. Each: MISS then HIT, the HIT's body
// byte-exact and its status and headers as the app sent them on the MISS.
import path from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import type expressTypes from 'express';
import helmet from 'helmet';
import { pageCache } from '../../middleware';
import type { PageCacheMiddleware } from '../../middleware';
import { Registry } from 'prom-client';
import { listen, uniquePrefix, waitUntil } from '../helpers/express-app';
import type { RunningApp } from '../helpers/express-app';
import { request } from '../helpers/origin';
import type { Reply } from '../helpers/origin';

type ExpressModule = typeof expressTypes;
type Factory = () => RequestHandler;

/* eslint-disable @typescript-eslint/no-require-imports -- npm aliases (express4: npm:express@4.21.2) have no typings of their own */
const EXPRESS: Readonly<Record<string, ExpressModule>> = {
  '4.16.4': require('express416') as ExpressModule,
  '4.21.2': require('express4') as ExpressModule,
  '5.2.1': require('express') as ExpressModule,
};
type Morgan = (format: string, options: { stream: { write(line: string): void } }) => RequestHandler;
type Compression = (options?: { threshold?: number }) => RequestHandler;
const morgan19 = require('morgan19') as Morgan;
const morgan110 = require('morgan') as Morgan;
const compression174 = require('compression174') as Compression;
const compression18 = require('compression') as Compression;
const cookieParser = require('cookie-parser') as () => RequestHandler;
const session = require('express-session') as (options: { secret: string; resave: boolean; saveUninitialized: boolean }) => RequestHandler;
const responseTime = require('response-time') as () => RequestHandler;
/* eslint-enable @typescript-eslint/no-require-imports */

const SITE = path.join(__dirname, '..', 'fixtures', 'site');
const QUIET = { write(): void {} };

/** Each middleware as an app mounts it (compression at threshold 0, so every page is compressed). */
const MIDDLEWARES: readonly (readonly [string, Factory])[] = [
  ['morgan 1.9', () => morgan19('dev', { stream: QUIET })],
  ['morgan 1.10', () => morgan110('dev', { stream: QUIET })],
  ['compression 1.7.4', () => compression174({ threshold: 0 })],
  ['compression 1.8', () => compression18({ threshold: 0 })],
  ['helmet', () => helmet() as unknown as RequestHandler],
  ['cookie-parser', () => cookieParser()],
  ['express-session', () => session({ secret: 'compat', resave: false, saveUninitialized: false })],
  ['response-time', () => responseTime()],
];

/** Routes of every kind of page Express produces; explicit freshness where Express sets max-age=0. */
function mountRoutes(app: ReturnType<ExpressModule>, express: ExpressModule, runs: Map<string, number>): void {
  const count: RequestHandler = (req, _res, next) => {
    runs.set(req.path, (runs.get(req.path) ?? 0) + 1);
    next();
  };
  app.use(count);
  app.set('views', path.join(SITE, 'views'));
  app.set('view engine', 'pug');
  app.get('/', (_req, res) => {
    res.render('index', { title: 'Express', items: ['one', 'two', 'three'] });
  });
  app.get('/send', (_req, res) => {
    res.type('html').send(`<h1>send</h1>${'<p>filler text for the page</p>'.repeat(40)}`);
  });
  app.get('/file', (_req, res) => {
    res.sendFile(path.join(SITE, 'public', 'about.html'), { maxAge: 60_000 });
  });
  app.use(express.static(path.join(SITE, 'public'), { maxAge: 60_000 }));
}

/** Headers whose value moves per request or per cache hop; everything else must be what the app sent. */
const PER_REQUEST = new Set(['date', 'x-cache', 'cache-status', 'age', 'x-response-time', 'connection', 'keep-alive']);

/** Framing aside: a page the app streamed chunked is stored whole and served with its Content-Length. */
function appHeaders(h: IncomingHttpHeaders): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(h).sort()) if (!PER_REQUEST.has(name) && name !== 'transfer-encoding' && name !== 'content-length') out[name] = h[name];
  return out;
}

interface Built {
  readonly app: RunningApp;
  readonly mw: PageCacheMiddleware;
  readonly runs: Map<string, number>;
  readonly registry: Registry;
}

const open: Built[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) {
    await b.app.close();
    await b.mw.close();
  }
});

async function build(express: ExpressModule, before: readonly Factory[], after: readonly Factory[]): Promise<Built> {
  const registry = new Registry();
  const mw = pageCache({ ttl: 60, keyPrefix: uniquePrefix('compat'), registry });
  const app = express();
  for (const f of before) app.use(f());
  app.use(mw);
  for (const f of after) app.use(f());
  const runs = new Map<string, number>();
  mountRoutes(app, express, runs);
  const built = { app: await listen(app as unknown as Parameters<typeof listen>[0]), mw, runs, registry };
  open.push(built);
  return built;
}

const CLIENT = { 'accept-encoding': 'gzip, deflate' };

/** GET twice: the first renders (MISS), the second is a HIT with the same bytes, status and app headers. */
async function missThenHit(b: Built, url: string): Promise<[Reply, Reply]> {
  const miss = await request(b.app.port, url, { headers: CLIENT });
  expect(miss.status).toBe(200);
  expect(miss.headers['x-cache']).toBe('MISS');
  await waitUntil(`${url} stored`, async () => (await b.mw.cache.get(b.mw.cache.keyFor('example.com', url))) !== undefined);
  const hit = await request(b.app.port, url, { headers: CLIENT });
  expect(hit.status).toBe(200);
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.body.equals(miss.body)).toBe(true);
  expect(appHeaders(hit.headers)).toEqual(appHeaders(miss.headers));
  if (miss.headers['content-length'] !== undefined) expect(hit.headers['content-length']).toBe(miss.headers['content-length']);
  const path = url.split('?')[0]!;
  expect(b.runs.get(path)).toBe(1);
  return [miss, hit];
}

describe('the express-generator app (Express 4.16, morgan 1.9, pug, cookie-parser, static) with pageCache after the logger', () => {
  it('answers 200 HIT to the second GET / (was a 500 from on-headers)', async () => {
    const b = await build(EXPRESS['4.16.4']!, [MIDDLEWARES[0]![1], MIDDLEWARES[5]![1]], []);
    const [miss, hit] = await missThenHit(b, '/');
    expect(miss.body.toString()).toContain('<h1>Express</h1>');
    expect(hit.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('answers 200 HIT with compression 1.7.4 mounted before pageCache, compressed by it on the hit too', async () => {
    const b = await build(EXPRESS['4.16.4']!, [MIDDLEWARES[0]![1], MIDDLEWARES[2]![1]], []);
    const [, hit] = await missThenHit(b, '/');
    expect(hit.headers['content-encoding']).toBe('gzip');
  });
});

describe.each(Object.keys(EXPRESS))('Express %s', (version) => {
  const express = EXPRESS[version]!;
  it.each(['/', '/send', '/file', '/about.html', '/stylesheets/style.css'])('serves %s as MISS then a byte-exact HIT', async (url) => {
    const b = await build(express, [], []);
    await missThenHit(b, url);
  });

  it('serves HEAD from the stored GET with the same headers and no body', async () => {
    const b = await build(express, [MIDDLEWARES[0]![1]], []);
    const [miss] = await missThenHit(b, '/send');
    const head = await request(b.app.port, '/send', { method: 'HEAD', headers: CLIENT });
    expect(head.status).toBe(200);
    expect(head.headers['x-cache']).toBe('HIT');
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(miss.headers['content-length']);
  });
});

describe.each(MIDDLEWARES.map(([name, f]) => [name, f] as const))('%s on Express 4.21', (name, factory) => {
  const express = EXPRESS['4.21.2']!;
  it.each(['before', 'after'])(`${name} mounted %s pageCache: MISS then a byte-exact HIT for res.send and res.render`, async (order) => {
    const b = await build(express, order === 'before' ? [factory] : [], order === 'after' ? [factory] : []);
    await missThenHit(b, '/send');
    await missThenHit(b, '/');
  });
});

describe('a hit whose delivery a wrapper refuses', () => {
  /** Mounted before pageCache: when the request asks for it, its writeHead (or end) wrapper throws. */
  function breaking(which: 'writeHead' | 'end'): Factory {
    return () => (req, res, next) => {
      if (req.headers['x-break'] !== undefined) {
        const original = res[which] as (...args: unknown[]) => unknown;
        let thrown = false;
        const broken = function broken(this: typeof res, ...args: unknown[]): unknown {
          if (!thrown) {
            thrown = true;
            throw new Error(`${which} wrapper failed`);
          }
          return Reflect.apply(original, this, args);
        };
        Object.assign(res, { [which]: broken });
      }
      next();
    };
  }

  it('falls through to the app before anything was sent, keeps the entry, and counts it', async () => {
    const b = await build(EXPRESS['4.21.2']!, [breaking('writeHead')], []);
    const [miss] = await missThenHit(b, '/send');
    const fell = await request(b.app.port, '/send', { headers: { ...CLIENT, 'x-break': '1' } });
    expect(fell.status).toBe(200);
    expect(fell.headers['x-cache']).toBe('BYPASS');
    expect(fell.body.equals(miss.body)).toBe(true);
    expect(b.runs.get('/send')).toBe(2);
    const metrics = await b.registry.getSingleMetricAsString('edge_cache_hit_failures_total');
    expect(metrics).toContain('stage="before-head"} 1');
    const again = await request(b.app.port, '/send', { headers: CLIENT });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(b.runs.get('/send')).toBe(2);
  });

  it('ends the response when the end wrapper throws after the head went out, and counts it', async () => {
    const b = await build(EXPRESS['4.21.2']!, [breaking('end')], []);
    await missThenHit(b, '/send');
    await expect(request(b.app.port, '/send', { headers: { ...CLIENT, 'x-break': '1' } })).rejects.toThrow();
    const metrics = await b.registry.getSingleMetricAsString('edge_cache_hit_failures_total');
    expect(metrics).toContain('stage="after-head"} 1');
    expect((await request(b.app.port, '/send', { headers: CLIENT })).headers['x-cache']).toBe('HIT');
  });
});
