// Faults a bad network or a bad day brings, against the edge: a memcached that accepts connections and
// never answers, origins that stay silent, an origin overwhelmed by more requests than it has connections.
// Each case states what a client may pay at most: a cache fault never becomes a client error, and a client
// waits about one timeout, not one per attempt.
import http from 'node:http';
import { Registry } from 'prom-client';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import type { EdgeOptions } from '../../src/edge/options';
import { startHangingServer } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

let origin: TestOrigin;
let silent: TestOrigin;
let slowMs = 0;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
      res.end(`page ${req.url}`);
    };
    if (slowMs > 0) setTimeout(answer, slowMs);
    else answer();
  });
  silent = await startOrigin(() => {
    /* never answers */
  });
});
afterAll(async () => {
  await origin.close();
  await silent.close();
});

const edges: EdgeServer[] = [];
afterEach(async () => {
  slowMs = 0;
  await Promise.all(edges.splice(0).map((e) => e.close()));
});
let seq = 0;
async function edgeWith(opts: EdgeOptions): Promise<{ port: number; registry: Registry }> {
  seq++;
  const registry = new Registry();
  const edge = createEdgeServer({ port: 0, host: '127.0.0.1', keyPrefix: `faults-adv${seq}:`, ...opts }, { registry });
  edges.push(edge);
  return { port: await edge.listen(), registry };
}

async function timed(port: number, path: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const r = await request(port, path, { host: 'site.test' });
  return { ms: performance.now() - t0, status: r.status };
}

it('memcached black-holed (accepts, never answers): each request pays at most one memcached timeout, none once the breaker opens', async () => {
  // The first request of a process loads and compiles what the edge needs (undici, zlib): done first on an
  // edge without memcached, so the times below are the edge's, not the module loader's.
  const warm = await edgeWith({ origin: origin.url });
  await timed(warm.port, '/warm');
  const hole = await startHangingServer();
  try {
    const { port } = await edgeWith({ origin: origin.url, memcached: hole.address, memcachedTimeoutMs: 200, memcachedRetryAfterMs: 60_000 });
    const times: number[] = [];
    // Distinct pages, one after another: each is a lookup (get), a fill lock (add) and a store (set).
    for (let i = 0; i < 6; i++) {
      const r = await timed(port, `/hole-${i}`);
      expect(r.status).toBe(200); // a cache fault is never a client error
      times.push(r.ms);
    }
    // One timeout is 200 ms; two (get, then the lock's add) would be 400 ms or more.
    for (const ms of times) expect(ms).toBeLessThan(380);
    // The breaker opens after three timeouts in a row: from then on a request waits for no timeout at all.
    for (const ms of times.slice(4)) expect(ms).toBeLessThan(150);
  } finally {
    await hole.close();
  }
});

it('a silent origin followed by another silent origin: retries share one --origin-timeout, the client waits about one', async () => {
  const { port } = await edgeWith({ origin: [silent.url, silent.url.replace('127.0.0.1', 'localhost')], originTimeoutMs: 1200, staleIfError: 0 });
  const r = await timed(port, '/silent');
  expect(r.status).toBe(504);
  // One attempt: 1200 ms and undici's timer resolution (its timers fire up to ~0.5 s late); two attempts
  // with a fresh timeout each would take 2400 ms or more.
  expect(r.ms).toBeGreaterThanOrEqual(1150);
  expect(r.ms).toBeLessThan(2300);
});

it('more waiting requests than --origin-max-queue: the rest get 503 with Retry-After at once, never unbounded waiting', async () => {
  slowMs = 400;
  const { port } = await edgeWith({ origin: origin.url, originConnections: 2, originMaxQueue: 3, coalesce: false });
  // Distinct uncached pages at once: 2 run, 3 wait, the rest are shed.
  const agent = new http.Agent({ keepAlive: false, maxSockets: 20 });
  try {
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port, path: `/queue-${i}`, headers: { host: 'site.test' }, agent }, (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
            })
            .on('error', reject);
        }),
      ),
    );
    const ok = replies.filter((r) => r.status === 200).length;
    const shed = replies.filter((r) => r.status === 503);
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok + shed.length).toBe(12);
    expect(shed.length).toBeGreaterThanOrEqual(1);
    for (const r of shed) expect(r.retryAfter).toBe('1');
  } finally {
    agent.destroy();
  }
});
