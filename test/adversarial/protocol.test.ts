// Protocol abuse against the edge, sent as raw bytes where the HTTP layer matters. Each case states the
// attack and what the edge must do: answer with a clear status and close cleanly, never forward an odd
// request shape to the origin as something else, never hold a connection or an origin request for a
// client that does not finish its request.
import net from 'node:net';
import { Registry } from 'prom-client';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import type { EdgeOptions } from '../../src/edge/options';
import { rawRequest, request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

let origin: TestOrigin;
/** Bodies the origin finished reading, and origin requests that ended before their response was done. */
let uploadsCompleted = 0;
let originRequestsAborted = 0;
let rawOrigin: net.Server;
let rawOriginPort = 0;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    if (req.url?.startsWith('/upload')) {
      req.on('data', () => {});
      req.on('end', () => {
        uploadsCompleted++;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('uploaded');
      });
      return;
    }
    if (req.url?.startsWith('/slow-pass')) {
      // Answers after 3 s, unless the edge gives up on it first.
      const t = setTimeout(() => res.end('late'), 3000);
      res.on('close', () => {
        clearTimeout(t);
        if (!res.writableFinished) originRequestsAborted++;
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
    res.end(`page for host=${req.headers.host}`);
  });
  // An origin that answers with a transfer coding nobody can decode.
  rawOrigin = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: max-age=60\r\nTransfer-Encoding: foo\r\n\r\nunframed body'));
  });
  await new Promise<void>((r) => rawOrigin.listen(0, '127.0.0.1', r));
  rawOriginPort = (rawOrigin.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await origin.close();
  await new Promise<void>((r) => rawOrigin.close(() => r()));
});

const edges: EdgeServer[] = [];
afterEach(async () => {
  await Promise.all(edges.splice(0).map((e) => e.close()));
});
let seq = 0;
async function edgeWith(extra: EdgeOptions = {}): Promise<{ edge: EdgeServer; port: number }> {
  seq++;
  const edge = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: `proto${seq}:`, ...extra }, { registry: new Registry() });
  edges.push(edge);
  return { edge, port: await edge.listen() };
}

function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

/** Opens a connection and resolves when the edge closes it (or after limitMs), with what it sent. */
function heldFor(socket: net.Socket, limitMs: number): Promise<{ closedAfterMs: number; text: string }> {
  const t0 = Date.now();
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ closedAfterMs: Infinity, text }), limitMs);
    socket.once('close', () => {
      clearTimeout(t);
      resolve({ closedAfterMs: Date.now() - t0, text });
    });
  });
}

describe('Host header forms (RFC 3986 authority: host [":" port] only)', () => {
  it.each([
    ['userinfo smuggled before the host', 'site.test:80@evil.test'],
    ['userinfo', 'user@site.test'],
    ['a port out of range', 'site.test:99999999'],
    ['port 0', 'site.test:0'],
    ['two ports', 'site.test:80:81'],
    ['a bad percent escape', 'site%zz.test'],
    ['a quote', 'site"test'],
  ])('%s (%s): 400, and nothing reaches the origin', async (_what, host) => {
    const { port } = await edgeWith();
    const before = origin.total();
    const raw = await rawRequest(port, `GET /host-forms HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(raw)).toBe(400);
    expect(origin.total()).toBe(before);
  });

  it('an ordinary Host with a port is still served (control)', async () => {
    const { port } = await edgeWith();
    const raw = await rawRequest(port, 'GET /host-ok HTTP/1.1\r\nHost: Site.Test:8080\r\nConnection: close\r\n\r\n');
    expect(statusOf(raw)).toBe(200);
    expect(raw).toContain('page for host=site.test');
  });
});

describe('methods and Connection', () => {
  it('CONNECT (a tunnel through the edge: an open proxy) is answered 405 and the connection closed', async () => {
    const { port } = await edgeWith();
    const before = origin.total();
    const s = net.connect(port, '127.0.0.1');
    const held = heldFor(s, 3000);
    s.write('CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n');
    const { closedAfterMs, text } = await held;
    expect(statusOf(text)).toBe(405);
    expect(text).toMatch(/\r\nAllow: GET, HEAD/);
    expect(closedAfterMs).toBeLessThan(3000);
    expect(origin.total()).toBe(before);
  });

  it.each([['Host'], ['Content-Length'], ['keep-alive, Transfer-Encoding']])(
    'Connection: %s (asks a proxy to drop a header the message needs end to end) is answered 400',
    async (value) => {
      const { port } = await edgeWith();
      const before = origin.total();
      const raw = await rawRequest(port, `GET /conn HTTP/1.1\r\nHost: site.test\r\nConnection: ${value}\r\n\r\n`);
      expect(statusOf(raw)).toBe(400);
      expect(raw).toContain('Connection may not name');
      expect(origin.total()).toBe(before);
    },
  );

  it('Connection naming an ordinary header is honoured, not refused (control)', async () => {
    const { port } = await edgeWith();
    const raw = await rawRequest(port, 'GET /conn-ok HTTP/1.1\r\nHost: site.test\r\nConnection: close, X-Debug\r\nX-Debug: 1\r\n\r\n');
    expect(statusOf(raw)).toBe(200);
  });
});

describe('request smuggling shapes (RFC 9112 §6): refused with 400 and closed, never forwarded', () => {
  it.each([
    ['Content-Length and Transfer-Encoding together', 'POST /smuggle HTTP/1.1\r\nHost: site.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: site.test\r\n\r\n'],
    ['two different Content-Lengths', 'POST /smuggle HTTP/1.1\r\nHost: site.test\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd'],
    ['an obs-folded header line', 'GET /smuggle HTTP/1.1\r\nHost: site.test\r\nX-Folded: a\r\n b\r\n\r\n'],
    ['a chunk size that is not hex', 'POST /smuggle HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['Transfer-Encoding other than chunked on a request', 'POST /smuggle HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: gzip\r\n\r\nabc'],
    ['a bare LF inside a header value', 'GET /smuggle HTTP/1.1\r\nHost: site.test\r\nX-A: 1\nX-Injected: 1\r\n\r\n'],
    ['a space before the colon', 'GET /smuggle HTTP/1.1\r\nHost: site.test\r\nContent-Length : 5\r\n\r\nabcde'],
  ])('%s', async (_what, bytes) => {
    const { port } = await edgeWith();
    const before = origin.total();
    const raw = await rawRequest(port, bytes);
    expect(statusOf(raw)).toBe(400);
    expect(raw).not.toMatch(/HTTP\/1\.1 200/);
    expect(origin.total()).toBe(before);
  });

  it('an oversize request head gets 431', async () => {
    const { port } = await edgeWith({ maxHeaderBytes: '8k' });
    const raw = await rawRequest(port, `GET /big-head HTTP/1.1\r\nHost: site.test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(statusOf(raw)).toBe(431);
  });
});

describe('slow clients', () => {
  it('slowloris: connections dribbling a request head are closed at --client-header-timeout with 408, while hits stay fast', async () => {
    const { port } = await edgeWith({ clientHeaderTimeoutMs: 1000 });
    await request(port, '/warm', { host: 'site.test' });
    const sockets = Array.from({ length: 20 }, () => net.connect(port, '127.0.0.1'));
    const held = sockets.map((s) => heldFor(s, 6000));
    // One header byte every 100 ms: the idle sweep sees bytes moving, only the head deadline ends this.
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write('X');
    }, 100);
    for (const s of sockets) s.write('GET /slow HTTP/1.1\r\nHost: site.test\r\nX-Slow: ');
    try {
      // Meanwhile an ordinary client gets its hit at once.
      const t0 = Date.now();
      const hit = await request(port, '/warm', { host: 'site.test' });
      expect(hit.headers['x-cache']).toBe('HIT');
      expect(Date.now() - t0).toBeLessThan(500);
      const results = await Promise.all(held);
      for (const r of results) {
        // Closed within the deadline plus Node's check interval (a quarter of it), not held for long.
        expect(r.closedAfterMs).toBeLessThan(2500);
        expect(r.closedAfterMs).toBeGreaterThanOrEqual(900);
        expect(statusOf(r.text)).toBe(408);
      }
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
  });

  it('a request body sent at 10 bytes/s gets 408 at --client-body-timeout and its origin request is aborted', async () => {
    const { port } = await edgeWith({ clientBodyTimeoutMs: 1000 });
    const completedBefore = uploadsCompleted;
    const s = net.connect(port, '127.0.0.1');
    const held = heldFor(s, 5000);
    s.write('POST /upload HTTP/1.1\r\nHost: site.test\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n');
    const drip = setInterval(() => {
      if (!s.destroyed) s.write('x');
    }, 100);
    try {
      const { closedAfterMs, text } = await held;
      expect(statusOf(text)).toBe(408);
      expect(closedAfterMs).toBeLessThan(2500);
      expect(uploadsCompleted).toBe(completedBefore);
    } finally {
      clearInterval(drip);
      s.destroy();
    }
  });

  it('a whole body sent promptly is forwarded (control)', async () => {
    const { port } = await edgeWith({ clientBodyTimeoutMs: 1000 });
    const r = await request(port, '/upload', { method: 'POST', host: 'site.test', body: 'x'.repeat(5000) });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('uploaded');
  });

  it('a client that goes away during a pass aborts its origin request (nothing left running for nobody)', async () => {
    const { port } = await edgeWith();
    const abortedBefore = originRequestsAborted;
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    // Authorization makes it a pass: nobody else waits for this response.
    s.write('GET /slow-pass HTTP/1.1\r\nHost: site.test\r\nAuthorization: Bearer x\r\n\r\n');
    await sleep(300);
    s.destroy();
    const t0 = Date.now();
    while (originRequestsAborted === abortedBefore && Date.now() - t0 < 2000) await sleep(25);
    expect(originRequestsAborted).toBe(abortedBefore + 1);
  });
});

describe('malformed origins', () => {
  it('an origin response with Transfer-Encoding: foo cannot be framed: 502, and nothing is stored', async () => {
    seq++;
    const edge = createEdgeServer(
      { origin: `http://127.0.0.1:${rawOriginPort}`, port: 0, host: '127.0.0.1', keyPrefix: `proto${seq}:`, staleIfError: 0 },
      { registry: new Registry() },
    );
    edges.push(edge);
    const port = await edge.listen();
    const first = await request(port, '/te-foo', { host: 'site.test' });
    expect(first.status).toBe(502);
    expect(first.body.toString()).not.toContain('unframed body');
    const second = await request(port, '/te-foo', { host: 'site.test' });
    expect(second.status).toBe(502);
    expect(second.headers['x-cache']).not.toBe('HIT');
  });
});
