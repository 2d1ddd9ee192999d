// `edge-page-cache serve`: one process, or a node:cluster primary with N workers. The primary listens on
// the port and hands each client connection to the worker with the fewest open ones (ConnectionDispatcher). It
// owns the admin port and speaks to workers over IPC: purge (a purge reaches every worker's L1), health, and
// metrics (prom-client's AggregatorRegistry). SIGTERM drains in-flight requests, then exits.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import net from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import { componentLogger } from '../core/logger';
import { createAdminServer } from '../edge/admin';
import type { AdminBackend, HealthReport } from '../edge/admin';
import type { ResolvedEdgeOptions } from '../edge/options';
import { createEdgeServer, localAdminBackend, requestCounts } from '../edge/server';
import type { EdgeServer } from '../edge/server';
import { listenOn } from '../edge/listen';
import { ConnectionDispatcher } from './dispatch';
import type { ConnectionHandle, ConnMessage } from './dispatch';

type ToWorker =
  | { epc: 'purge'; id: number; urls: string[]; tags: string[] }
  | { epc: 'evict'; id: number; keys: string[] }
  | { epc: 'health'; id: number }
  | { epc: 'stats'; id: number }
  | { epc: 'drop'; id: number; keys: string[] }
  /** Sent with a client connection's raw handle; answered with 'took'. */
  | ConnMessage
  /** Drain and exit (sent after the last handoff, so every connection handed over is taken). */
  | { epc: 'drain'; id: number };
type FromWorker =
  | { epc: 'reply'; id: number; value: unknown }
  | { epc: 'invalidated'; id: number; keys: string[] }
  /** Set up and taking connections. */
  | { epc: 'ready'; id: number }
  /** The answer to 'conn' `id`: took the connection, or refused it (draining) without reading a byte. */
  | { epc: 'took'; id: number; took: boolean }
  /** One of the connections it took has closed. */
  | { epc: 'gone'; id: number }
  /** Draining: hand it no more connections. */
  | { epc: 'draining'; id: number };

const log = componentLogger('serve');
/** More worker deaths than this within a minute: something is wrong with every worker, stop. */
const MAX_RESTARTS_PER_MINUTE = 10;

function noop(): void {}

/**
 * A message from a worker to the primary. Once the channel is closed (the primary is gone; the worker exits
 * on that), process.send would emit an 'error' that nothing handles, so nothing is sent.
 */
function tell(msg: FromWorker): void {
  if (process.connected) process.send?.(msg);
}

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

function worker(opts: ResolvedEdgeOptions): Promise<void> {
  // An unsafe request invalidated pages here: the primary tells the other workers (their L1 or embedded store).
  const edge = createEdgeServer(opts, {
    onInvalidate(keys) {
      tell({ epc: 'invalidated', id: 0, keys: [...keys] });
    },
  });
  // prom-client answers the primary's metrics requests from a worker only once an AggregatorRegistry
  // has been constructed there (that installs its IPC listener); it then reports the registries set here.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([edge.registry]);
  let draining = false;
  function connectionGone(): void {
    tell({ epc: 'gone', id: 0 });
  }
  /** A connection from the primary: answered first (as node:cluster's workers do), then served. */
  function take(id: number, handle: ConnectionHandle | undefined): void {
    if (handle === undefined || draining) {
      // Not a byte read: the primary offers it to another worker.
      handle?.close();
      tell({ epc: 'took', id, took: false });
      return;
    }
    tell({ epc: 'took', id, took: true });
    const socket = new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
    socket.once('close', connectionGone);
    edge.accept(socket);
  }
  process.on('message', function onPrimaryMessage(m: unknown, handle: unknown) {
    if (!isMessage(m)) return;
    const msg = m as ToWorker;
    const reply = (value: unknown): void => {
      tell({ epc: 'reply', id: msg.id, value });
    };
    switch (msg.epc) {
      case 'conn':
        take(msg.id, (handle ?? undefined) as ConnectionHandle | undefined);
        break;
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
      case 'drain':
        drain();
        break;
      default: {
        const never: never = msg;
        void never;
      }
    }
  });
  function drain(): void {
    if (draining) return;
    draining = true;
    tell({ epc: 'draining', id: 0 });
    void drainAndExit(edge, undefined);
  }
  process.once('SIGTERM', drain);
  process.once('SIGINT', drain);
  tell({ epc: 'ready', id: 0 });
  return Promise.resolve();
}

async function primary(opts: ResolvedEdgeOptions): Promise<void> {
  let stopping = false;
  let seq = 0;
  const waiting = new Map<number, { left: number; values: unknown[]; done: (v: unknown[]) => void }>();
  const workers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const dispatcher = new ConnectionDispatcher<Worker>({
    send(w, message, handle, callback) {
      // A raw TCP handle, as node:cluster sends (Node's typings know only sockets and servers).
      w.send(message, handle as unknown as net.Socket, callback);
    },
    onAcceptError(code, count) {
      // Out of file descriptors and the like: those connections are lost, the listener keeps going.
      log.error({ code, count }, 'accepting connections failed');
    },
  });
  let ready: () => void = noop;
  let readyCount = 0;
  const allReady = new Promise<void>((resolve) => (ready = resolve));

  cluster.on('message', function onWorkerMessage(from: Worker, m: unknown) {
    if (!isMessage(m)) return;
    const msg = m as FromWorker;
    switch (msg.epc) {
      case 'took':
        dispatcher.answer(from, msg.id, msg.took === true);
        return;
      case 'gone':
        dispatcher.gone(from);
        return;
      case 'ready':
        dispatcher.ready(from);
        if (++readyCount === opts.workers) ready();
        return;
      case 'draining':
        dispatcher.retire(from);
        return;
      case 'invalidated':
        for (const w of workers()) if (w !== from) w.send({ epc: 'drop', id: 0, keys: msg.keys } satisfies ToWorker);
        return;
      case 'reply': {
        const pending = waiting.get(msg.id);
        if (!pending) return;
        pending.values.push(msg.value);
        if (--pending.left === 0) {
          waiting.delete(msg.id);
          pending.done(pending.values);
        }
        return;
      }
      default: {
        const never: never = msg;
        void never;
      }
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

  const deaths: number[] = [];
  function workerDied(w: Worker, code: number | null, signal: string | null): void {
    dispatcher.lost(w);
    if (stopping) {
      if (workers().length === 0) process.exit(0);
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && deaths[0]! < now - 60_000) deaths.shift();
    if (deaths.length > MAX_RESTARTS_PER_MINUTE) {
      process.stderr.write(`edge-page-cache serve: workers keep dying (${deaths.length} in a minute); stopping\n`);
      stopping = true;
      for (const other of workers()) other.process.kill('SIGKILL');
      process.exit(1);
    }
    log.error({ pid: w.process.pid, code, signal }, 'worker died; starting another');
    // Not at once: a worker that could not even start (out of file descriptors) is retried after a pause.
    setTimeout(fork, w.process.pid === undefined ? 1000 : 0);
  }
  function fork(): void {
    if (stopping) return;
    const w = cluster.fork();
    w.on('error', function onWorkerError(err: Error) {
      // A failed spawn (EMFILE, EAGAIN) or a broken channel: without this listener it would end the primary.
      log.error({ err: err.message, pid: w.process.pid }, 'worker error');
      // A worker that never started sends no 'exit': count it as dead here.
      if (w.process.pid === undefined) workerDied(w, null, null);
    });
  }
  for (let i = 0; i < opts.workers; i++) fork();
  cluster.on('disconnect', function onWorkerDisconnect(w) {
    dispatcher.lost(w);
  });
  cluster.on('exit', workerDied);

  // Client connections: accepted here, and handed as raw handles to the workers by the dispatcher.
  const listener = net.createServer();
  const admin =
    opts.adminPort === undefined ? undefined : createAdminServer({ port: opts.adminPort, host: opts.adminHost, token: opts.adminToken }, backend);
  const adminPort = await admin?.listen();
  await allReady;
  let port: number;
  try {
    port = await listenOn(listener, opts.port, opts.host);
  } catch (err) {
    process.stderr.write(
      `edge-page-cache serve: cannot listen on ${opts.host}:${opts.port} (${(err as NodeJS.ErrnoException).code ?? String(err)}: in use, or not an address of this machine); stopping\n`,
    );
    stopping = true;
    for (const w of workers()) w.process.kill('SIGKILL');
    process.exit(1);
  }
  dispatcher.attach(listener);
  log.info({ port, workers: opts.workers, adminPort }, 'edge listening');

  function stop(): void {
    if (stopping) return;
    stopping = true;
    listener.close();
    // Connections accepted already still go to workers; then each worker is told to drain by a message
    // that reaches it after its last handoff, so it takes them all before it starts refusing.
    dispatcher.finish(() => {
      for (const w of workers()) w.send({ epc: 'drain', id: 0 } satisfies ToWorker);
    });
    void admin?.close();
    setTimeout(() => process.exit(0), opts.drainTimeoutMs + 2000).unref();
    if (workers().length === 0) process.exit(0);
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
