// A scripted origin and an edge in front of it, for the RFC conformance suites (test/integration/rfc-*):
// each path answers what its script says (a response, a reset connection, or no answer at all), and every
// request it sees is recorded with its headers, so a test can assert what reached the origin.
import type http from 'node:http';
import { Registry } from 'prom-client';
import { startMemcached } from './memcached';
import type { MemcachedProcess } from './memcached';
import { createEdgeServer } from '../../src/edge/server';
import type { EdgeServer } from '../../src/edge/server';
import type { EdgeOptions } from '../../src/edge/options';
import { request, startOrigin } from './origin';
import type { Reply, TestOrigin } from './origin';

export interface Scripted {
  status?: number;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
}
/** 'reset': the connection is destroyed; 'hang': never answered. */
export type Script = Scripted | 'reset' | 'hang' | ((req: http.IncomingMessage) => Scripted | 'reset' | 'hang');

export interface ScriptedOrigin {
  readonly origin: TestOrigin;
  /** Sets what a path answers from now on. */
  script(path: string, s: Script): void;
  /** Request headers of every request seen for a path, oldest first. */
  seen(path: string): http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startScriptedOrigin(): Promise<ScriptedOrigin> {
  const scripts = new Map<string, Script>();
  const seen = new Map<string, http.IncomingHttpHeaders[]>();
  const hung = new Set<http.ServerResponse>();
  const origin = await startOrigin((req, res) => {
    const path = req.url ?? '/';
    let list = seen.get(path);
    if (list === undefined) seen.set(path, (list = []));
    list.push(req.headers);
    let s = scripts.get(path) ?? { status: 404, body: 'no script' };
    if (typeof s === 'function') s = s(req);
    if (s === 'reset') {
      req.socket.destroy();
      return;
    }
    if (s === 'hang') {
      hung.add(res);
      return;
    }
    res.writeHead(s.status ?? 200, s.headers ?? {});
    res.end(s.body ?? '');
  });
  return {
    origin,
    script(path, s) {
      scripts.set(path, s);
    },
    seen(path) {
      return seen.get(path) ?? [];
    },
    async close() {
      for (const r of hung) r.destroy();
      await origin.close();
    },
  };
}

let seq = 0;

/** An edge in front of the scripted origin, on its own key prefix and metrics registry. */
export async function startScriptedEdge(o: ScriptedOrigin, extra: EdgeOptions = {}): Promise<{ edge: EdgeServer; port: number; get(path: string, headers?: http.OutgoingHttpHeaders, method?: string): Promise<Reply>; metric(name: string): Promise<string> }> {
  seq++;
  const edge = createEdgeServer(
    { origin: o.origin.url, port: 0, host: '127.0.0.1', keyPrefix: `rfc${seq}-${Date.now()}:`, originMaxFails: 1000, ...extra },
    { registry: new Registry() },
  );
  const port = await edge.listen();
  return {
    edge,
    port,
    get: (path, headers = {}, method = 'GET') => request(port, path, { headers, method }),
    metric: async (name) => {
      const text = await edge.registry.metrics();
      return text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .join('\n');
    },
  };
}

export type ScriptedEdge = Awaited<ReturnType<typeof startScriptedEdge>>;

/**
 * A real memcached, the scripted origin and an edge on both (with `extra`), started before a file's tests
 * and stopped after them: call once at the top of the file, and read the fields in tests and hooks.
 */
export function scriptedSuite(extra: EdgeOptions = {}): { mc: MemcachedProcess; o: ScriptedOrigin; e: ScriptedEdge } {
  const suite = {} as { mc: MemcachedProcess; o: ScriptedOrigin; e: ScriptedEdge };
  beforeAll(async () => {
    suite.mc = await startMemcached();
    suite.o = await startScriptedOrigin();
    suite.e = await startScriptedEdge(suite.o, { memcached: suite.mc.address, ...extra });
  });
  afterAll(async () => {
    await suite.e?.edge.close();
    await suite.o?.close();
    await suite.mc?.stop();
  });
  return suite;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
