// A cache fault never fails or slows the site beyond the memcached timeout: memcached stopped, hanging,
// or full, the page renders as if there were no cache.
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { Counter, listen, uniquePrefix, closeAfterEach } from '../helpers/express-app';
import { startHangingServer, startMemcached } from '../helpers/memcached';
import { request } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const TIMEOUT_MS = 150;
const track = closeAfterEach();

const PAGE = Buffer.from(`<h1>still here</h1>${'<p>content</p>'.repeat(300)}`);
const BIG = Buffer.alloc(200 * 1024, 0x62);

async function site(memcached: string, extra: { memoryBytes?: number } = {}) {
  const registry = new Registry();
  const mw = pageCache({ memcached, keyPrefix: uniquePrefix('faults'), ttl: 60, memcachedTimeoutMs: TIMEOUT_MS, memcachedRetryAfterMs: 60_000, registry, ...extra });
  const app = express();
  app.use(mw);
  const runs = new Counter();
  app.get('/page/:n', (_req, res) => {
    runs.inc('page');
    res.type('html').send(PAGE);
  });
  app.get('/big/:n', (_req, res) => {
    runs.inc('big');
    res.type('html').send(BIG);
  });
  const running = await listen(app);
  track(running, mw);
  return { port: running.port, runs, registry };
}

async function errorCount(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('edge_cache_store_errors_total')?.get();
  return (metric?.values ?? []).reduce((n, v) => n + v.value, 0);
}

async function timed(port: number, path: string) {
  const t0 = Date.now();
  const reply = await request(port, path);
  return { reply, ms: Date.now() - t0 };
}

it('renders every page when memcached is stopped, with no added latency', async () => {
  const mc = await startMemcached();
  await mc.stop();
  // No L1: every request has to ask memcached, so nothing hides the fault.
  const s = await site(mc.address, { memoryBytes: 0 });
  for (let i = 0; i < 5; i++) {
    const { reply, ms } = await timed(s.port, `/page/${i % 2}`);
    expect(reply.status).toBe(200);
    expect(reply.body.equals(PAGE)).toBe(true);
    expect(reply.headers['x-cache']).toBe('MISS');
    expect(ms).toBeLessThan(TIMEOUT_MS * 2);
  }
  expect(s.runs.get('page')).toBe(5);
  expect(await errorCount(s.registry)).toBeGreaterThan(0);
});

it('renders every page when memcached hangs: a few timeouts (three in a row), then the node is skipped', async () => {
  const hang = await startHangingServer();
  try {
    const s = await site(hang.address, { memoryBytes: 0 });
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { reply, ms } = await timed(s.port, `/page/${i}`);
      expect(reply.status).toBe(200);
      expect(reply.body.equals(PAGE)).toBe(true);
      times.push(ms);
    }
    // The first lookups each wait out the timeout (one alone could be a busy event loop); after three in a
    // row the breaker skips the node.
    for (const ms of times.slice(0, 3)) expect(ms).toBeLessThan(TIMEOUT_MS * 3 + 200);
    for (const ms of times.slice(3)) expect(ms).toBeLessThan(50);
    expect(s.runs.get('page')).toBe(6);
    expect(await errorCount(s.registry)).toBeGreaterThan(0);
  } finally {
    await hang.close();
  }
});

it('keeps serving hits from its L1 while memcached is down', async () => {
  const mc = await startMemcached();
  const s = await site(mc.address);
  await request(s.port, '/page/1');
  await sleep(50);
  await mc.stop();
  const hit = await request(s.port, '/page/1');
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.body.equals(PAGE)).toBe(true);
  expect(s.runs.get('page')).toBe(1);
});

it('renders every page when memcached is full (out of memory, no eviction)', async () => {
  // -M: return errors instead of evicting; -m 1 (MiB) fills after a few pages.
  const mc = await startMemcached(['-M', '-m', '1', '-I', '512k']);
  try {
    const s = await site(mc.address, { memoryBytes: 0 });
    for (let i = 0; i < 30; i++) {
      const { reply, ms } = await timed(s.port, `/big/${i}`);
      expect(reply.status).toBe(200);
      expect(reply.body.equals(BIG)).toBe(true);
      expect(ms).toBeLessThan(TIMEOUT_MS * 2);
    }
    expect(s.runs.get('big')).toBe(30);
    // The writes did fail (memcached was full): the fault was real, and counted.
    await sleep(50);
    expect(await errorCount(s.registry)).toBeGreaterThan(0);
  } finally {
    await mc.stop();
  }
});
