// Whatever produced the page (send, render, json, write streams, end, a piped stream), with compression()
// before or after the cache, the stored page is byte for byte what the client got; oversize pages stream
// through unstored.
import { mkdtempSync, readFile, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import express from 'express';
import type { Express } from 'express';
import { pageCache } from '../../middleware';
import type { MiddlewareOptions } from '../../middleware';
import { Counter, listen, uniquePrefix, waitStored, closeAfterEach } from '../helpers/express-app';
import { memcachedForSuite } from '../helpers/memcached';
import { request } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const mc = memcachedForSuite();
const track = closeAfterEach();


const views = mkdtempSync(path.join(tmpdir(), 'epc-views-'));
writeFileSync(path.join(views, 'post.tpl'), '<article><h1>{{title}}</h1>{{#items}}</article>');
afterAll(() => rmSync(views, { recursive: true, force: true }));

/** A tiny template engine: `{{title}}` from the locals, `{{#items}}` as a list. */
function tinyEngine(file: string, locals: object, done: (err: Error | null, html?: string) => void): void {
  readFile(file, 'utf8', (err, tpl) => {
    if (err) return done(err);
    const vars = locals as Record<string, unknown>;
    const items = Array.isArray(vars.items) ? (vars.items as string[]).map((i) => `<li>${i}</li>`).join('') : '';
    done(null, tpl.replace('{{title}}', String(vars.title)).replace('{{#items}}', `<ul>${items}</ul>`));
  });
}

async function site(order: 'cache-only' | 'cache-then-compression' | 'compression-then-cache', routes: (app: Express, runs: Counter) => void, options: MiddlewareOptions = {}) {
  const prefix = uniquePrefix('producers');
  const mw = pageCache({ memcached: mc.address, keyPrefix: prefix, ttl: 60, ...options });
  const app = express();
  app.engine('tpl', tinyEngine);
  app.set('view engine', 'tpl');
  app.set('views', views);
  if (order === 'compression-then-cache') app.use(compression({ threshold: 0 }));
  app.use(mw);
  if (order === 'cache-then-compression') app.use(compression({ threshold: 0 }));
  const runs = new Counter();
  routes(app, runs);
  const running = await listen(app);
  track(running, mw);
  return { port: running.port, prefix, runs };
}

const BIG = Buffer.from(`<p>${'lorem ipsum dolor sit amet '.repeat(200)}</p>`);

describe('every way of producing a page is stored byte for byte', () => {
  const producers: [string, string, (app: Express, runs: Counter) => void][] = [
    ['res.send', '/send', (app, runs) => app.get('/send', (_req, res) => void (runs.inc('x'), res.send('<b>sent</b> é'))) ],
    [
      'res.render',
      '/render',
      (app, runs) =>
        app.get('/render', (_req, res) => {
          runs.inc('x');
          res.render('post', { title: 'Rendered', items: ['a', 'b', 'c'] });
        }),
    ],
    ['res.json', '/json', (app, runs) => app.get('/json', (_req, res) => void (runs.inc('x'), res.json({ ok: true, n: [1, 2, 3] })))],
    [
      'res.write stream',
      '/stream',
      (app, runs) =>
        app.get('/stream', (_req, res) => {
          runs.inc('x');
          res.type('html');
          res.write('<ul>');
          let i = 0;
          const t = setInterval(() => {
            res.write(Buffer.from(`<li>${i}</li>`));
            if (++i === 5) {
              clearInterval(t);
              res.end('</ul>', 'utf8');
            }
          }, 5);
        }),
    ],
    [
      'res.end with a Buffer and explicit writeHead',
      '/end',
      (app, runs) =>
        app.get('/end', (_req, res) => {
          runs.inc('x');
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-app': 'yes' });
          res.end(Buffer.from([0, 1, 2, 255, 254]));
        }),
    ],
    [
      'a piped Readable',
      '/pipe',
      (app, runs) =>
        app.get('/pipe', (_req, res) => {
          runs.inc('x');
          res.type('html');
          Readable.from([BIG.subarray(0, 1000), BIG.subarray(1000)]).pipe(res);
        }),
    ],
  ];

  it.each(producers)('%s', async (_name, target, routes) => {
    const s = await site('cache-only', routes);
    const first = await request(s.port, target);
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    await waitStored(mc.direct, s.prefix, 'example.com', target);
    const second = await request(s.port, target);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body.equals(first.body)).toBe(true);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(s.runs.get('x')).toBe(1);
    if (target === '/end') expect(second.headers['x-app']).toBe('yes');
    if (target === '/render') expect(second.body.toString()).toBe('<article><h1>Rendered</h1><ul><li>a</li><li>b</li><li>c</li></ul></article>');
  });
});

describe('with compression()', () => {
  const route = (app: Express, runs: Counter): void => {
    app.get('/z', (_req, res) => {
      runs.inc('z');
      res.type('html').send(BIG);
    });
  };

  it('mounted after the cache: stores the gzip bytes, serves them to gzip clients and decodes them for others', async () => {
    const s = await site('cache-then-compression', route);
    const first = await request(s.port, '/z', { headers: { 'accept-encoding': 'gzip' } });
    expect(first.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(first.body).equals(BIG)).toBe(true);
    await waitStored(mc.direct, s.prefix, 'example.com', '/z');
    const gz = await request(s.port, '/z', { headers: { 'accept-encoding': 'gzip, deflate' } });
    expect(gz.headers['x-cache']).toBe('HIT');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers['vary']).toMatch(/accept-encoding/i);
    expect(gz.body.equals(first.body)).toBe(true);
    const plain = await request(s.port, '/z');
    expect(plain.headers['x-cache']).toBe('HIT');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(BIG)).toBe(true);
    expect(s.runs.get('z')).toBe(1);
  });

  it('mounted before the cache: stores the identity bytes; compression encodes hits for clients that ask', async () => {
    const s = await site('compression-then-cache', route);
    const first = await request(s.port, '/z', { headers: { 'accept-encoding': 'gzip' } });
    expect(first.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(first.body).equals(BIG)).toBe(true);
    await waitStored(mc.direct, s.prefix, 'example.com', '/z');
    const plain = await request(s.port, '/z');
    expect(plain.headers['x-cache']).toBe('HIT');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(BIG)).toBe(true);
    const gz = await request(s.port, '/z', { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['x-cache']).toBe('HIT');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(BIG)).toBe(true);
    expect(s.runs.get('z')).toBe(1);
  });

  it('mounted before the cache, with an explicit writeHead: still stores identity bytes', async () => {
    const s = await site('compression-then-cache', (app, runs) =>
      app.get('/w', (_req, res) => {
        runs.inc('w');
        res.writeHead(200, { 'content-type': 'text/html' });
        res.write(BIG.subarray(0, 100));
        res.end(BIG.subarray(100));
      }),
    );
    await request(s.port, '/w', { headers: { 'accept-encoding': 'gzip' } });
    await waitStored(mc.direct, s.prefix, 'example.com', '/w');
    const plain = await request(s.port, '/w');
    expect(plain.headers['x-cache']).toBe('HIT');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(BIG)).toBe(true);
    expect(s.runs.get('w')).toBe(1);
  });
});

describe('size limit', () => {
  it('streams a page over maxEntryBytes to the client in full and does not store it', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const s = await site(
      'cache-only',
      (app, runs) =>
        app.get('/big', (_req, res) => {
          runs.inc('big');
          res.type('text');
          for (let i = 0; i < 40; i++) res.write(chunk);
          res.end();
        }),
      { maxEntryBytes: '1m' },
    );
    const first = await request(s.port, '/big');
    expect(first.body.length).toBe(40 * 64 * 1024);
    expect(first.body.every((b) => b === 0x61)).toBe(true);
    await sleep(100);
    const second = await request(s.port, '/big');
    expect(second.headers['x-cache']).toBe('MISS');
    expect(second.body.length).toBe(40 * 64 * 1024);
    expect(s.runs.get('big')).toBe(2);
  });

  it('does not promise to store a page whose declared Content-Length is over the limit', async () => {
    const s = await site('cache-only', (app, runs) => app.get('/cl', (_req, res) => void (runs.inc('cl'), res.send(Buffer.alloc(2048, 0x62)))), {
      maxEntryBytes: 1024,
    });
    const first = await request(s.port, '/cl');
    expect(first.body.length).toBe(2048);
    expect(first.headers['x-edge-page-cache-stored']).toBeUndefined();
    await sleep(50);
    expect((await request(s.port, '/cl')).headers['x-cache']).toBe('MISS');
  });
});
