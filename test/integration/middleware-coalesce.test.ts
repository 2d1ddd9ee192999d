// Concurrent misses for one page render once (in-process single flight, and across processes sharing
// memcached through its fill lock); and the embedded store, for a site with no memcached at all.
import express from 'express';
import { pageCache } from '../../middleware';
import type { MiddlewareOptions } from '../../middleware';
import { Counter, listen, uniquePrefix, closeAfterEach } from '../helpers/express-app';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request } from '../helpers/origin';

let mc: MemcachedProcess;
const track = closeAfterEach();
beforeAll(async () => {
  mc = await startMemcached();
});
afterAll(async () => {
  await mc.stop();
});

async function slowSite(options: MiddlewareOptions, runs = new Counter()) {
  const mw = pageCache({ keyPrefix: uniquePrefix('coalesce'), ttl: 60, ...options });
  const app = express();
  app.use(mw);
  app.get('/slow', (_req, res) => {
    runs.inc('slow');
    setTimeout(() => res.send(`<p>rendered ${runs.get('slow')}</p>`), 150);
  });
  app.get('/private', (_req, res) => {
    runs.inc('private');
    setTimeout(() => res.set('cache-control', 'private').send('<p>mine</p>'), 150);
  });
  const running = await listen(app);
  track(running, mw);
  return { port: running.port, runs };
}

it('renders a page once for eight concurrent requests; the others are served the stored copy', async () => {
  const s = await slowSite({ memcached: mc.address });
  const replies = await Promise.all(Array.from({ length: 8 }, () => request(s.port, '/slow')));
  expect(s.runs.get('slow')).toBe(1);
  for (const r of replies) {
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('<p>rendered 1</p>');
  }
  expect(replies.filter((r) => r.headers['x-cache'] === 'MISS').length).toBe(1);
  expect(replies.filter((r) => r.headers['x-cache'] === 'HIT').length).toBe(7);
});

it('renders each one when the page turns out not storable', async () => {
  const s = await slowSite({ memcached: mc.address });
  const replies = await Promise.all(Array.from({ length: 4 }, () => request(s.port, '/private')));
  expect(replies.every((r) => r.status === 200 && r.body.toString() === '<p>mine</p>')).toBe(true);
  expect(s.runs.get('private')).toBe(4);
});

it('renders concurrently when coalesce is false', async () => {
  const s = await slowSite({ memcached: mc.address, coalesce: false });
  await Promise.all(Array.from({ length: 4 }, () => request(s.port, '/slow')));
  expect(s.runs.get('slow')).toBe(4);
});

it('caches in process without memcached (embedded store)', async () => {
  const s = await slowSite({});
  const first = await request(s.port, '/slow');
  expect(first.headers['x-cache']).toBe('MISS');
  const second = await request(s.port, '/slow');
  expect(second.headers['x-cache']).toBe('HIT');
  expect(second.body.equals(first.body)).toBe(true);
  expect(s.runs.get('slow')).toBe(1);
});

it('renders a page once for 200 concurrent requests on two sites sharing memcached (the fill lock)', async () => {
  // Two middleware instances: separate single-flight maps and L1s, nothing shared but memcached, as two processes.
  const runs = new Counter();
  const keyPrefix = uniquePrefix('coalesce-shared');
  const a = await slowSite({ memcached: mc.address, keyPrefix }, runs);
  const b = await slowSite({ memcached: mc.address, keyPrefix }, runs);
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => request(i % 2 === 0 ? a.port : b.port, '/slow')));
  expect(replies.every((r) => r.status === 200 && r.body.toString() === '<p>rendered 1</p>')).toBe(true);
  expect(runs.get('slow')).toBe(1);
});

it('does not queue renders of an uncacheable page behind the fill lock across sites (hit-for-miss)', async () => {
  const runs = new Counter();
  const keyPrefix = uniquePrefix('coalesce-hfm');
  const sites = [];
  for (let i = 0; i < 4; i++) sites.push(await slowSite({ memcached: mc.address, keyPrefix }, runs));
  // The first round learns the page is private and leaves the mark.
  await Promise.all(sites.map((site) => request(site.port, '/private')));
  const t0 = Date.now();
  const replies = await Promise.all(sites.map((site) => request(site.port, '/private')));
  expect(replies.every((r) => r.status === 200 && r.body.toString() === '<p>mine</p>')).toBe(true);
  // A render takes 150 ms: four sites render at once, instead of each waiting for the one before (600 ms).
  expect(Date.now() - t0).toBeLessThan(400);
});
