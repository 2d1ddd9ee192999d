// Origin faults: timeouts give 504, unreachable origins 502, quickly and never a hang; a stale entry
// stands in for both (stale-if-error); a client that goes away mid-body breaks nothing.
import http from 'node:http';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createEdgeServer } from '../../src/edge/server';
import type { CreateEdgeServerExtras, EdgeServer } from '../../src/edge/server';
import type { EdgeOptions } from '../../src/edge/options';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { freePort, sleep } from '../helpers/ports';

let mode: 'ok' | 'hang' | 'error500' | 'reset' = 'ok';
const BIG = Buffer.alloc(24 * 1024 * 1024, 'b');
let origin: TestOrigin;
let seq = 0;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    if (mode === 'hang') return; // never answers
    if (mode === 'reset') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    if (mode === 'error500') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('origin broke');
      return;
    }
    if (req.url?.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60' });
      res.end(BIG);
      return;
    }
    if (req.url?.startsWith('/stream')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      const timer = setInterval(() => res.write('x'.repeat(1024)), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1, stale-if-error=60' });
    res.end(`fresh ${req.url}`);
  });
});
afterAll(() => origin.close());
afterEach(() => {
  mode = 'ok';
});

async function edgeWith(
  extra: EdgeOptions = {},
  limits: Pick<CreateEdgeServerExtras, 'idleTimeoutMs'> = {},
): Promise<{ edge: EdgeServer; port: number; registry: Registry }> {
  seq++;
  const registry = new Registry();
  const edge = createEdgeServer(
    { origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: `faults${seq}:`, originTimeoutMs: 300, ...extra },
    { registry, ...limits },
  );
  return { edge, port: await edge.listen(), registry };
}

it('answers 504 when the origin does not answer in time, without hanging', async () => {
  const { edge, port } = await edgeWith();
  try {
    mode = 'hang';
    const t0 = Date.now();
    const r = await request(port, '/hang');
    expect(r.status).toBe(504);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(Date.now() - t0).toBeLessThan(2000);
    // Not cached: once the origin answers again, so does the edge.
    mode = 'ok';
    expect((await request(port, '/hang')).status).toBe(200);
  } finally {
    await edge.close();
  }
});

it('answers 502 at once when no origin is reachable', async () => {
  const deadPort = await freePort();
  seq++;
  const edge = createEdgeServer({ origin: `http://127.0.0.1:${deadPort}`, port: 0, host: '127.0.0.1' }, { registry: new Registry() });
  const port = await edge.listen();
  try {
    const t0 = Date.now();
    const r = await request(port, '/x');
    expect(r.status).toBe(502);
    expect(r.body.toString()).toContain('Bad Gateway');
    expect(Date.now() - t0).toBeLessThan(1000);
    const post = await request(port, '/x', { method: 'POST', body: 'data' });
    expect(post.status).toBe(502);
  } finally {
    await edge.close();
  }
});

it.each([
  ['times out', 'hang'],
  ['answers 500', 'error500'],
] as const)('serves STALE within stale-if-error when the origin %s', async (_label, failure) => {
  const { edge, port } = await edgeWith();
  try {
    const path = `/stale-${failure}`;
    expect((await request(port, path)).headers['x-cache']).toBe('MISS');
    await sleep(1100); // past max-age=1
    mode = failure;
    const r = await request(port, path);
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('STALE');
    expect(r.headers['cache-status']).toBe('edge-page-cache; hit; detail=stale-if-error');
    expect(r.body.toString()).toBe(`fresh ${path}`);
    expect(Number(r.headers.age)).toBeGreaterThanOrEqual(1);
  } finally {
    await edge.close();
  }
});

it('goes back to the origin for an expired entry and says EXPIRED', async () => {
  const { edge, port } = await edgeWith();
  try {
    await request(port, '/exp');
    await sleep(1100);
    const r = await request(port, '/exp');
    expect(r.headers['x-cache']).toBe('EXPIRED');
    expect(origin.hits('/exp')).toBe(2);
  } finally {
    await edge.close();
  }
});

it('cuts the response of the client a fill streams to when the origin resets mid-body; nothing is stored', async () => {
  const { edge, port } = await edgeWith();
  try {
    mode = 'reset';
    // The head and first bytes went out as they came (a miss streams): the client sees a cut response,
    // never a short page passed off as whole.
    await expect(request(port, '/reset-fill')).rejects.toThrow();
    mode = 'ok';
    const next = await request(port, '/reset-fill');
    expect(next.status).toBe(200);
    expect(next.headers['x-cache']).toBe('MISS');
  } finally {
    await edge.close();
  }
});

it('cuts the client connection when the origin resets mid-body while streaming a pass, and stays up', async () => {
  const { edge, port } = await edgeWith();
  try {
    mode = 'reset';
    const outcome = await new Promise<string>((resolve) => {
      http
        .get({ host: '127.0.0.1', port, path: '/reset', headers: { host: 'example.com', authorization: 'Bearer x' } }, (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('end'));
          res.on('error', () => resolve('error'));
          res.on('aborted', () => resolve('aborted'));
        })
        .on('error', () => resolve('error'));
    });
    expect(['aborted', 'error']).toContain(outcome);
    mode = 'ok';
    expect((await request(port, '/after-reset')).status).toBe(200);
  } finally {
    await edge.close();
  }
});

it('survives a client that goes away mid-delivery', async () => {
  const { edge, port } = await edgeWith();
  try {
    await new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/stream', headers: { host: 'example.com' } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
    });
    await sleep(100);
    expect((await request(port, '/after-abort')).status).toBe(200);
  } finally {
    await edge.close();
  }
});

it('an active health probe marks a failing origin down and sends traffic to the healthy one', async () => {
  let sick = false;
  const a = await startOrigin((req, res) => {
    if (req.url === '/health') {
      res.writeHead(sick ? 503 : 200);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end('from a');
  });
  const b = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(req.url === '/health' ? '' : 'from b');
  });
  seq++;
  const edge = createEdgeServer(
    { origin: [a.url, b.url], port: 0, host: '127.0.0.1', originHealthPath: '/health', originHealthIntervalMs: 50, originMaxFails: 1, originFailTimeoutMs: 60000 },
    { registry: new Registry() },
  );
  const port = await edge.listen();
  try {
    const before = new Set<string>();
    for (let i = 0; i < 6; i++) before.add((await request(port, `/x${i}`)).body.toString());
    expect(before).toEqual(new Set(['from a', 'from b']));
    sick = true;
    await sleep(300);
    expect(edge.health().origins.find((o) => o.url === a.url)?.up).toBe(false);
    for (let i = 0; i < 6; i++) expect((await request(port, `/y${i}`)).body.toString()).toBe('from b');
  } finally {
    await edge.close();
    await a.close();
    await b.close();
  }
});

/** A raw client connection: what it received, and when (ms after connecting) the edge closed it. */
function rawClient(port: number): { socket: net.Socket; received: () => string; closedAfter: Promise<number> } {
  const t0 = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  return { socket, received: () => text, closedAfter: new Promise((r) => socket.once('close', () => r(Date.now() - t0))) };
}

it('closes a client connection that sends nothing for the idle timeout, and keeps one that trickles', async () => {
  const { edge, port } = await edgeWith({}, { idleTimeoutMs: 400 });
  try {
    // Stalls in the middle of its headers (well inside the 20 s headers timeout): closed by the idle sweep.
    const stalled = rawClient(port);
    stalled.socket.write('GET /stalled HTTP/1.1\r\nHost: exa');
    const after = await stalled.closedAfter;
    expect(after).toBeGreaterThanOrEqual(350);
    expect(after).toBeLessThan(3000);
    // A byte every 100 ms for three idle timeouts: always moving, so it completes.
    const slow = rawClient(port);
    const head = 'GET /trickle HTTP/1.1\r\nHost: example.com\r\nX-Slow: ' + 'a'.repeat(12) + '\r\nConnection: close\r\n\r\n';
    const cut = head.length - 4;
    for (let i = 0; i < cut; i++) {
      slow.socket.write(head[i]!);
      if (i >= cut - 12) await sleep(100);
    }
    slow.socket.write(head.slice(cut));
    await slow.closedAfter;
    expect(slow.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(slow.received()).toContain('fresh /trickle');
  } finally {
    await edge.close();
  }
});

it('announces the keep-alive timeout; a drain answers every pipelined request and only the newest says close', async () => {
  const { edge, port } = await edgeWith({ keepAliveTimeoutMs: 65_000 });
  const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: example.com\r\n\r\n`;
  const responses = (text: string): string[] => text.split(/(?=HTTP\/1\.1 \d{3} )/).filter((r) => r !== '');
  let closing: Promise<void> | undefined;
  try {
    const kept = rawClient(port);
    kept.socket.write(get('/hint'));
    while (!kept.received().includes('fresh /hint')) await sleep(10);
    expect(kept.received()).toMatch(/\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n/i);
    // Three pipelined requests in progress when the drain starts (the origin holds them until 504).
    const before = rawClient(port);
    mode = 'hang';
    before.socket.write(get('/p1') + get('/p2') + get('/p3'));
    await sleep(100);
    mode = 'ok';
    closing = edge.close();
    // Three pipelined on a kept-alive connection after it started.
    kept.socket.write(get('/q1') + get('/q2') + get('/q3'));
    await Promise.all([before.closedAfter, kept.closedAfter]);
    expect(responses(before.received()).map((r) => r.slice(0, 12))).toEqual(['HTTP/1.1 504', 'HTTP/1.1 504', 'HTTP/1.1 504']);
    const after = responses(kept.received()).slice(1);
    expect(after.map((r) => /fresh \/q\d/.exec(r)?.[0])).toEqual(['fresh /q1', 'fresh /q2', 'fresh /q3']);
    expect(after.map((r) => /\r\nConnection: (\S+)\r\n/i.exec(r)?.[1])).toEqual(['keep-alive', 'keep-alive', 'close']);
    expect(after[2]).not.toMatch(/\r\nKeep-Alive:/i);
  } finally {
    await (closing ?? edge.close());
  }
});

it('closes a kept-alive connection waiting for its next request after the keep-alive timeout, and no other', async () => {
  const { edge, port } = await edgeWith({ originTimeoutMs: 1500, keepAliveTimeoutMs: 400 });
  try {
    const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: example.com\r\n\r\n`;
    // Answered, then quiet: closed between the timeout and a quarter of it later (the sweep's step).
    const kept = rawClient(port);
    kept.socket.write(get('/ka1'));
    const fresh = rawClient(port); // connected, never sends a byte: left to the headers and idle timeouts
    let closedFresh = false;
    void fresh.closedAfter.then(() => (closedFresh = true));
    while (!kept.received().includes('fresh /ka1')) await sleep(10);
    const answeredAt = Date.now();
    await kept.closedAfter;
    const quiet = Date.now() - answeredAt;
    expect(quiet).toBeGreaterThanOrEqual(380);
    expect(quiet).toBeLessThan(1500);
    expect(kept.received()).toMatch(/^HTTP\/1\.1 200 /);
    // A second request in time keeps the connection: it is answered after three timeouts of requests.
    const busy = rawClient(port);
    for (let i = 0; i < 4; i++) {
      busy.socket.write(get(`/ka-next${i}`));
      while (!busy.received().includes(`fresh /ka-next${i}`)) await sleep(10);
      await sleep(300);
    }
    // A request waiting on a silent origin for 3 timeouts is not cut: it has a response in progress (504).
    mode = 'hang';
    const waiting = rawClient(port);
    waiting.socket.write(get('/ka-slow'));
    await sleep(100);
    mode = 'ok';
    await waiting.closedAfter;
    expect(waiting.received()).toMatch(/^HTTP\/1\.1 504 /);
    expect(closedFresh).toBe(false);
    fresh.socket.destroy();
    busy.socket.destroy();
  } finally {
    await edge.close();
  }
});

it('keeps a slow reader of a large cached page while the kernel takes bytes, and closes one that stops reading', async () => {
  const { edge, port } = await edgeWith({ maxEntryBytes: 32 * 1024 * 1024, memoryBytes: 256 * 1024 * 1024 }, { idleTimeoutMs: 400 });
  try {
    expect((await request(port, '/big')).body.length).toBe(BIG.length);
    const head = 'GET /big HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n';
    // Reads about 1 MiB every 150 ms: the whole body was handed to the socket at once, but it moves slowly.
    const slow = rawClient(port);
    let got = 0;
    let quota = 0;
    slow.socket.removeAllListeners('data');
    slow.socket.on('data', (d: string) => {
      got += d.length;
      quota -= d.length;
      if (quota <= 0) slow.socket.pause();
    });
    slow.socket.pause();
    slow.socket.write(head);
    const pacer = setInterval(() => {
      quota = 1024 * 1024;
      slow.socket.resume();
    }, 150);
    const took = await slow.closedAfter;
    clearInterval(pacer);
    expect(got).toBeGreaterThan(BIG.length);
    expect(took).toBeGreaterThan(1200);
    // Never reads: closed once the kernel's buffers are full and nothing moves for the idle timeout (seen
    // from the edge: a paused client does not read the close).
    const stuck = rawClient(port);
    stuck.socket.pause();
    stuck.socket.write(head);
    const connections = (): Promise<number> => new Promise((r) => edge.server.getConnections((_e, n) => r(n)));
    await sleep(100);
    expect(await connections()).toBe(1);
    const t0 = Date.now();
    while ((await connections()) > 0 && Date.now() - t0 < 5000) await sleep(50);
    expect(await connections()).toBe(0);
    stuck.socket.destroy();
  } finally {
    await edge.close();
  }
}, 60_000);
