// `edge-page-cache serve`: one process, or a node:cluster primary with N workers sharing the port. The
// primary owns the admin port and speaks to workers over IPC: purge (a purge reaches every worker's L1),
// health, and metrics (prom-client's AggregatorRegistry). SIGTERM drains in-flight requests, then exits.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { componentLogger } from '../core/logger';
import { createAdminServer } from '../edge/admin';
import type { AdminBackend, HealthReport } from '../edge/admin';
import type { ResolvedEdgeOptions } from '../edge/options';
import { createEdgeServer, localAdminBackend, requestCounts } from '../edge/server';
import type { EdgeServer } from '../edge/server';

type ToWorker =
  | { epc: 'purge'; id: number; urls: string[]; tags: string[] }
  | { epc: 'evict'; id: number; keys: string[] }
  | { epc: 'health'; id: number }
  | { epc: 'stats'; id: number }
  | { epc: 'drop'; id: number; keys: string[] };
type FromWorker = { epc: 'reply'; id: number; value: unknown } | { epc: 'invalidated'; id: number; keys: string[] };

const log = componentLogger('serve');
/** A worker's exit code when it cannot listen (port in use, address not available). */
const LISTEN_FAILED = 3;
/** More worker deaths than this within a minute: something is wrong with every worker, stop. */
const MAX_RESTARTS_PER_MINUTE = 10;

function isMessage(m: unknown): m is { epc: string; id: number } {
  return typeof m === 'object' && m !== null && 'epc' in m && 'id' in m;
}

async function drainAndExit(edge: EdgeServer, admin: { close(): Promise<void> } | undefined): Promise<never> {
  log.info('draining');
  await Promise.all([edge.close(), admin?.close()]);
  log.info('drained; exiting');
  process.exit(0);
}

/** Runs the edge in this process (workers = 1) or as a cluster. Resolves once listening. */
export async function serve(opts: ResolvedEdgeOptions): Promise<void> {
  if (opts.workers === 1) {
    const edge = createEdgeServer(opts);
    const port = await edge.listen();
    const admin =
      opts.adminPort === undefined
        ? undefined
        : createAdminServer({ port: opts.adminPort, host: opts.adminHost, token: opts.adminToken }, localAdminBackend(edge));
    const adminPort = await admin?.listen();
    log.info({ port, host: opts.host, adminPort, origins: opts.origins.map((o) => o.base), memcached: opts.store.memcached.map((s) => s.name) }, 'edge listening');
    process.once('SIGTERM', () => void drainAndExit(edge, admin));
    process.once('SIGINT', () => void drainAndExit(edge, admin));
    return;
  }
  if (cluster.isPrimary) return primary(opts);
  return worker(opts);
}

async function worker(opts: ResolvedEdgeOptions): Promise<void> {
  // An unsafe request invalidated pages here: the primary tells the other workers (their L1 or embedded store).
  const edge = createEdgeServer(opts, {
    onInvalidate(keys) {
      process.send?.({ epc: 'invalidated', id: 0, keys: [...keys] } satisfies FromWorker);
    },
  });
  // prom-client answers the primary's metrics requests from a worker only once an AggregatorRegistry
  // has been constructed there (that installs its IPC listener); it then reports the registries set here.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([edge.registry]);
  process.on('message', function onPrimaryMessage(m: unknown) {
    if (!isMessage(m)) return;
    const msg = m as ToWorker;
    const reply = (value: unknown): void => {
      process.send?.({ epc: 'reply', id: msg.id, value } satisfies FromWorker);
    };
    switch (msg.epc) {
      case 'purge':
        edge.purge(msg.urls, msg.tags).then(reply, () => reply([]));
        break;
      case 'evict':
        edge.evictLocal(msg.keys);
        reply(msg.keys.length);
        break;
      case 'health':
        reply(edge.health());
        break;
      case 'stats':
        requestCounts(edge.registry).then(reply, () => reply({}));
        break;
      case 'drop':
        edge.dropInvalidated(msg.keys);
        break;
      default: {
        const never: never = msg;
        void never;
      }
    }
  });
  try {
    await edge.listen();
  } catch (err) {
    // The primary sees this exit code and stops, instead of starting worker after worker that cannot listen.
    log.error({ err: (err as Error).message }, 'worker cannot listen');
    process.exit(LISTEN_FAILED);
  }
  process.once('SIGTERM', () => void drainAndExit(edge, undefined));
  process.once('SIGINT', () => void drainAndExit(edge, undefined));
}

async function primary(opts: ResolvedEdgeOptions): Promise<void> {
  let stopping = false;
  let seq = 0;
  const waiting = new Map<number, { left: number; values: unknown[]; done: (v: unknown[]) => void }>();
  const workers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());

  cluster.on('message', function onWorkerMessage(from: Worker, m: unknown) {
    if (!isMessage(m)) return;
    const msg = m as FromWorker;
    if (msg.epc === 'invalidated') {
      for (const w of workers()) if (w !== from) w.send({ epc: 'drop', id: 0, keys: msg.keys } satisfies ToWorker);
      return;
    }
    if (msg.epc !== 'reply') return;
    const pending = waiting.get(m.id);
    if (!pending) return;
    pending.values.push(msg.value);
    if (--pending.left === 0) {
      waiting.delete(m.id);
      pending.done(pending.values);
    }
  });

  /** Sends to the given workers and resolves with their replies (or what arrived within 5 s). */
  function ask(targets: readonly Worker[], make: (id: number) => ToWorker): Promise<unknown[]> {
    if (targets.length === 0) return Promise.resolve([]);
    const id = ++seq;
    return new Promise((resolve) => {
      const entry = { left: targets.length, values: [] as unknown[], done: resolve };
      waiting.set(id, entry);
      setTimeout(() => {
        if (waiting.delete(id)) resolve(entry.values);
      }, 5000).unref();
      for (const w of targets) w.send(make(id));
    });
  }

  const shared = opts.store.memcached.length > 0;
  const aggregator = new AggregatorRegistry();
  const backend: AdminBackend = {
    async health(): Promise<HealthReport> {
      const replies = (await ask(workers(), (id) => ({ epc: 'health', id }))) as HealthReport[];
      const first = replies[0];
      return {
        draining: stopping,
        origins: first?.origins ?? [],
        memcached: first?.memcached ?? [],
        workers: workers().length,
      };
    },
    async metrics() {
      return { contentType: aggregator.contentType, body: await aggregator.clusterMetrics() };
    },
    async purge(urls, tags) {
      if (shared) {
        // One worker deletes from memcached (and learns the tagged keys); every worker then drops its L1 copies.
        const [keys = []] = (await ask(workers().slice(0, 1), (id) => ({ epc: 'purge', id, urls: [...urls], tags: [...tags] }))) as string[][];
        await ask(workers(), (id) => ({ epc: 'evict', id, keys }));
        return keys.length;
      }
      // Embedded store: each worker holds its own cache, so each purges its own.
      const all = (await ask(workers(), (id) => ({ epc: 'purge', id, urls: [...urls], tags: [...tags] }))) as string[][];
      return Math.max(0, ...all.map((k) => k.length));
    },
    async stats() {
      const all = (await ask(workers(), (id) => ({ epc: 'stats', id }))) as Record<string, number>[];
      const requests: Record<string, number> = {};
      for (const r of all) for (const [k, v] of Object.entries(r)) requests[k] = (requests[k] ?? 0) + v;
      return { requests };
    },
  };

  const listening = new Promise<void>((resolve) => {
    let n = 0;
    cluster.on('listening', () => {
      if (++n === opts.workers) resolve();
    });
  });
  for (let i = 0; i < opts.workers; i++) cluster.fork();
  const deaths: number[] = [];
  cluster.on('exit', function onWorkerExit(w, code, signal) {
    if (stopping) {
      if (workers().length === 0) process.exit(0);
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && deaths[0]! < now - 60_000) deaths.shift();
    if (code === LISTEN_FAILED || deaths.length > MAX_RESTARTS_PER_MINUTE) {
      process.stderr.write(
        `edge-page-cache serve: ${code === LISTEN_FAILED ? `cannot listen on ${opts.host}:${opts.port} (in use, or not an address of this machine)` : `workers keep dying (${deaths.length} in a minute)`}; stopping\n`,
      );
      stopping = true;
      for (const other of workers()) other.process.kill('SIGKILL');
      process.exit(1);
    }
    log.error({ pid: w.process.pid, code, signal }, 'worker died; starting another');
    cluster.fork();
  });

  const admin =
    opts.adminPort === undefined ? undefined : createAdminServer({ port: opts.adminPort, host: opts.adminHost, token: opts.adminToken }, backend);
  const adminPort = await admin?.listen();
  await listening;
  log.info({ port: opts.port, workers: opts.workers, adminPort }, 'edge listening');

  function stop(): void {
    if (stopping) return;
    stopping = true;
    for (const w of workers()) w.process.kill('SIGTERM');
    void admin?.close();
    setTimeout(() => process.exit(0), opts.drainTimeoutMs + 2000).unref();
    if (workers().length === 0) process.exit(0);
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
