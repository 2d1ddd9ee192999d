// /healthz tells the truth: ok; degraded (200) while a memcached node is down (found within one retry
// interval, with no traffic) or an origin is marked down; down (503) when no origin is up; draining (503)
// while draining. HTTP/1.0 health checks without a Host (HAProxy's default) get an answer.
import type http from 'node:http';
import { startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { rawRequest, request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const RETRY_MS = 1000;

interface Health {
  status: string;
  memcached: { name: string; up: boolean }[];
  origins: { url: string; up: boolean }[];
}

async function health(edge: EdgeProcess): Promise<{ code: number; body: Health }> {
  const r = await request(edge.adminPort, '/healthz', { host: '127.0.0.1' });
  return { code: r.status, body: JSON.parse(r.body.toString()) as Health };
}

/** Polls /healthz until its status is `status`; resolves with the ms it took (throws past timeoutMs). */
async function until(edge: EdgeProcess, status: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const h = await health(edge);
    if (h.body.status === status) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`no '${status}' within ${timeoutMs} ms: ${JSON.stringify(h)}`);
    await sleep(20);
  }
}

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/slow') {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end('slow done');
    }, 1500);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
  res.end('ok');
}

let mc: MemcachedProcess;
let a: TestOrigin;
let b: TestOrigin;
let edge: EdgeProcess;

beforeAll(async () => {
  mc = await startMemcached();
  a = await startOrigin(handler);
  b = await startOrigin(handler);
  edge = await startEdge([
    '--origin', `${a.url},${b.url}`,
    '--memcached', mc.address,
    '--memcached-retry-after', String(RETRY_MS),
    '--origin-health-path', '/health',
    '--origin-health-interval', '200',
    '--origin-max-fails', '1',
    '--workers', '2',
  ]);
});

afterAll(async () => {
  await edge.stop();
  await mc.stop();
  await b.close();
  await a.close();
});

it('says ok while memcached and every origin answer', async () => {
  const h = await health(edge);
  expect(h.code).toBe(200);
  expect(h.body.status).toBe('ok');
  expect(h.body.memcached).toEqual([expect.objectContaining({ name: mc.address, up: true })]);
});

it('says degraded (200) within one retry interval of memcached stopping, with no traffic, and ok once it is back', async () => {
  await sleep(RETRY_MS); // a probe just ran: the worst case comes next
  await mc.stop();
  const took = await until(edge, 'degraded', 3 * RETRY_MS);
  // One probe interval, plus the few ms a probe and this poll take.
  expect(took).toBeLessThanOrEqual(RETRY_MS + 400);
  const h = await health(edge);
  expect(h.code).toBe(200);
  expect(h.body.memcached).toEqual([expect.objectContaining({ name: mc.address, up: false })]);
  // The stats page says the same.
  expect((await request(edge.adminPort, '/', { host: '127.0.0.1' })).body.toString()).toContain('Health: <b>degraded</b>');
  // Pages are still served (from the origin) meanwhile.
  expect((await request(edge.port, '/while-down')).status).toBe(200);
  await mc.start();
  await until(edge, 'ok', 3 * RETRY_MS);
});

it('answers HTTP/1.0 checks without a Host: GET /healthz and HAProxy\'s default OPTIONS /', async () => {
  const get = await rawRequest(edge.adminPort, 'GET /healthz HTTP/1.0\r\n\r\n');
  expect(get).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(get).toContain('"status":"ok"');
  const options = await rawRequest(edge.adminPort, 'OPTIONS / HTTP/1.0\r\n\r\n');
  expect(options).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(options).toContain('"status":"ok"');
});

it('says degraded while one origin is down, and down (503) when none is up', async () => {
  await b.close();
  await until(edge, 'degraded', 3000);
  expect((await health(edge)).body.origins).toEqual(expect.arrayContaining([expect.objectContaining({ url: b.url, up: false })]));
  expect((await health(edge)).code).toBe(200);
  await a.close();
  await until(edge, 'down', 3000);
  expect((await health(edge)).code).toBe(503);
  const options = await rawRequest(edge.adminPort, 'OPTIONS / HTTP/1.0\r\n\r\n');
  expect(options).toMatch(/^HTTP\/1\.1 503 /);
  // Back up on their ports: ok again.
  a = await startOrigin(handler, a.port);
  b = await startOrigin(handler, b.port);
  await until(edge, 'ok', 3000);
});

it('says draining (503) while a SIGTERM drains in-flight requests', async () => {
  const slow = request(edge.port, '/slow');
  await sleep(200);
  const stopped = edge.stop();
  // Asked while one worker has exited and the other still finishes the request: answered without the first.
  await until(edge, 'draining', 1000);
  expect((await health(edge)).code).toBe(503);
  expect((await slow).body.toString()).toBe('slow done');
  expect(await stopped).toBe(0);
});
