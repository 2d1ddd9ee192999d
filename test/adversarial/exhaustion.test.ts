// Resource exhaustion against a real edge process: many idle connections, a flood of distinct URLs, a flood
// of purges. Each case states the bound: hits keep being served at once, memory stays within --memory plus
// a fixed overhead, and every purge is answered. (The million-URL run with its RSS curve is bench/rss.ts.)
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

jest.setTimeout(60_000);

const TOKEN = 'exhaustion-admin-token-0123456789';
let origin: TestOrigin;
let edge: EdgeProcess;

/** Resident memory of the edge's processes (its primary and worker), MB. */
function rssMb(pid: number): number {
  let total = 0;
  const pids = [pid];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  for (const p of pids) {
    try {
      total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=600' });
    res.end(`<p>${req.url}</p>${'x'.repeat(1500)}`);
  });
  edge = await startEdge(['--origin', origin.url, '--memory', '8m', '--admin-token', TOKEN]);
  await request(edge.port, '/hot');
});
afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

async function hitMs(): Promise<number> {
  const t0 = performance.now();
  const r = await request(edge.port, '/hot');
  expect(r.headers['x-cache']).toBe('HIT');
  return performance.now() - t0;
}

it('1,000 idle connections held open: a hit is still answered at once', async () => {
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < 1000; i++) {
      const s = net.connect(edge.port, '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
    }
    await Promise.all(sockets.map((s) => new Promise<void>((r) => (s.readyState === 'open' ? r() : s.once('connect', () => r())))));
    expect(await hitMs()).toBeLessThan(500);
  } finally {
    for (const s of sockets) s.destroy();
  }
});

it('8,000 distinct URLs (more than 8 MiB of pages): every one answered, memory stays within --memory plus the stated overhead', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const get = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: edge.port, path, headers: { host: 'site.test' }, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  try {
    let ok = 0;
    for (let i = 0; i < 8_000; i += 200) {
      const statuses = await Promise.all(Array.from({ length: 200 }, (_, j) => get(`/flood/${i + j}`)));
      ok += statuses.filter((s) => s === 200).length;
    }
    expect(ok).toBe(8_000);
    // The README's bound per process is --memory x 1.25 + 256 MB; primary and worker together stay well under it.
    expect(rssMb(edge.child.pid!)).toBeLessThan(8 * 1.25 + 2 * 256);
    // The hot page was evicted by the flood (LRU within --memory): stored again, then a hit at once.
    await request(edge.port, '/hot');
    expect(await hitMs()).toBeLessThan(500);
  } finally {
    agent.destroy();
  }
});

it('a purge flood (2,000 purges of 50 URLs each): every purge answered 200, hits keep flowing', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const purge = (n: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ urls: Array.from({ length: 50 }, (_, j) => `http://site.test/flood/${n * 50 + j}`) });
      const req = http.request(
        { host: '127.0.0.1', port: edge.adminPort, path: '/purge', method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  try {
    let answered = 0;
    let slowestHit = 0;
    for (let i = 0; i < 2000; i += 100) {
      const [statuses, ms] = await Promise.all([Promise.all(Array.from({ length: 100 }, (_, j) => purge(i + j))), hitMs()]);
      answered += statuses.filter((s) => s === 200).length;
      slowestHit = Math.max(slowestHit, ms);
    }
    expect(answered).toBe(2000);
    expect(slowestHit).toBeLessThan(1000);
  } finally {
    agent.destroy();
  }
});
