// L1 coherence across edges: a purge made through one edge (or in memcached directly) is seen by another
// edge within its --l1-ttl, never later; and the CLI's purge and warm commands work against real servers.
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import { CLI } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const run = promisify(execFile);
let mc: MemcachedProcess;
let origin: TestOrigin;
let a: EdgeServer;
let b: EdgeServer;
let portA: number;
let portB: number;
const prefix = `coherence${Date.now()}:`;

beforeAll(async () => {
  mc = await startMemcached();
  origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=300' });
    res.end(`page ${req.url}`);
  });
  const opts = { origin: origin.url, port: 0, host: '127.0.0.1', memcached: mc.address, keyPrefix: prefix, l1TtlSeconds: 1 };
  a = createEdgeServer(opts, { registry: new Registry() });
  b = createEdgeServer(opts, { registry: new Registry() });
  portA = await a.listen();
  portB = await b.listen();
});

afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
  await origin.close();
  await mc.stop();
});

it('another edge stops serving a purged page within l1TtlSeconds', async () => {
  await request(portA, '/news');
  await sleep(50);
  expect((await request(portB, '/news')).headers['x-cache']).toBe('HIT'); // from memcached, now in B's L1
  await a.purge(['http://example.com/news'], []);
  const t0 = Date.now();
  let last = 'HIT';
  while (Date.now() - t0 < 2500) {
    last = String((await request(portB, '/news')).headers['x-cache']);
    if (last !== 'HIT') break;
    await sleep(50);
  }
  expect(last).toBe('MISS');
  expect(Date.now() - t0).toBeLessThan(1300);
});

it('edge-page-cache purge --memcached deletes a page other edges then miss', async () => {
  await request(portA, '/cli-purge');
  await sleep(50);
  const { stdout } = await run(process.execPath, [CLI, 'purge', 'http://example.com/cli-purge', '--memcached', mc.address, '--key-prefix', prefix]);
  expect(stdout).toMatch(/purged 1 key/);
  await sleep(1100); // past A's L1
  expect((await request(portA, '/cli-purge')).headers['x-cache']).toBe('MISS');
});

it('edge-page-cache warm --sitemap fetches every page through the edge', async () => {
  const sitemap = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0"?><urlset><url><loc>http://example.com/w/1</loc></url><url><loc>http://example.com/w/2?a=1&amp;b=2</loc></url></urlset>`);
  });
  await new Promise<void>((r) => sitemap.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(sitemap.address() as AddressInfo).port}/sitemap.xml`;
    const { stdout } = await run(process.execPath, [CLI, 'warm', '--sitemap', url, '--edge', `http://127.0.0.1:${portA}`]);
    expect(stdout).toMatch(/warmed 2 of 2 page/);
    expect((await request(portA, '/w/1')).headers['x-cache']).toBe('HIT');
    expect((await request(portA, '/w/2?a=1&b=2')).headers['x-cache']).toBe('HIT');
    expect(origin.hits('/w/2?a=1&b=2')).toBe(1);
  } finally {
    sitemap.close();
  }
});
