// `edge-page-cache serve`: a node:cluster primary with N workers (N = 1 too, so that it can reload). The
// primary listens on the port and hands each client connection to the worker with the fewest open ones
// (ConnectionDispatcher). It owns the admin port and speaks to workers over IPC: purge (a purge reaches every
// worker's L1), health, and metrics (prom-client's AggregatorRegistry). SIGTERM drains in-flight requests,
// then exits; SIGHUP, SIGUSR2 and POST /reload re-read the configuration and replace the workers one at a
// time (reload.ts).
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import net from 'node:net';
import path from 'node:path';
import { AggregatorRegistry, Registry } from 'prom-client';
import { ConfigError } from '../core/errors';
import { componentLogger } from '../core/logger';
import { createAdminServer } from '../edge/admin';
import type { AdminBackend, HealthReport, ReloadReport } from '../edge/admin';
import { resolveEdgeOptions } from '../edge/options';
import type { EdgeOptions, ResolvedEdgeOptions } from '../edge/options';
import { createEdgeServer, requestCounts } from '../edge/server';
import type { EdgeServer } from '../edge/server';
import { listenOn } from '../edge/listen';
import type { ExplainQuery, ExplainReport } from '../edge/explain';
import { mergeSnapshots } from '../edge/stats';
import type { StatsSnapshot } from '../edge/stats';
import { probeMemcachedNodes } from '../edge/health';
import { ConnectionDispatcher } from './dispatch';
import type { ConnectionHandle, ConnMessage } from './dispatch';
import { flagLabel, serveOptionsFromArgv } from './flags';
import { replaceWorkers, restartOnlyChanges } from './reload';

type ToWorker =
  | { epc: 'purge'; id: number; urls: string[]; tags: string[]; soft?: boolean; all?: boolean }
  | { epc: 'evict'; id: number; keys: string[] }
  | { epc: 'health'; id: number }
  | { epc: 'stats'; id: number }
  | { epc: 'explain'; id: number; query: ExplainQuery }
  | { epc: 'statsjson'; id: number }
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

async function drainAndExit(edge: EdgeServer): Promise<never> {
  log.info('draining');
  await edge.close();
  log.info('drained; exiting');
  process.exit(0);
}

/**
 * The options a worker runs with, as chosen by the primary (JSON of EdgeOptions): a reload's workers run the
 * configuration the primary validated, never a file re-read behind its back.
 */
const WORKER_OPTIONS_ENV = 'EDGE_WORKER_OPTIONS';

/** serve's argv + environment (+ --config FILE) -> options. Throws a ConfigError naming the flag. */
export function loadServeOptions(argv: readonly string[], env: NodeJS.ProcessEnv): { input: EdgeOptions; opts: ResolvedEdgeOptions } {
  try {
    const input = serveOptionsFromArgv(argv, env);
    return { input, opts: resolveEdgeOptions(input) };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(flagLabel(err.message));
    throw err;
  }
}

/**
 * `edge-page-cache serve`: the primary (resolves once listening), or in a worker the edge it runs. Even one
 * worker runs behind a primary, so that a reload can start its replacement before it goes (README: the
 * hand-off's cost).
 */
export async function serveCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (cluster.isWorker) {
    const given = env[WORKER_OPTIONS_ENV];
    if (given === undefined) throw new ConfigError(`a serve worker needs ${WORKER_OPTIONS_ENV} from its primary`);
    return worker(resolveEdgeOptions(JSON.parse(given) as EdgeOptions));
  }
  const { input, opts } = loadServeOptions(argv, env);
  return primary(opts, input, () => loadServeOptions(argv, env));
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
        edge.purge(msg.urls, msg.tags, { soft: msg.soft === true, all: msg.all === true }).then(reply, () => reply([]));
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
      case 'statsjson':
        edge.stats.snapshot().then(reply, () => reply(undefined));
        break;
      case 'explain':
        edge.explain(msg.query).then(reply, (err: unknown) => reply({ error: String(err) }));
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
    stopProbe();
    void drainAndExit(edge);
  }
  process.once('SIGTERM', drain);
  process.once('SIGINT', drain);
  // Reload signals are the primary's: a worker that gets one too (sent to the whole process group) keeps
  // serving instead of dying of Node's default action.
  process.on('SIGHUP', noop);
  process.on('SIGUSR2', noop);
  // Health that tells the truth without traffic: each memcached node is asked once per retry interval.
  const stopProbe = probeMemcachedNodes(edge.cache.store, opts.store.memcached, opts.store.memcachedRetryAfterMs);
  tell({ epc: 'ready', id: 0 });
  return Promise.resolve();
}

async function primary(first: ResolvedEdgeOptions, firstInput: EdgeOptions, reread: () => { input: EdgeOptions; opts: ResolvedEdgeOptions }): Promise<void> {
  /** The configuration in force: what new workers (a reload's, or one replacing a dead worker) run with. */
  let opts = first;
  let input = firstInput;
  let stopping = false;
  let seq = 0;
  /** Questions asked of workers: who has yet to answer (a worker that exits meanwhile is not waited for). */
  const waiting = new Map<number, { pending: Set<Worker>; values: unknown[]; done: (v: unknown[]) => void }>();
  /** Workers told to drain (a reload's old ones): their exit is expected, and they are not counted as serving. */
  const retired = new WeakSet<Worker>();
  /** Workers started by a reload and not yet ready: a death before ready fails the reload, not restarted. */
  const starting = new Map<Worker, { ready: () => void; failed: (why: string) => void }>();
  const exits = new Map<Worker, () => void>();
  const reloadState: { generation: number; at: number; error: string | undefined } = { generation: 0, at: 0, error: undefined };
  const workers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const serving = (): Worker[] => workers().filter((w) => !retired.has(w));
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
  // Workers run the command's own file, as it is on disk now: a reload after an upgrade runs the new code.
  cluster.setupPrimary({ exec: path.join(__dirname, 'main.js'), args: ['serve'] });
  // A reload signal before the edge is listening (Node's default for SIGHUP is to exit) waits for it.
  let listening = false;
  let reloadWaiting: string | undefined;
  function onReloadSignal(signal: NodeJS.Signals): void {
    if (listening) void requestReload(signal);
    else reloadWaiting = signal;
  }
  process.on('SIGHUP', onReloadSignal);
  process.on('SIGUSR2', onReloadSignal);

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
      case 'ready': {
        dispatcher.ready(from);
        const waiter = starting.get(from);
        if (waiter !== undefined) {
          starting.delete(from);
          waiter.ready();
        } else if (++readyCount === opts.workers) ready();
        return;
      }
      case 'draining':
        dispatcher.retire(from);
        return;
      case 'invalidated':
        for (const w of workers()) if (w !== from) w.send({ epc: 'drop', id: 0, keys: msg.keys } satisfies ToWorker);
        return;
      case 'reply': {
        const entry = waiting.get(msg.id);
        if (!entry?.pending.delete(from)) return;
        entry.values.push(msg.value);
        if (entry.pending.size === 0) {
          waiting.delete(msg.id);
          entry.done(entry.values);
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
      const entry = { pending: new Set(targets), values: [] as unknown[], done: resolve };
      waiting.set(id, entry);
      setTimeout(() => {
        if (waiting.delete(id)) resolve(entry.values);
      }, 5000).unref();
      for (const w of targets) w.send(make(id));
    });
  }

  const aggregator = new AggregatorRegistry();
  /** The primary's own metrics: the admin port's (it runs here), added to the workers' on /metrics. */
  const own = new Registry();
  const backend: AdminBackend = {
    async health(): Promise<HealthReport> {
      const now = serving();
      const replies = (await ask(now, (id) => ({ epc: 'health', id }))) as HealthReport[];
      return {
        draining: stopping,
        // A node or origin is down when any worker found it down (each worker has its own breakers).
        origins: mergeHealth(replies.map((r) => r.origins), 'url'),
        memcached: mergeHealth(replies.map((r) => r.memcached), 'name'),
        workers: now.length,
        pids: now.map((w) => w.process.pid ?? 0),
        reload: { generation: reloadState.generation, at: reloadState.at, ...(reloadState.error === undefined ? {} : { error: reloadState.error }) },
      };
    },
    async metrics() {
      return { contentType: aggregator.contentType, body: `${await aggregator.clusterMetrics()}\n${await own.metrics()}` };
    },
    async purge(urls, tags, options) {
      const soft = options?.soft === true;
      const all = options?.all === true;
      if (opts.store.memcached.length > 0) {
        // One worker deletes from memcached (and learns the tagged keys); every worker then drops its L1 copies.
        const [keys = []] = (await ask(serving().slice(0, 1), (id) => ({ epc: 'purge', id, urls: [...urls], tags: [...tags], soft, all }))) as string[][];
        await ask(workers(), (id) => ({ epc: 'evict', id, keys }));
        return keys.length;
      }
      // Embedded store: each worker holds its own cache, so each purges its own.
      const each = (await ask(workers(), (id) => ({ epc: 'purge', id, urls: [...urls], tags: [...tags], soft, all }))) as string[][];
      return Math.max(0, ...each.map((k) => k.length));
    },
    async stats() {
      const all = (await ask(workers(), (id) => ({ epc: 'stats', id }))) as Record<string, number>[];
      const requests: Record<string, number> = {};
      for (const r of all) for (const [k, v] of Object.entries(r)) requests[k] = (requests[k] ?? 0) + v;
      return { requests };
    },
    reload: () => requestReload('admin'),
    async statsSnapshot() {
      // Each worker samples its own counters; the primary sums them second by second.
      const all = (await ask(workers(), (id) => ({ epc: 'statsjson', id }))) as (StatsSnapshot | undefined)[];
      return mergeSnapshots(all.filter((x): x is StatsSnapshot => x !== undefined));
    },
    async explain(query) {
      // One worker answers: memcached is shared, and its L1 is one worker's (each holds what it served).
      const [report] = (await ask(serving().slice(0, 1), (id) => ({ epc: 'explain', id, query }))) as ExplainReport[];
      if (report === undefined) throw new Error('no worker answered the explain request');
      return report;
    },
  };

  /** A worker that is gone answers nothing more: questions waiting on it are answered without it. */
  function unanswerable(w: Worker): void {
    for (const [id, entry] of waiting) {
      if (entry.pending.delete(w) && entry.pending.size === 0) {
        waiting.delete(id);
        entry.done(entry.values);
      }
    }
  }

  const deaths: number[] = [];
  function workerDied(w: Worker, code: number | null, signal: string | null): void {
    dispatcher.lost(w);
    unanswerable(w);
    const waiter = starting.get(w);
    if (waiter !== undefined) {
      // A reload's new worker that died before it was ready: the reload fails, the old workers keep serving.
      starting.delete(w);
      waiter.failed(`new worker exited before it was ready (code ${code}, signal ${signal})`);
      return;
    }
    if (retired.has(w)) {
      exits.get(w)?.();
      exits.delete(w);
      if (stopping && workers().length === 0) process.exit(0);
      return;
    }
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
  function fork(): Worker | undefined {
    if (stopping) return undefined;
    const w = cluster.fork({ [WORKER_OPTIONS_ENV]: JSON.stringify(input) });
    w.on('error', function onWorkerError(err: Error) {
      // A failed spawn (EMFILE, EAGAIN) or a broken channel: without this listener it would end the primary.
      log.error({ err: err.message, pid: w.process.pid }, 'worker error');
      // A worker that never started sends no 'exit': count it as dead here.
      if (w.process.pid === undefined) workerDied(w, null, null);
    });
    return w;
  }
  for (let i = 0; i < opts.workers; i++) fork();
  cluster.on('disconnect', function onWorkerDisconnect(w) {
    dispatcher.lost(w);
    unanswerable(w);
  });
  cluster.on('exit', workerDied);

  /** A reload's new worker: resolves once it takes connections, rejects if it dies or stalls first. */
  function startWorker(timeoutMs: number): Promise<Worker> {
    return new Promise((resolve, reject) => {
      const w = fork();
      if (w === undefined) return reject(new Error('stopping'));
      const timer = setTimeout(() => {
        if (!starting.delete(w)) return;
        retired.add(w); // its exit is expected: not a death to replace
        w.process.kill('SIGKILL');
        reject(new Error(`new worker not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      starting.set(w, {
        ready: () => {
          clearTimeout(timer);
          resolve(w);
        },
        failed: (why) => {
          clearTimeout(timer);
          reject(new Error(why));
        },
      });
    });
  }
  /**
   * Drains an old worker: no new connections from now on, then the drain message, which reaches it after
   * every handoff already sent (a channel keeps order), so it takes those before it starts refusing.
   */
  function retireWorker(w: Worker): Promise<void> {
    retired.add(w);
    dispatcher.retire(w);
    return new Promise((resolve) => {
      if (!w.isConnected() || w.process.exitCode !== null) return resolve();
      const timer = setTimeout(() => {
        // Past its own drain deadline: what is left would be cut anyway.
        exits.delete(w);
        w.process.kill('SIGKILL');
        resolve();
      }, opts.drainTimeoutMs + 5000);
      exits.set(w, () => {
        clearTimeout(timer);
        resolve();
      });
      w.send({ epc: 'drain', id: 0 } satisfies ToWorker);
    });
  }

  let reloads: Promise<ReloadReport> = Promise.resolve({ ok: true, generation: 0, pids: [] });
  /** Reloads run one after another: a signal during a reload reloads again once it is done. */
  function requestReload(source: string): Promise<ReloadReport> {
    reloads = reloads.then(() => reload(source));
    return reloads;
  }
  async function reload(source: string): Promise<ReloadReport> {
    if (stopping) return { ok: false, error: 'stopping', generation: reloadState.generation, pids: [] };
    let next: { input: EdgeOptions; opts: ResolvedEdgeOptions };
    try {
      next = reread();
    } catch (err) {
      const why = (err as Error).message;
      reloadState.error = `configuration refused: ${why}`;
      log.error({ source, err: why }, 'reload refused: the configuration does not validate; the workers keep serving');
      return { ok: false, error: reloadState.error, generation: reloadState.generation, pids: serving().map((w) => w.process.pid ?? 0) };
    }
    for (const name of restartOnlyChanges(opts, next.opts)) log.warn({ source, option: name }, 'reload: this option changes only on a restart; kept');
    const before = { input, opts };
    input = next.input;
    opts = { ...next.opts, port: before.opts.port, host: before.opts.host, adminPort: before.opts.adminPort, adminHost: before.opts.adminHost };
    admin?.setToken(opts.adminToken, opts.siteTokens);
    log.info({ source, workers: opts.workers }, 'reload: replacing workers one at a time');
    const result = await replaceWorkers(serving(), opts.workers, { start: () => startWorker(30_000), retire: retireWorker });
    if (result.error !== undefined) {
      // The workers not replaced yet keep the old configuration; so do the ones started after this.
      input = before.input;
      opts = before.opts;
      admin?.setToken(opts.adminToken, opts.siteTokens);
      reloadState.error = `reload failed: ${result.error}`;
      log.error({ source, err: result.error, replaced: result.replaced }, 'reload failed; the workers not replaced keep serving');
      return { ok: false, error: reloadState.error, generation: reloadState.generation, pids: serving().map((w) => w.process.pid ?? 0) };
    }
    reloadState.generation++;
    reloadState.at = Date.now();
    reloadState.error = undefined;
    const pids = serving().map((w) => w.process.pid ?? 0);
    log.info({ source, generation: reloadState.generation, pids }, 'reloaded');
    return { ok: true, generation: reloadState.generation, pids };
  }

  // Client connections: accepted here, and handed as raw handles to the workers by the dispatcher.
  const listener = net.createServer();
  const admin =
    opts.adminPort === undefined ? undefined : createAdminServer({ port: opts.adminPort, host: opts.adminHost, token: opts.adminToken, siteTokens: opts.siteTokens, registry: own }, backend);
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
  log.info({ port, host: opts.host, workers: opts.workers, adminPort, origins: opts.origins.map((o) => o.base), memcached: opts.store.memcached.map((s) => s.name) }, 'edge listening');
  if (opts.hosts === undefined && !isLoopbackAddress(opts.host)) {
    // Any Host is served and forwarded: a name pointed at this address by someone else gets its pages keyed and fetched too.
    log.warn({ host: opts.host }, 'serving any Host on a non-loopback address: set --hosts to the sites this edge serves');
  }

  function stop(): void {
    if (stopping) return;
    stopping = true;
    listener.close();
    // Connections accepted already still go to workers; then each worker is told to drain by a message
    // that reaches it after its last handoff, so it takes them all before it starts refusing.
    dispatcher.finish(() => {
      for (const w of workers()) w.send({ epc: 'drain', id: 0 } satisfies ToWorker);
    });
    // The admin port stays open until the exit, so health checks see 'draining' (503) meanwhile.
    setTimeout(() => process.exit(0), opts.drainTimeoutMs + 2000).unref();
    if (workers().length === 0) process.exit(0);
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  listening = true;
  if (reloadWaiting !== undefined) void requestReload(reloadWaiting);
}

/**
 * One list from every worker's view of the origins or memcached nodes: down when any worker found it down
 * (workers keep their own health state; the worst is what an operator needs to see).
 */
function mergeHealth<T extends { readonly up: boolean }>(lists: readonly (readonly T[])[], by: keyof T): T[] {
  const out = new Map<unknown, T>();
  for (const list of lists) {
    for (const item of list) {
      const seen = out.get(item[by]);
      if (seen === undefined || (seen.up && !item.up)) out.set(item[by], item);
    }
  }
  return [...out.values()];
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
