// A miss streams (issue 17): the client that caused a fill gets the page as it comes from the origin, while
// the edge collects it to store, so storing never delays its first byte (nginx's proxy_cache and Varnish
// do the same). The origin here sends its head and first part, then holds the rest until the test lets it
// go: the client must have the first part before the origin finishes. Requests that join the fill get the
// whole page from the one origin request; a body the origin cuts mid-way is never stored and the client
// that was streaming sees a cut response, not a short page passed off as complete.
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

const FIRST = Buffer.from(`<!doctype html><title>streamed</title>${'<p>first part of the page</p>\n'.repeat(200)}`);
const REST = Buffer.from(`${'<p>the rest, sent once the test lets it go</p>\n'.repeat(200)}</html>`);
const WHOLE = Buffer.concat([FIRST, REST]);
/** A page large enough to be compressed on the thread pool (over 32 KiB), which takes a while after its last byte arrives. */
const BIG_REST = Buffer.from(`${Array.from({ length: 6000 }, (_, i) => `<p>paragraph ${i}: ${(i * 7919).toString(36)}</p>`).join('\n')}</html>`);
const BIG = Buffer.concat([FIRST, BIG_REST]);

let mc: MemcachedProcess;
let origin: TestOrigin;
let edge: EdgeServer;
let port: number;
/** Origin requests per path. */
const seen = new Map<string, number>();
/** Lets the held response of a path finish ('end') or breaks it ('cut'). */
const release = new Map<string, (how: 'end' | 'cut') => void>();

beforeAll(async () => {
  mc = await startMemcached();
  origin = await startOrigin((req, res) => {
    const path = req.url ?? '/';
    seen.set(path, (seen.get(path) ?? 0) + 1);
    if (path.startsWith('/whole')) {
      // Sent in one write: the body is all there when its head is.
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=300', 'content-length': String(FIRST.length) });
      res.end(FIRST);
      return;
    }
    const chunked = path.includes('chunked');
    const rest = path.includes('big') ? BIG_REST : REST;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'max-age=300',
      ...(chunked ? {} : { 'content-length': String(FIRST.length + rest.length) }),
    });
    res.write(FIRST);
    release.set(path, (how) => {
      if (how === 'cut') res.socket?.destroy();
      else res.end(rest);
    });
  });
  edge = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1', memcached: mc.address, keyPrefix: `stream-${Date.now()}:` }, { registry: new Registry() });
  port = await edge.listen();
});

afterAll(async () => {
  for (const r of release.values()) r('cut');
  await edge?.close();
  await origin?.close();
  await mc?.stop();
});

interface Streamed {
  readonly res: http.IncomingMessage;
  /** Resolves with the bytes received so far once at least `n` have arrived. */
  atLeast(n: number): Promise<Buffer>;
  /** The whole body, or the error the response ended with. */
  readonly done: Promise<Buffer>;
}

function open(path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host: 'example.com', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const waiters: { n: number; resolve: (b: Buffer) => void }[] = [];
      const done = new Promise<Buffer>((ok, fail) => {
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          size += c.length;
          for (const w of waiters.splice(0)) {
            if (size >= w.n) w.resolve(Buffer.concat(chunks));
            else waiters.push(w);
          }
        });
        res.on('end', () => ok(Buffer.concat(chunks)));
        res.on('aborted', () => fail(new Error('aborted')));
        res.on('error', fail);
      });
      done.catch(() => undefined);
      resolve({
        res,
        done,
        atLeast: (n) => (size >= n ? Promise.resolve(Buffer.concat(chunks)) : new Promise((r) => waiters.push({ n, resolve: r }))),
      });
    });
    req.on('error', reject);
  });
}

async function originHolding(path: string): Promise<void> {
  const t0 = Date.now();
  while (!release.has(path)) {
    if (Date.now() - t0 > 5000) throw new Error(`the origin never got ${path}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

it('sends the first part of a miss before the origin has finished, then stores the whole page', async () => {
  const path = '/article/held';
  const client = await open(path, { 'accept-encoding': 'gzip' });
  expect(client.res.statusCode).toBe(200);
  expect(client.res.headers['x-cache']).toBe('MISS');
  // The head the stored page will have, as it streams: the origin's length, and Vary for the gzip copy.
  expect(client.res.headers['content-length']).toBe(String(WHOLE.length));
  expect(client.res.headers['vary']).toMatch(/accept-encoding/i);
  expect(client.res.headers['content-encoding']).toBeUndefined();
  await originHolding(path);
  // Only the page's very last byte waits for it to be stored (the last test below).
  const early = await client.atLeast(FIRST.length);
  expect(early.equals(FIRST)).toBe(true);
  release.get(path)!('end');
  expect((await client.done).equals(WHOLE)).toBe(true);

  // Stored whole: later clients get it from the cache, each in its coding, and the origin saw one request.
  let hit = await request(port, path, { headers: { 'accept-encoding': 'gzip' } });
  for (let i = 0; i < 50 && hit.headers['x-cache'] !== 'HIT'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    hit = await request(port, path, { headers: { 'accept-encoding': 'gzip' } });
  }
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.headers['content-encoding']).toBe('gzip');
  expect(gunzipSync(hit.body).equals(WHOLE)).toBe(true);
  const identity = await request(port, path);
  expect(identity.headers['x-cache']).toBe('HIT');
  expect(identity.body.equals(WHOLE)).toBe(true);
  expect(seen.get(path)).toBe(1);
});

it('streams a page sent without a Content-Length (chunked) the same way', async () => {
  const path = '/article/held-chunked';
  const client = await open(path);
  expect(client.res.headers['x-cache']).toBe('MISS');
  expect(client.res.headers['content-length']).toBeUndefined();
  await originHolding(path);
  // A chunked response holds back only its last chunk, which end() sends once the page is stored.
  expect((await client.atLeast(FIRST.length)).equals(FIRST)).toBe(true);
  release.get(path)!('end');
  expect((await client.done).equals(WHOLE)).toBe(true);
  const hit = await request(port, path);
  expect(hit.body.equals(WHOLE)).toBe(true);
  expect(seen.get(path)).toBe(1);
});

it('requests that join the fill while it streams get the whole page from the same origin request', async () => {
  const path = '/article/held-joined';
  const leader = await open(path);
  await originHolding(path);
  await leader.atLeast(FIRST.length);
  const joined = Promise.all([request(port, path), request(port, path, { headers: { 'accept-encoding': 'gzip' } })]);
  await new Promise((r) => setTimeout(r, 50));
  release.get(path)!('end');
  expect((await leader.done).equals(WHOLE)).toBe(true);
  const [plain, gzip] = await joined;
  expect(plain.body.equals(WHOLE)).toBe(true);
  expect(gunzipSync(gzip.body).equals(WHOLE)).toBe(true);
  expect(seen.get(path)).toBe(1);
});

it('a body the origin cuts mid-way reaches the streaming client as a cut response and is never stored', async () => {
  const path = '/article/held-cut';
  const client = await open(path);
  await originHolding(path);
  await client.atLeast(FIRST.length);
  release.get(path)!('cut');
  await expect(client.done).rejects.toThrow();
  release.delete(path);
  // Not stored: the next request goes to the origin again.
  const next = await open(path);
  expect(next.res.headers['x-cache']).toBe('MISS');
  await originHolding(path);
  release.get(path)!('end');
  expect((await next.done).equals(WHOLE)).toBe(true);
  expect(seen.get(path)).toBe(2);
});

it('a conditional or range request on a miss is answered from the stored page, not streamed', async () => {
  const path = '/article/held-range';
  const pending = request(port, path, { headers: { range: 'bytes=0-9' } });
  await originHolding(path);
  release.get(path)!('end');
  const r = await pending;
  expect(r.status).toBe(206);
  expect(r.headers['content-range']).toBe(`bytes 0-9/${WHOLE.length}`);
  expect(r.body.equals(WHOLE.subarray(0, 10))).toBe(true);
});

it('a page that arrives whole goes to a client taking gzip compressed, as every hit after it', async () => {
  const r = await request(port, '/whole', { headers: { 'accept-encoding': 'gzip' } });
  expect(r.headers['x-cache']).toBe('MISS');
  expect(r.headers['content-encoding']).toBe('gzip');
  expect(gunzipSync(r.body).equals(FIRST)).toBe(true);
  const identity = await request(port, '/whole-identity');
  expect(identity.headers['x-cache']).toBe('MISS');
  expect(identity.headers['content-encoding']).toBeUndefined();
  expect(identity.headers['content-length']).toBe(String(FIRST.length));
  expect(identity.body.equals(FIRST)).toBe(true);
});

it('the request sent as soon as a streamed miss is complete finds the page stored (its last byte waits for the store)', async () => {
  const path = '/article/held-big';
  const client = await open(path);
  await originHolding(path);
  release.get(path)!('end');
  expect((await client.done).equals(BIG)).toBe(true);
  // At once, with no pause: the page was stored (compressed on the thread pool) before the client had it all.
  const next = await request(port, path, { headers: { 'accept-encoding': 'gzip' } });
  expect(next.headers['x-cache']).toBe('HIT');
  expect(gunzipSync(next.body).equals(BIG)).toBe(true);
  expect(seen.get(path)).toBe(1);
});
