// The middleware's worth in one run: req/s and p50/p99 latency of a ~10 KB page rendered by Express on every
// request vs the same page served by pageCache() from its in-process store (and from memcached with no L1
// when MEMCACHED=host:port is set). 127.0.0.1 only. Run: npm run build && node dist/bench/middleware.js
// Each server runs in its own child process, so autocannon does not share its event loop.
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import express from 'express';
import type { Express, RequestHandler } from 'express';
import { pageCache } from '../middleware';
import type { MiddlewareOptions } from '../middleware';

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

/** Realistic render work: a layout plus 40 list items built in a loop, escaped, ~10 KB of HTML. */
const renderPost: RequestHandler = (req, res) => {
  const items: string[] = [];
  for (let i = 0; i < 40; i++) {
    const title = `Comment ${i} on post ${String(req.params.id)} <with> "markup" & more`.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    items.push(`<li class="comment"><h3>${title}</h3><p>${'A thoughtful remark about caching. '.repeat(5)}</p></li>`);
  }
  res.set('cache-control', 'public, max-age=60');
  res.send(`<!doctype html><html><head><title>Post</title></head><body><main><ul>${items.join('\n')}</ul></main></body></html>`);
};

function app(cache: MiddlewareOptions | undefined): Express {
  const a = express();
  if (cache !== undefined) a.use(pageCache(cache));
  a.get('/posts/:id', renderPost);
  return a;
}

type Mode = 'rendered' | 'memory' | 'memcached' | 'floor';

function appFor(mode: Mode): Express {
  if (mode === 'rendered') return app(undefined);
  if (mode === 'memory') return app({ ttl: 60 });
  if (mode === 'floor') {
    // Express's own ceiling on this machine: a constant page of the same size, no cache, no render.
    const page = Buffer.alloc(11_590, 0x61);
    const a = express();
    a.get('/posts/:id', (_req, res) => void res.end(page));
    return a;
  }
  return app({ ttl: 60, memcached: process.env.MEMCACHED ?? '127.0.0.1:11211', memoryBytes: 0 });
}

/** Child: serve one mode on a free loopback port and report the port. */
function serve(mode: Mode): void {
  const server = http.createServer(appFor(mode));
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
}

async function measure(name: string, mode: Mode): Promise<{ name: string; rps: number; p50: number; p99: number; bytes: number }> {
  const child = fork(__filename, ['--serve', mode], { stdio: 'inherit' });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve(Number(m)));
      child.once('exit', (code) => reject(new Error(`${name}: server exited with ${String(code)}`)));
    });
    const url = `http://127.0.0.1:${port}/posts/42`;
    // Warm up: the first request renders and stores; the JIT warms over a short run.
    await autocannon({ url, connections: 10, duration: 1 });
    const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S });
    if (r.errors > 0 || r.non2xx > 0) throw new Error(`${name}: ${r.errors} errors, ${r.non2xx} non-2xx responses`);
    return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, bytes: r.throughput.average / Math.max(r.requests.average, 1) };
  } finally {
    child.kill();
  }
}

async function main(): Promise<void> {
  const rows = [await measure('rendered (no cache)', 'rendered'), await measure('pageCache, in-process store', 'memory')];
  if (process.env.MEMCACHED) rows.push(await measure('pageCache, memcached (no L1)', 'memcached'));
  rows.push(await measure('express floor (constant page)', 'floor'));
  const base = rows[0]!.rps;
  const line = (c: readonly string[]): string => `${c[0]!.padEnd(30)} ${c[1]!.padStart(10)} ${c[2]!.padStart(9)} ${c[3]!.padStart(9)} ${c[4]!.padStart(7)}`;
  process.stdout.write(`${DURATION_S} s per run, ${CONNECTIONS} connections, page ${Math.round(rows[0]!.bytes)} bytes, node ${process.version}\n`);
  process.stdout.write(`${line(['', 'req/s', 'p50 ms', 'p99 ms', 'ratio'])}\n`);
  for (const r of rows) process.stdout.write(`${line([r.name, r.rps.toFixed(0), String(r.p50), String(r.p99), `${(r.rps / base).toFixed(2)}x`])}\n`);
  process.exit(0);
}

if (process.argv[2] === '--serve') {
  serve(process.argv[3] as Mode);
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
