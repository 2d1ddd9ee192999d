// Shielding the origin: coalescing across two edge processes, stale-while-revalidate, stale-if-error
// with the origin killed, and compression stored once and served to every kind of client.
import http from 'node:http';
import zlib from 'node:zlib';
import { startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

let mc: MemcachedProcess;
let origin: TestOrigin;
let version = 1;
const BIG_TEXT = Buffer.from(Array.from({ length: 2000 }, (_, i) => `<p>line ${i} of a long article</p>`).join('\n'));
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(5000, 7)]);

beforeAll(async () => {
  mc = await startMemcached();
  origin = await startOrigin((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/cold')) {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=300' });
        res.end(`cold page ${url}`);
      }, 300);
    } else if (url.startsWith('/session')) {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'sid=new', 'cache-control': 'max-age=300' });
        res.end('personal page');
      }, 250);
    } else if (url.startsWith('/swr')) {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=1, stale-while-revalidate=30' });
        res.end(`swr v${version}`);
      }, 400);
    } else if (url.startsWith('/article')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=300', etag: '"a1"' });
      res.end(BIG_TEXT);
    } else if (url.startsWith('/image')) {
      res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=300' });
      res.end(PNG);
    } else {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=1, stale-if-error=300' });
      res.end(`page ${url}`);
    }
  });
});

afterAll(async () => {
  await origin?.close();
  await mc?.stop();
});

function get(port: number, path: string, agent: http.Agent, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; xcache: string; body: Buffer; ms: number; headers: http.IncomingHttpHeaders }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent, headers: { host: 'example.com', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, xcache: String(res.headers['x-cache']), body: Buffer.concat(chunks), ms: performance.now() - t0, headers: res.headers }),
        );
      })
      .on('error', reject);
  });
}

describe('two edge processes sharing memcached', () => {
  let e1: EdgeProcess;
  let e2: EdgeProcess;
  beforeAll(async () => {
    const flags = ['--origin', origin.url, '--memcached', mc.address, '--key-prefix', `shield${Date.now()}:`];
    [e1, e2] = await Promise.all([startEdge(flags), startEdge(flags)]);
  });
  afterAll(async () => {
    await Promise.all([e1?.stop(), e2?.stop()]);
  });

  it('500 concurrent requests for a cold page reach the origin exactly once', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
    try {
      const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => get(i % 2 === 0 ? e1.port : e2.port, '/cold/herd', agent)));
      expect(replies.every((r) => r.status === 200 && r.body.toString() === 'cold page /cold/herd')).toBe(true);
      expect(origin.hits('/cold/herd')).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('does not queue requests for an uncacheable page behind the fill lock (hit-for-miss)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
    try {
      // The first round finds out the page sets a cookie; the lock is left marked "uncacheable".
      await Promise.all(Array.from({ length: 4 }, (_, i) => get(i % 2 === 0 ? e1.port : e2.port, '/session', agent)));
      const round = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2 === 0 ? e1.port : e2.port, '/session', agent)));
      expect(round.every((r) => r.status === 200 && r.headers['set-cookie']?.[0] === 'sid=new')).toBe(true);
      // The origin takes 250 ms: both edges fetch in parallel instead of one waiting for the other's lock.
      expect(Math.max(...round.map((r) => r.ms))).toBeLessThan(450);
    } finally {
      agent.destroy();
    }
  });

  it('serves a stale page at once while one refresh runs (stale-while-revalidate)', async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      version = 1;
      expect((await get(e1.port, '/swr', agent)).body.toString()).toBe('swr v1');
      await sleep(1100);
      version = 2;
      const during = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2 === 0 ? e1.port : e2.port, '/swr', agent)));
      for (const r of during) {
        expect(r.xcache).toBe('UPDATING');
        expect(r.body.toString()).toBe('swr v1');
      }
      // The origin takes 400 ms; stale answers do not wait for it.
      expect(Math.max(...during.map((r) => r.ms))).toBeLessThan(250);
      for (let i = 0; i < 40 && origin.hits('/swr') < 2; i++) await sleep(50);
      await sleep(700); // the refresh's origin request takes 400 ms, then the store

      // One refresh for 20 stale answers on two edges.
      expect(origin.hits('/swr')).toBe(2);
      const after = await get(e2.port, '/swr', agent);
      expect(after.body.toString()).toBe('swr v2');
    } finally {
      agent.destroy();
    }
  });
});

describe('one edge', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge(['--origin', origin.url, '--key-prefix', `shield1-${Date.now()}:`, '--origin-timeout', '1000']);
  });
  afterAll(() => edge?.stop());

  it('compresses a text page once; gzip and identity clients get identical decoded bodies', async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      // The miss streams the origin's bytes (a 70 KB page arrives in parts), stored compressed meanwhile.
      const miss = await get(edge.port, '/article', agent, { 'accept-encoding': 'gzip, deflate, br' });
      expect(miss.xcache).toBe('MISS');
      expect(miss.headers['content-encoding']).toBeUndefined();
      expect(miss.headers.vary).toMatch(/Accept-Encoding/);
      expect(miss.body.equals(BIG_TEXT)).toBe(true);
      // Stored once compressed (a request before that joins the fill and gets the page from it).
      let gz = await get(edge.port, '/article', agent, { 'accept-encoding': 'gzip, deflate, br' });
      for (let i = 0; i < 50 && gz.xcache !== 'HIT'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        gz = await get(edge.port, '/article', agent, { 'accept-encoding': 'gzip, deflate, br' });
      }
      expect(gz.xcache).toBe('HIT');
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(gz.headers.vary).toMatch(/Accept-Encoding/);
      expect(gz.headers.etag).toBe('W/"a1"');
      expect(gz.body.length).toBeLessThan(BIG_TEXT.length / 3);
      expect(zlib.gunzipSync(gz.body).equals(BIG_TEXT)).toBe(true);
      const plain = await get(edge.port, '/article', agent);
      expect(plain.xcache).toBe('HIT');
      expect(plain.headers['content-encoding']).toBeUndefined();
      // Decoded once into a copy kept beside the entry (src/core/decoded.ts), so its length is known.
      expect(plain.headers['content-length']).toBe(String(BIG_TEXT.length));
      expect(plain.headers['transfer-encoding']).toBeUndefined();
      expect(plain.body.equals(BIG_TEXT)).toBe(true);
      const gzHit = await get(edge.port, '/article', agent, { 'accept-encoding': 'gzip' });
      expect(gzHit.xcache).toBe('HIT');
      expect(zlib.gunzipSync(gzHit.body).equals(BIG_TEXT)).toBe(true);
      expect(origin.hits('/article')).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('leaves already-compressed types and small bodies alone', async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      const img = await get(edge.port, '/image', agent, { 'accept-encoding': 'gzip' });
      expect(img.headers['content-encoding']).toBeUndefined();
      expect(img.body.equals(PNG)).toBe(true);
      const small = await get(edge.port, '/small', agent, { 'accept-encoding': 'gzip' });
      expect(small.headers['content-encoding']).toBeUndefined();
    } finally {
      agent.destroy();
    }
  });

  it('with the origin killed, keeps serving stale pages and answers 502 quickly for uncached ones', async () => {
    const agent = new http.Agent({ keepAlive: true });
    await get(edge.port, '/page-a', agent);
    await get(edge.port, '/page-b', agent);
    await sleep(1100); // past max-age=1, inside stale-if-error=300
    await origin.close();
    try {
      for (let i = 0; i < 10; i++) {
        const a = await get(edge.port, '/page-a', agent);
        expect(a.status).toBe(200);
        expect(a.xcache).toBe('STALE');
        expect(a.body.toString()).toBe('page /page-a');
      }
      const t0 = Date.now();
      const cold = await get(edge.port, '/never-seen', agent);
      expect(cold.status).toBe(502);
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      agent.destroy();
    }
  });
});
