// The live stats page (admin GET /, /stats.js, /stats.css, /stats.json) in real headless Chromium (Debian's
// chromium driven by puppeteer-core): it renders, its numbers are /stats.json's, its request chart moves as
// requests are made, and nothing breaks its strict Content-Security-Policy.
import { existsSync } from 'node:fs';
import { Registry } from 'prom-client';
import puppeteer from 'puppeteer-core';
import type { Browser, Page } from 'puppeteer-core';
import { createAdminServer } from '../../src/edge/admin';
import type { AdminServer } from '../../src/edge/admin';
import { localAdminBackend } from '../../src/edge/server';
import { startEdge } from '../helpers/edge';
import { request } from '../helpers/origin';
import { scriptedSuite, sleep, startScriptedEdge } from '../helpers/scripted-origin';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)`);

const s = scriptedSuite();
let admin: AdminServer;
let adminPort: number;
let browser: Browser;
let page: Page;
const consoleLines: string[] = [];

interface StatsJson {
  requests: Record<string, number>;
  notStored: Record<string, number>;
  topNotStored: { url: string; reason?: string; count: number }[];
  topOrigin: { url: string; count: number }[];
  memcached: { node: string; up: boolean; items?: number }[];
  samples: { t: number; requests: Record<string, number> }[];
}

async function statsJson(): Promise<StatsJson> {
  const r = await request(adminPort, '/stats.json', { host: '127.0.0.1' });
  expect(r.status).toBe(200);
  return JSON.parse(r.body.toString()) as StatsJson;
}

/** X-Cache of every answer the edge gave, by status: what the page and /stats.json must say. */
const seen: Record<string, number> = {};

async function get(path: string): Promise<void> {
  const r = await s.e.get(path);
  const status = String(r.headers['x-cache']);
  seen[status] = (seen[status] ?? 0) + 1;
}

async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await get('/page');
}

beforeAll(async () => {
  admin = createAdminServer({ port: 0, host: '127.0.0.1', token: undefined, registry: new Registry() }, localAdminBackend(s.e.edge));
  adminPort = await admin.listen();
  s.o.script('/page', { headers: { 'cache-control': 'max-age=300', 'content-type': 'text/html' }, body: 'a page' });
  s.o.script('/session', { headers: { 'cache-control': 'max-age=300', 'set-cookie': 'sid=1' }, body: 'not shared' });
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  page = await browser.newPage();
  await page.setViewport({ width: 390, height: 844, isMobile: true, deviceScaleFactor: 1 });
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${String(e)}`));
  // Every CSP violation the page meets, recorded before any of its own script runs.
  // (Strings: this file is compiled without the DOM library.)
  await page.evaluateOnNewDocument(
    "window.violations = []; document.addEventListener('securitypolicyviolation', function (e) { window.violations.push(e.violatedDirective + ' ' + e.blockedURI); });",
  );
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await admin?.close();
});

it('renders, shows the numbers of /stats.json, moves as requests are made, and keeps its CSP', async () => {
  await traffic(3);
  await get('/session');
  await get('/session');
  const res = await page.goto(`http://127.0.0.1:${adminPort}/?refresh=300`, { waitUntil: 'load' });
  expect(res?.status()).toBe(200);
  const csp = res?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("default-src 'none'");
  expect(csp).not.toContain('unsafe-inline');
  await page.waitForSelector('body[data-updated]', { timeout: 10_000 });

  // The chart moves: its total over the window grows by the requests made while it is open.
  await sleep(1500);
  const before = Number(await page.$eval('#chart-requests', (e) => e.getAttribute('data-total')));
  await traffic(25);
  await page.waitForFunction(`Number(document.getElementById('chart-requests').getAttribute('data-total')) >= ${before + 25}`, { timeout: 15_000 });
  const points = Number(await page.$eval('#chart-requests', (e) => e.getAttribute('data-points')));
  expect(points).toBeGreaterThan(0);
  const line = await page.$eval('#chart-requests polyline[data-series="HIT"]', (e) => e.getAttribute('points'));
  expect(line).toMatch(/\d+\.\d,\d+\.\d/);

  // Quiet now: after the next refresh, the page says what /stats.json says.
  await sleep(1200);
  const shown = await page.$$eval('[data-total]', (cells) => Object.fromEntries(cells.filter((c) => c.tagName === 'TD').map((c) => [c.getAttribute('data-total'), Number(c.textContent)])));
  const json = await statsJson();
  expect(shown).toEqual(json.requests);
  expect(json.requests).toEqual(seen);
  expect(json.requests.HIT).toBeGreaterThanOrEqual(25);
  const reasons = await page.$$eval('[data-reason]', (cells) => Object.fromEntries(cells.map((c) => [c.getAttribute('data-reason'), Number(c.textContent)])));
  expect(reasons).toEqual(json.notStored);
  // The second went straight to the origin (hit-for-miss): counted as sent to the origin, not as a fill.
  expect(reasons['set-cookie']).toBe(1);
  expect(json.topNotStored[0]).toMatchObject({ url: 'example.com/session', reason: 'set-cookie', count: 1 });
  expect(await page.$eval('#top-not-stored', (e) => e.textContent)).toContain('example.com/session');
  expect(json.topOrigin.map((t) => t.url)).toEqual(expect.arrayContaining(['example.com/page', 'example.com/session']));
  // The memcached node's own stats: up, and holding the stored page.
  expect(json.memcached[0]).toMatchObject({ node: s.mc.address, up: true });
  expect(json.memcached[0]!.items).toBeGreaterThanOrEqual(1);
  expect(await page.$eval('#nodes', (e) => e.textContent)).toContain(s.mc.address);
  expect(await page.$eval('#l1-evictions', (e) => e.textContent)).toBe(String((json as unknown as { l1Evictions: number }).l1Evictions));
  const ratio = await page.$eval('#ratio', (e) => e.textContent);
  const hits = seen.HIT ?? 0;
  const lookups = hits + (seen.MISS ?? 0);
  expect(ratio).toBe(`${((hits / lookups) * 100).toFixed(1)}%`);
  expect(await page.$eval('#headline', (e) => e.textContent)).toBe(`Health: ok — Hit ratio: ${ratio} (${hits} from cache of ${lookups} lookups)`);

  await page.screenshot({ path: '/tmp/stats-page.png', fullPage: true });
  const violations = (await page.evaluate('window.violations')) as string[];
  expect(violations).toEqual([]);
  expect(consoleLines.filter((l) => /Content Security Policy|Refused|error/i.test(l))).toEqual([]);
}, 60_000);

it('with two workers, /stats.json sums both workers: totals, per-second samples and top URLs', async () => {
  const edge = await startEdge(['--origin', s.o.origin.url, '--memcached', s.mc.address, '--workers', '2', '--key-prefix', `stats2-${Date.now()}:`]);
  try {
    // Each on a new connection, so the primary spreads them over both workers.
    for (let i = 0; i < 20; i++) await request(edge.port, '/page');
    const get = async (): Promise<StatsJson & { health: { workers: number } }> =>
      JSON.parse((await request(edge.adminPort, '/stats.json', { host: '127.0.0.1' })).body.toString()) as StatsJson & { health: { workers: number } };
    let json = await get();
    const deadline = Date.now() + 5000;
    while (json.samples.reduce((a, x) => a + Object.values(x.requests).reduce((p, q) => p + q, 0), 0) < 20 && Date.now() < deadline) {
      await sleep(250);
      json = await get();
    }
    expect(json.health.workers).toBe(2);
    expect((json.requests.HIT ?? 0) + (json.requests.MISS ?? 0)).toBe(20);
    expect(json.samples.reduce((a, x) => a + (x.requests.HIT ?? 0) + (x.requests.MISS ?? 0), 0)).toBe(20);
    expect(json.topOrigin[0]?.url).toBe('example.com/page');
  } finally {
    await edge.stop();
  }
}, 30_000);

it('counts L1 evictions: pages dropped to make room, shown on the page', async () => {
  for (let i = 0; i < 40; i++) s.o.script(`/wide${i}`, { headers: { 'cache-control': 'max-age=300', 'content-type': 'application/octet-stream' }, body: Buffer.alloc(60_000, i) });
  const small = await startScriptedEdge(s.o, { memcached: s.mc.address, memoryBytes: '1m', maxEntryBytes: '64k' });
  try {
    expect((await small.edge.stats.snapshot()).l1Evictions).toBe(0);
    for (let i = 0; i < 40; i++) await small.get(`/wide${i}`);
    const evicted = (await small.edge.stats.snapshot()).l1Evictions ?? 0;
    // 40 pages of 60 KB in 1 MiB: at least 20 had to go.
    expect(evicted).toBeGreaterThanOrEqual(20);
    expect(await small.metric('edge_cache_l1_evictions_total')).toContain(`edge_cache_l1_evictions_total ${evicted}`);
  } finally {
    await small.edge.close();
  }
});
