// The edge as a real process between real origins and real memcached: cache faults and origin faults
// never reach the client, big bodies pass byte for byte, workers share the port, SIGTERM drains.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const FIFTY_MB = 50 * 1024 * 1024;
/** A deterministic 50 MB body, generated in 64 KiB blocks. */
function block(i: number): Buffer {
  const b = Buffer.alloc(65536);
  for (let j = 0; j < b.length; j += 4) b.writeUInt32LE((i * 65536 + j) >>> 0, j);
  return b;
}

function pageOrigin(name: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': FIFTY_MB, 'cache-control': 'max-age=60' });
      let i = 0;
      const pump = (): void => {
        while (i < FIFTY_MB / 65536) {
          if (!res.write(block(i++))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url === '/slow') {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('slow done');
      }, 800);
      return;
    }
    if (req.method === 'POST') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${n} ${h.digest('hex')}`);
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=300' });
    res.end(`<p>${name} ${req.url}</p>`);
  };
}

let mc: MemcachedProcess;
let a: TestOrigin;
let b: TestOrigin;
let edge: EdgeProcess;
const TOKEN = 'test-admin-token-0123456789';

beforeAll(async () => {
  mc = await startMemcached();
  a = await startOrigin(pageOrigin('a'));
  b = await startOrigin(pageOrigin('b'));
  edge = await startEdge([
    '--origin', `${a.url},${b.url}`,
    '--memcached', mc.address,
    '--memcached-timeout', '100',
    '--memcached-retry-after', '300',
    '--admin-token', TOKEN,
    '--key-prefix', `proc${Date.now()}:`,
    '--origin-fail-timeout', '60000',
    '--origin-max-fails', '1',
  ]);
});

afterAll(async () => {
  await edge?.stop();
  await Promise.all([a?.close(), b?.close(), mc?.stop()]);
});

it('misses once then hits, the origin seeing one request', async () => {
  const first = await request(edge.port, '/hello');
  const second = await request(edge.port, '/hello');
  expect(first.headers['x-cache']).toBe('MISS');
  expect(second.headers['x-cache']).toBe('HIT');
  expect(second.body.toString()).toBe(first.body.toString());
  expect(a.hits('/hello') + b.hits('/hello')).toBe(1);
});

it('serves every request while memcached is killed mid-test and restarted', async () => {
  const statuses: number[] = [];
  const paths = Array.from({ length: 20 }, (_, i) => `/mc/${i}`);
  for (const p of paths) statuses.push((await request(edge.port, p)).status);
  await mc.stop();
  const t0 = Date.now();
  for (let round = 0; round < 3; round++) for (const p of paths) statuses.push((await request(edge.port, p)).status);
  // 60 requests with memcached down: one timeout at most, then the breaker skips it.
  expect(Date.now() - t0).toBeLessThan(3000);
  for (let i = 0; i < 20; i++) statuses.push((await request(edge.port, `/mc/new-${i}`)).status);
  await mc.start();
  await sleep(400);
  for (const p of paths) statuses.push((await request(edge.port, p)).status);
  expect(statuses.every((s) => s === 200)).toBe(true);
  // Back up: pages are written and read from memcached again.
  await request(edge.port, '/mc/after');
  await sleep(2100); // past the L1 TTL, so the hit below comes from memcached
  const again = await request(edge.port, '/mc/after');
  expect(again.headers['x-cache']).toBe('HIT');
  const metrics = await request(edge.adminPort, '/metrics', { host: '127.0.0.1' });
  // Whichever call met the dead node first is counted (a background write or lock release may come first).
  expect(metrics.body.toString()).toMatch(/edge_cache_store_errors_total\{tier="l2",op="(get|set|add|delete)",code="ERR_STORE_[A-Z]+"\} [1-9]/);
});

it('keeps serving with no client error when one of two origins is killed', async () => {
  await b.close();
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push((await request(edge.port, `/failover/${i}`)).status);
  expect(statuses.every((s) => s === 200)).toBe(true);
  const health = JSON.parse((await request(edge.adminPort, '/healthz', { host: '127.0.0.1' })).body.toString()) as { origins: { url: string; up: boolean }[] };
  expect(health.origins.find((o) => o.url === b.url)?.up).toBe(false);
  expect(health.origins.find((o) => o.url === a.url)?.up).toBe(true);
});

it('passes a POST body and a 50 MB download byte for byte, streaming', async () => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  const r = await request(edge.port, '/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  expect(r.body.toString()).toBe(`${body.length} ${createHash('sha256').update(body).digest('hex')}`);

  const want = createHash('sha256');
  for (let i = 0; i < FIFTY_MB / 65536; i++) want.update(block(i));
  const got = await new Promise<{ size: number; hash: string; xcache: string | undefined }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: edge.port, path: '/big', headers: { host: 'example.com' } }, (res) => {
      const h = createHash('sha256');
      let size = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        size += c.length;
      });
      res.on('end', () => resolve({ size, hash: h.digest('hex'), xcache: res.headers['x-cache'] as string | undefined }));
      res.on('error', reject);
    });
  });
  expect(got.size).toBe(FIFTY_MB);
  expect(got.hash).toBe(want.digest('hex'));
  expect(got.xcache).toBe('MISS');
});

it('purges through the admin port only with the token', async () => {
  await request(edge.port, '/purge-me');
  expect((await request(edge.port, '/purge-me')).headers['x-cache']).toBe('HIT');
  const body = JSON.stringify({ urls: ['http://example.com/purge-me'] });
  const denied = await request(edge.adminPort, '/purge', { host: '127.0.0.1', method: 'POST', body, headers: { 'content-type': 'application/json' } });
  expect(denied.status).toBe(401);
  const wrong = await request(edge.adminPort, '/purge', { host: '127.0.0.1', method: 'POST', body, headers: { authorization: 'Bearer nope' } });
  expect(wrong.status).toBe(401);
  const bad = await request(edge.adminPort, '/purge', { host: '127.0.0.1', method: 'POST', body: '{nope', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(bad.status).toBe(400);
  const ok = await request(edge.adminPort, '/purge', { host: '127.0.0.1', method: 'POST', body, headers: { authorization: `Bearer ${TOKEN}` } });
  expect(ok.status).toBe(200);
  expect(JSON.parse(ok.body.toString())).toEqual({ purged: 1 });
  expect((await request(edge.port, '/purge-me')).headers['x-cache']).toBe('MISS');
});

it('shows a stats page with the hit ratio and node health', async () => {
  const page = await request(edge.adminPort, '/', { host: '127.0.0.1' });
  expect(page.status).toBe(200);
  expect(page.headers['content-security-policy']).toBeDefined();
  expect(page.body.toString()).toMatch(/Hit ratio: <b>\d+\.\d%<\/b>/);
  expect(page.body.toString()).toContain(mc.address);
});

it('drains in-flight requests on SIGTERM, then exits 0', async () => {
  const slow = request(edge.port, '/slow');
  await sleep(100);
  const code = await edge.stop();
  const r = await slow;
  expect(r.status).toBe(200);
  expect(r.body.toString()).toBe('slow done');
  expect(code).toBe(0);
});
