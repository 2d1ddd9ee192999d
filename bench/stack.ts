// What the bench runs against, all on loopback and each its own process: memcached (when installed),
// the bench origin (bench/servers.ts), the bare node:http Map server (Node's ceiling), and edges
// (dist/src/cli/main.js serve) with an admin port each; plus the counters read around every run: the
// edge's hits and requests from its /metrics, and the requests that reached the origin, from the origin.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { COUNT_PATH } from './servers';
import { freePort, start, waitPort } from './procs';

export const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const SERVERS = path.join(__dirname, 'servers.js');

/** The hot page. */
export const PATH = '/article/1?ref=bench';

/** `n` distinct pages: PATH with its number changed. */
export function manyPaths(n: number, prefix = '/article/'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}?ref=bench`);
}

export interface Server {
  readonly port: number;
  /** http://127.0.0.1:port */
  readonly base: string;
  readonly child: ChildProcess;
}

export interface Edge extends Server {
  readonly adminPort: number;
}

export function memcachedOnPath(): boolean {
  try {
    execFileSync('memcached', ['-h'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startMemcached(megabytes = 256): Promise<Server & { address: string }> {
  const port = await freePort();
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(megabytes), '-t', '2'];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  const child = await start('memcached', args, port);
  return { port, base: `memcached://127.0.0.1:${port}`, child, address: `127.0.0.1:${port}` };
}

/**
 * The bench origin: a page of `bytes` rendered per request, cacheable for `maxAge` s, after `delayMs`, each
 * render keeping the CPU busy for `cpuMs`.
 */
export async function startOrigin(bytes: number, maxAge = 3600, delayMs = 0, cpuMs = 0): Promise<Server> {
  const port = await freePort();
  const child = await start(process.execPath, [SERVERS, 'origin', String(port), String(bytes), String(maxAge), String(delayMs), String(cpuMs)], port);
  return { port, base: `http://127.0.0.1:${port}`, child };
}

/** The slow-body origin: the head and the first chunk of a page of `bytes` at once, the rest `restAfterMs` later. */
export async function startSlowOrigin(bytes: number, restAfterMs = 500): Promise<Server> {
  const port = await freePort();
  const child = await start(process.execPath, [SERVERS, 'slow', String(port), String(bytes), String(restAfterMs)], port);
  return { port, base: `http://127.0.0.1:${port}`, child };
}

export async function startMap(bytes: number): Promise<Server> {
  const port = await freePort();
  const child = await start(process.execPath, [SERVERS, 'map', String(port), String(bytes)], port);
  return { port, base: `http://127.0.0.1:${port}`, child };
}

/** `edge-page-cache serve` in front of `origin`, with an admin port for /metrics. */
export async function startEdge(origin: string, flags: readonly string[]): Promise<Edge> {
  const port = await freePort();
  const adminPort = await freePort();
  const child = await start(
    process.execPath,
    [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--origin', origin, ...flags],
    port,
  );
  await waitPort(adminPort);
  return { port, adminPort, base: `http://127.0.0.1:${port}`, child };
}

/** Requests answered and hits, from an edge's /metrics (edge_cache_requests_total by status). */
export async function edgeCounts(adminPort: number): Promise<{ hits: number; total: number }> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  let hits = 0;
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('edge_cache_requests_total{')) continue;
    const n = Number(line.slice(line.lastIndexOf(' ') + 1));
    total += n;
    if (line.includes('status="HIT"')) hits += n;
  }
  return { hits, total };
}

export async function originCount(port: number): Promise<number> {
  return Number(await (await fetch(`http://127.0.0.1:${port}${COUNT_PATH}`)).text());
}

/** GETs every path through a server, `parallel` at a time, twice (stored, then read back once). */
export async function warmPaths(base: string, paths: readonly string[], parallel = 16): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < paths.length; i += parallel) {
      await Promise.all(paths.slice(i, i + parallel).map((p) => fetch(base + p).then((r) => r.arrayBuffer())));
    }
  }
}
