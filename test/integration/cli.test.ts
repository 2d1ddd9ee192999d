// The command line as users run it: bad flags fail at start naming the flag; workers share the port (each
// new connection to the worker with the fewest), a purge reaches every worker and SIGTERM drains them;
// nginx-conf output is a config real nginx accepts.
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { childPids, CLI, startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { NGINX_BIN } from '../helpers/nginx';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

const run = promisify(execFile);

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 10000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('bad configuration fails at start, naming the flag', () => {
  it.each([
    [['serve'], /--origin \(EDGE_ORIGIN\) is required/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--port', '70000'], /--port \(EDGE_PORT\) must be an integer from 0 to 65535, got '70000'/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--prot', '80'], /unknown flag --prot \(did you mean --port\?\)/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--memcached', '10.0.0.1'], /--memcached \(EDGE_MEMCACHED\): '10.0.0.1' is not host:port/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--memcached', '127.0.0.1:99999'], /--memcached \(EDGE_MEMCACHED\): port 99999 .* out of range/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--ttl', 'soon'], /--ttl \(EDGE_TTL\) must be an integer/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--format', 'json'], /--format \(EDGE_FORMAT\) must be one of 'envelope', 'raw'/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--keepalive-timeout', '0'], /--keepalive-timeout \(EDGE_KEEPALIVE_TIMEOUT\) must be an integer from 1 to 3600000, got '0'/],
    [['serve', '--origin', 'http://127.0.0.1:1/path'], /--origin .* no path/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--admin-token', 'short'], /--admin-token .* at least 16 characters/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--hosts', 'example.com:80'], /--hosts .* is not a host name/],
    // Bug: the envelope bit in the gzip flag made every raw page be deleted on its first read.
    [['serve', '--origin', 'http://127.0.0.1:1', '--format', 'raw', '--gzip-flag', '256'], /--gzip-flag \(EDGE_GZIP_FLAG\) must not use the envelope bit 0x100/],
    [['nginx-conf', '--gzip-flag', '256'], /--gzip-flag must not use the envelope bit 0x100/],
    // Config injection: each of these was pasted into the generated nginx config as it was.
    [['nginx-conf', '--fallback', 'http://127.0.0.1:8080; } server { listen 81'], /--fallback must be an http\(s\) URL/],
    [['nginx-conf', '--listen', '80; include /etc/shadow'], /--listen must be PORT or ADDRESS:PORT/],
    [['nginx-conf', '--default-type', 'text/html"; add_header X-Evil 1; #'], /--default-type must be a media type/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--trust-proxy', '10.0.0.0/99'], /--trust-proxy \(EDGE_TRUST_PROXY\) must list IP addresses, CIDRs/],
    [['serve', '--origin', 'http://127.0.0.1:1', '--client-header-timeout', '0'], /--client-header-timeout \(EDGE_CLIENT_HEADER_TIMEOUT\) must be an integer/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('%j', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('reads EDGE_* environment twins, and flags win over them', async () => {
    const r = await cli(['serve', '--origin', 'http://127.0.0.1:1'], { EDGE_WORKERS: 'many' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers \(EDGE_WORKERS\) must be an integer/);
  });

  it('rejects an unknown key in a config file with a suggestion', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'epc-cli-'));
    const file = path.join(dir, 'edge.json');
    writeFileSync(file, JSON.stringify({ origin: 'http://127.0.0.1:1', ttlSeconds: 5 }));
    const r = await cli(['serve', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option ttlSeconds/);
  });
});

describe('a config file', () => {
  it('configures the edge from a JSON file (flags beside it still apply)', async () => {
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('configured');
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'epc-cli-'));
    const file = path.join(dir, 'edge.json');
    writeFileSync(file, JSON.stringify({ origin: origin.url, ttl: 30, hosts: ['example.com'], keyPrefix: 'from-file:' }));
    const edge = await startEdge(['--config', file, '--ttl', '45']);
    try {
      const ok = await request(edge.port, '/c');
      expect(ok.body.toString()).toBe('configured');
      expect((await request(edge.port, '/c')).headers['x-cache']).toBe('HIT');
      expect((await request(edge.port, '/c', { host: 'other.example' })).status).toBe(421);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });
});

describe('the access log', () => {
  it('writes one JSON line per request with --access-log 1, even with other logs at warn', async () => {
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end('logged');
    });
    const edge = await startEdge(['--origin', origin.url, '--access-log', '1']);
    try {
      await request(edge.port, '/logged');
      await request(edge.port, '/logged');
      await new Promise((r) => setTimeout(r, 200));
      const lines = edge
        .output()
        .split('\n')
        .filter((l) => l.includes('"component":"access"'))
        .map((l) => JSON.parse(l) as { url: string; cacheStatus: string; status: number; host: string });
      expect(lines.map((l) => [l.url, l.cacheStatus, l.status, l.host])).toEqual([
        ['/logged', 'MISS', 200, 'example.com'],
        ['/logged', 'HIT', 200, 'example.com'],
      ]);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });
});

describe('a port in use', () => {
  it.each([['1'], ['2']])('stops with a message and exit code 1 (workers %s)', async (workers) => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await cli(['serve', '--host', '127.0.0.1', '--port', String(port), '--origin', 'http://127.0.0.1:1', '--workers', workers]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(workers === '1' ? /EADDRINUSE/ : /cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      blocker.close();
    }
  });
});

describe('workers', () => {
  let origin: TestOrigin;
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300', 'x-pid': String(process.pid) });
      res.end(`page ${req.url}`);
    });
  });
  afterAll(() => origin.close());

  it('two workers share the port; a purge through the admin port reaches both', async () => {
    const token = 'workers-token-0123456789';
    const edge = await startEdge(['--origin', origin.url, '--workers', '2', '--admin-token', token]);
    try {
      // New connections (agent: false) until both workers have filled their own embedded cache.
      for (let i = 0; i < 200 && origin.hits('/w') < 2; i++) await request(edge.port, '/w');
      expect(origin.hits('/w')).toBe(2);
      for (let i = 0; i < 10; i++) expect((await request(edge.port, '/w')).headers['x-cache']).toBe('HIT');
      const health = JSON.parse((await request(edge.adminPort, '/healthz', { host: '127.0.0.1' })).body.toString()) as { workers: number };
      expect(health.workers).toBe(2);
      const purge = await request(edge.adminPort, '/purge', {
        host: '127.0.0.1',
        method: 'POST',
        body: JSON.stringify({ urls: ['http://example.com/w'] }),
        headers: { authorization: `Bearer ${token}` },
      });
      expect(purge.status).toBe(200);
      // Had the purge missed a worker, that one would keep answering HIT and the origin would see only 3.
      for (let i = 0; i < 200 && origin.hits('/w') < 4; i++) await request(edge.port, '/w');
      expect(origin.hits('/w')).toBe(4);
      const metrics = (await request(edge.adminPort, '/metrics', { host: '127.0.0.1' })).body.toString();
      expect(metrics).toMatch(/edge_cache_requests_total\{status="HIT"\} \d+/);
      expect(await edge.stop()).toBe(0);
    } finally {
      await edge.stop();
    }
  });
});

describe('workers and connections', () => {
  /** One keep-alive connection of its own (an agent holding a single socket). */
  class Connection {
    readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    body = '';
    /** Set when the connection closes. */
    closed = false;
    get(port: number, path: string): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path, headers: { host: 'example.com' }, agent: this.agent }, (res) => {
            res.socket.once('close', () => (this.closed = true));
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    }
  }

  /**
   * An origin whose /slow answers after 1.5 s (uncacheable); `page` answers the rest, by default with an
   * uncacheable 'fast', so each request reaches a worker's fetch.
   */
  function slowOrigin(page: http.RequestListener = fast): Promise<TestOrigin> {
    return startOrigin((req, res) => {
      if (req.url !== '/slow') return page(req, res);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('slow done');
      }, 1500);
    });
  }
  function fast(_req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end('fast');
  }

  /** Runs `body` against an edge with two workers in front of slowOrigin(), both stopped afterwards. */
  async function withTwoWorkers(body: (edge: EdgeProcess) => Promise<void>, flags: readonly string[] = []): Promise<void> {
    const origin = await slowOrigin();
    const edge = await startEdge(['--origin', origin.url, '--workers', '2', ...flags]);
    try {
      await body(edge);
    } finally {
      await edge.stop();
      await origin.close();
    }
  }

  it('hands each new connection to the worker with the fewest open ones, and drains both on SIGTERM', async () => {
    // Each worker fills its own embedded store from the origin on its first request, so the body tells
    // which worker answered a connection.
    let fills = 0;
    const origin = await slowOrigin((_req, res) => {
      fills++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300' });
      res.end(`worker ${fills}`);
    });
    const edge = await startEdge(['--origin', origin.url, '--workers', '2', '--drain-timeout', '30000']);
    const conns: Connection[] = [];
    const open = async (): Promise<Connection> => {
      const c = new Connection();
      conns.push(c);
      c.body = (await c.get(edge.port, '/who')).body;
      return c;
    };
    try {
      const first = [await open(), await open(), await open(), await open()];
      const a = first[0]!.body;
      expect(first.map((c) => c.body).sort()).toEqual(['worker 1', 'worker 1', 'worker 2', 'worker 2']);
      // A connection stays with its worker.
      for (const c of first) expect((await c.get(edge.port, '/who')).body).toBe(c.body);
      // Both of one worker's connections close: the next two both go to it (round robin would send one
      // to each and leave the workers with 1 and 3).
      for (const c of first) if (c.body === a) c.agent.destroy();
      await sleep(500);
      const next = [await open(), await open()];
      expect(next.map((c) => c.body)).toEqual([a, a]);

      // SIGTERM with a request in flight on one connection, another idle, and one that never sent a byte (a
      // browser's preconnect): the last two are closed at once (not at the keep-alive timeout, 5 s, nor at
      // the 30 s drain timeout), the request finishes, and the edge exits 0.
      const silent = net.connect(edge.port, '127.0.0.1');
      let silentClosed = false;
      silent.on('close', () => (silentClosed = true)).on('error', () => undefined);
      const slow = next[0]!.get(edge.port, '/slow').then((r) => ({ ...r, othersClosedFirst: next[1]!.closed && silentClosed }));
      await sleep(100);
      const stopped = edge.stop();
      expect(await slow).toEqual({ status: 200, body: 'slow done', othersClosedFirst: true });
      expect(await stopped).toBe(0);
    } finally {
      for (const c of conns) c.agent.destroy();
      await edge.stop();
      await origin.close();
    }
  });
  /** Each request on a connection of its own; a failure is reported as status 0 with the error's code. */
  function fresh(port: number, path: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, headers: { host: 'example.com' }, agent: false, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, body: err.code ?? err.message }));
    });
  }

  it('drains without cutting a keep-alive client whose next request is already on the wire', () =>
    withTwoWorkers(async (edge) => {
      const outcomes = new Map<string, number>();
      const count = (k: string): void => void outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      let running = true;
      /** Requests back to back on one keep-alive connection until it is closed or the test ends. */
      const client = async (): Promise<void> => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          while (running) {
            const r = await new Promise<string>((resolve) => {
              http
                .get({ host: '127.0.0.1', port: edge.port, path: '/fast', headers: { host: 'example.com' }, agent }, (res) => {
                  res.resume();
                  res.on('end', () => resolve(res.headers.connection === 'close' ? 'last' : String(res.statusCode)));
                })
                .on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
            });
            count(r);
            if (r !== '200') return;
          }
        } finally {
          agent.destroy();
        }
      };
      try {
        const clients = Array.from({ length: 8 }, client);
        await sleep(500);
        const code = await edge.stop();
        running = false;
        await Promise.all(clients);
        expect(code).toBe(0);
        // Each client's last answer says Connection: close; none is reset or left without an answer.
        expect(outcomes.get('last')).toBe(8);
        expect([...outcomes.keys()].sort()).toEqual(['200', 'last']);
      } finally {
        running = false;
      }
    }));

  it('sends no new connection to a draining worker: the other one answers them all', () =>
    withTwoWorkers(async (edge) => {
      const conns: Connection[] = [];
      try {
        // Two connections per worker, each with a request in flight, so a SIGTERMed worker drains for a while
        // and, once its idle connections are closed, is the one with the fewest.
        for (let i = 0; i < 4; i++) conns.push(new Connection());
        const slow = conns.map((c) => c.get(edge.port, '/slow'));
        await sleep(200);
        const workers = childPids(edge.child.pid!);
        expect(workers).toHaveLength(2);
        process.kill(workers[0]!, 'SIGTERM');
        await sleep(200);
        const answers: { status: number; body: string }[] = [];
        for (let i = 0; i < 10; i++) answers.push(await fresh(edge.port, '/fast'));
        expect(answers).toEqual(Array.from({ length: 10 }, () => ({ status: 200, body: 'fast' })));
        // The draining worker finished what it had.
        expect(await Promise.all(slow)).toEqual(Array.from({ length: 4 }, () => ({ status: 200, body: 'slow done' })));
      } finally {
        for (const c of conns) c.agent.destroy();
      }
    }, ['--drain-timeout', '30000']));

  it('gives a stalled worker at most two connections; the rest are answered at once, and those two once it resumes', () =>
    withTwoWorkers(async (edge) => {
      const [stalled] = childPids(edge.child.pid!);
      try {
        process.kill(stalled!, 'SIGSTOP');
        const settled: boolean[] = [];
        const answers = Array.from({ length: 8 }, (_, i) =>
          fresh(edge.port, '/fast').then((r) => {
            settled[i] = true;
            return r;
          }),
        );
        await sleep(1000);
        expect(settled.filter(Boolean).length).toBeGreaterThanOrEqual(6);
        process.kill(stalled!, 'SIGCONT');
        expect(await Promise.all(answers)).toEqual(Array.from({ length: 8 }, () => ({ status: 200, body: 'fast' })));
      } finally {
        process.kill(stalled!, 'SIGCONT');
      }
    }));

  it('survives a worker out of file descriptors: every request is answered or closed, none hangs', () =>
    withTwoWorkers(async (edge) => {
      const [starved] = childPids(edge.child.pid!);
      const { stdout } = await run('prlimit', ['--pid', String(starved), '--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD']);
      const [soft, hard] = stdout.trim().split(/\s+/);
      try {
        // One descriptor to spare: the worker cannot receive the connections handed to it.
        const inUse = readdirSync(`/proc/${starved}/fd`).length;
        await run('prlimit', ['--pid', String(starved), `--nofile=${inUse + 1}:${hard}`]);
        const answers = await Promise.all(Array.from({ length: 20 }, () => fresh(edge.port, '/fast', 15_000)));
        // Each request ends: answered (200 by the other worker; 502 from the starved one, which cannot open a
        // connection to the origin either) or, for a handoff it could not receive, closed: never a hang.
        const outcomes = answers.map((a) => (a.status === 0 ? a.body : String(a.status)));
        for (const o of outcomes) expect(['200', '502', 'ECONNRESET']).toContain(o);
        expect(outcomes).toContain('200');
        await run('prlimit', ['--pid', String(starved), `--nofile=${soft}:${hard}`]);
        // The primary is still there, and both workers take connections again.
        const after = await Promise.all(Array.from({ length: 20 }, () => fresh(edge.port, '/fast')));
        expect(after).toEqual(Array.from({ length: 20 }, () => ({ status: 200, body: 'fast' })));
        expect(childPids(edge.child.pid!)).toContain(starved);
      } finally {
        await run('prlimit', ['--pid', String(starved), `--nofile=${soft}:${hard}`]).catch(() => undefined);
      }
    }));

  it('keeps answering new connections when a worker is killed, and starts another', () =>
    withTwoWorkers(async (edge) => {
      const [victim] = childPids(edge.child.pid!);
      process.kill(victim!, 'SIGKILL');
      const answers = await Promise.all(Array.from({ length: 20 }, () => fresh(edge.port, '/fast')));
      expect(answers).toEqual(Array.from({ length: 20 }, () => ({ status: 200, body: 'fast' })));
      for (let i = 0; i < 100 && childPids(edge.child.pid!).length < 2; i++) await sleep(50);
      const now = childPids(edge.child.pid!);
      expect(now).toHaveLength(2);
      expect(now).not.toContain(victim);
    }));
});

describe('workers and unsafe requests', () => {
  it('a POST through one worker drops the page from every worker’s embedded store', async () => {
    let version = 1;
    const origin = await startOrigin((req, res) => {
      if (req.method === 'POST') version++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300' });
      res.end(`v${version}`);
    });
    const edge = await startEdge(['--origin', origin.url, '--workers', '2']);
    try {
      for (let i = 0; i < 200 && origin.hits('/doc') < 2; i++) await request(edge.port, '/doc');
      expect(origin.hits('/doc')).toBe(2);
      expect((await request(edge.port, '/doc', { method: 'POST', body: 'edit' })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
      // Both workers now answer the new version: neither kept its old copy.
      for (let i = 0; i < 20; i++) expect((await request(edge.port, '/doc')).body.toString()).toBe('v2');
    } finally {
      await edge.stop();
      await origin.close();
    }
  });
});

describe('nginx-conf', () => {
  it('prints a config that nginx -t accepts', async () => {
    const r = await cli(['nginx-conf', '--memcached', '127.0.0.1:11211,127.0.0.1:11212', '--listen', '127.0.0.1:18080']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hash $memcached_key consistent;');
    expect(r.stdout).toContain('set_md5 $memcached_key "$host$request_uri";');
    const dir = mkdtempSync(path.join(tmpdir(), 'epc-nginxconf-'));
    const conf = `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events {}
http { access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
${r.stdout}
}`;
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const t = await run(NGINX_BIN, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')]).then(
      (x) => ({ ok: true, out: x.stderr }),
      (e: { stderr: string }) => ({ ok: false, out: e.stderr }),
    );
    expect(t.out).toContain('syntax is ok');
    expect(t.ok).toBe(true);
  });
});
