// Reload (SIGHUP, SIGUSR2, POST /reload, `edge-page-cache reload`): the configuration is read again and the
// workers are replaced one at a time under load with no request failed; memcached keeps its pages; a
// configuration that does not validate is refused, logged, and the old workers keep serving.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { CLI, startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const TOKEN = 'reload-test-token-0123456789';

interface Health {
  status: string;
  pids: number[];
  reload: { generation: number; error?: string };
}

async function health(edge: EdgeProcess): Promise<Health> {
  return JSON.parse((await request(edge.adminPort, '/healthz', { host: '127.0.0.1' })).body.toString()) as Health;
}

/** Polls /healthz until the reload generation reaches `n` (bounded). */
async function reloaded(edge: EdgeProcess, n: number, timeoutMs = 20_000): Promise<Health> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const h = await health(edge);
    if (h.reload.generation >= n) return h;
    if (Date.now() > until) throw new Error(`no reload ${n} within ${timeoutMs} ms: ${JSON.stringify(h)}\n${edge.output()}`);
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let mc: MemcachedProcess;
let origin: TestOrigin;
let dir: string;

beforeAll(async () => {
  mc = await startMemcached();
  origin = await startOrigin((req, res) => {
    if (req.url === '/nottl') {
      // No freshness of its own: stored only when --ttl (here: from the config file) says so.
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<p>no ttl</p>');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=300' });
    res.end(`<p>page ${req.url}</p>`);
  });
  dir = mkdtempSync(path.join(os.tmpdir(), 'edge-reload-'));
});

afterAll(async () => {
  await origin.close();
  await mc.stop();
});

it('SIGHUP twice under load: no request fails, every worker is replaced, the config file is read again, memcached keeps its pages', async () => {
  const config = path.join(dir, 'two-workers.json');
  writeFileSync(config, JSON.stringify({ ttl: 0 }));
  const edge = await startEdge(
    ['--origin', origin.url, '--memcached', mc.address, '--workers', '2', '--config', config, '--admin-token', TOKEN, '--key-prefix', `reload${Date.now()}:`],
    { EDGE_LOG_LEVEL: 'info' },
  );
  try {
    const before = await health(edge);
    expect(before.pids).toHaveLength(2);
    // ttl 0 from the file: a page that states no freshness is not stored.
    await request(edge.port, '/nottl');
    expect((await request(edge.port, '/nottl')).headers['x-cache']).toBe('MISS');
    expect(origin.hits('/nottl')).toBe(2);
    expect((await request(edge.port, '/page')).headers['x-cache']).toBe('MISS');

    writeFileSync(config, JSON.stringify({ ttl: 60 }));
    let finished: (r: autocannon.Result) => void = () => undefined;
    const done = new Promise<autocannon.Result>((resolve) => (finished = resolve));
    const load = autocannon(
      {
        url: `http://127.0.0.1:${edge.port}`,
        connections: 16,
        duration: 10,
        headers: { host: 'example.com' },
        requests: [{ path: '/page' }, { path: '/page?b' }, { path: '/page?c' }],
      },
      (err, r) => {
        if (err) throw err;
        finished(r);
      },
    );
    await sleep(1000);
    edge.child.kill('SIGHUP');
    const first = await reloaded(edge, 1);
    edge.child.kill('SIGHUP');
    const second = await reloaded(edge, 2);
    await sleep(500);
    load.stop();
    const result = await done;

    expect(result.requests.total).toBeGreaterThan(500);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, resets: result.resets }).toEqual({ errors: 0, timeouts: 0, non2xx: 0, resets: 0 });
    // Every worker replaced, twice; the old ones exited.
    expect(first.pids).toHaveLength(2);
    expect(second.pids).toHaveLength(2);
    for (const pid of first.pids) expect(before.pids).not.toContain(pid);
    for (const pid of second.pids) expect([...before.pids, ...first.pids]).not.toContain(pid);
    await sleep(200);
    for (const pid of [...before.pids, ...first.pids]) expect(alive(pid)).toBe(false);
    // memcached untouched: the page filled before the reloads was never fetched again by the new workers.
    expect(origin.hits('/page')).toBe(1);
    // The file's new ttl is in force.
    expect((await request(edge.port, '/nottl')).headers['x-cache']).toBe('MISS');
    expect((await request(edge.port, '/nottl')).headers['x-cache']).toBe('HIT');
    expect(origin.hits('/nottl')).toBe(3);
    expect(edge.output()).toMatch(/"msg":"reloaded"/);

    // A file that does not validate: refused with the reason in the log, the same workers keep serving.
    writeFileSync(config, JSON.stringify({ ttl: -5 }));
    edge.child.kill('SIGHUP');
    for (let i = 0; i < 100 && !/reload refused/.test(edge.output()); i++) await sleep(50);
    expect(edge.output()).toMatch(/"err":"--ttl \(EDGE_TTL\) must be an integer from 0 to \d+, got -5","msg":"reload refused/);
    writeFileSync(config, '{"ttl": 60,');
    edge.child.kill('SIGHUP');
    for (let i = 0; i < 100 && (await health(edge)).reload.error?.includes('JSON') !== true; i++) await sleep(50);
    const after = await health(edge);
    expect(after.reload.error).toMatch(/--config .*JSON/);
    expect(after.reload.generation).toBe(2);
    expect(after.pids.sort()).toEqual([...second.pids].sort());
    expect((await request(edge.port, '/page?d')).status).toBe(200);
    expect(after.status).toBe('ok');
  } finally {
    await edge.stop();
  }
});

function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

it('one worker reloads too: `edge-page-cache reload` (POST /reload, token required) and SIGUSR2 each replace it', async () => {
  const edge = await startEdge(['--origin', origin.url, '--workers', '1', '--admin-token', TOKEN]);
  try {
    const before = await health(edge);
    expect(before.pids).toHaveLength(1);
    const admin = `http://127.0.0.1:${edge.adminPort}`;

    const denied = await cli(['reload', '--admin', admin, '--token', 'wrong-token-0123456789']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/reload refused \(401\)/);
    expect((await request(edge.adminPort, '/reload', { host: '127.0.0.1', method: 'POST' })).status).toBe(401);

    const ok = await cli(['reload', '--admin', admin, '--token', TOKEN]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const mid = await health(edge);
    expect(ok.stdout).toBe(`reloaded: generation 1, workers ${mid.pids[0]}\n`);
    expect(mid.pids).toHaveLength(1);
    expect(mid.pids[0]).not.toBe(before.pids[0]);
    expect((await request(edge.port, '/one')).status).toBe(200);

    edge.child.kill('SIGUSR2');
    const after = await reloaded(edge, 2);
    expect(after.pids).toHaveLength(1);
    expect(after.pids[0]).not.toBe(mid.pids[0]);
    expect((await request(edge.port, '/one')).headers['x-cache']).toBe('MISS'); // embedded store: a new worker starts cold
  } finally {
    await edge.stop();
  }
});
