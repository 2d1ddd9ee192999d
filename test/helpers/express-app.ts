// Real Express apps for the middleware tests: listen on a free loopback port, count handler runs, and wait
// (bounded) for the store-after-finish to land.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Express } from 'express';
import { cacheKey } from '../../src/core/key';
import type { CacheStore } from '../../src/core/store';
import { sleep } from './ports';

export interface RunningApp {
  readonly port: number;
  close(): Promise<void>;
}

export async function listen(app: Express): Promise<RunningApp> {
  const server = http.createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Counts runs per name: `counter.inc('home')` in a route, `counter.get('home')` in the test. */
export class Counter {
  private readonly counts = new Map<string, number>();
  inc(name: string): void {
    this.counts.set(name, this.get(name) + 1);
  }
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

/** Polls until `check` is true (at most `timeoutMs`); throws naming `what` otherwise. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Waits until the page for host + requestUri is in `store` (e.g. a direct memcached client). */
export async function waitStored(store: CacheStore, keyPrefix: string, host: string, requestUri: string): Promise<void> {
  const key = cacheKey(keyPrefix, host, requestUri);
  await waitUntil(`${host}${requestUri} to be stored`, async () => (await store.get(key)) !== undefined);
}

let seq = 0;
/** A key prefix no other test uses. */
export function uniquePrefix(name: string): string {
  seq++;
  return `${name}-${process.pid}-${Date.now()}-${seq}:`;
}

/**
 * Registers an afterEach that closes every app and middleware handed to the returned function during a
 * test; call it once at the top of a test file.
 */
export function closeAfterEach(): (app: RunningApp, mw: { close(): Promise<void> }) => void {
  const open: { app: RunningApp; mw: { close(): Promise<void> } }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.app.close();
      await o.mw.close();
    }
  });
  return function track(app, mw) {
    open.push({ app, mw });
  };
}
