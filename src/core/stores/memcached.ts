// memcached through memjs: one client per node, keys routed by the nginx-compatible ring, a timeout on
// every call and a circuit breaker per node, so a dead node costs one call and a hanging one a few timeouts, then is skipped
// (a miss, a write not made) until a probe finds it answering again. Never throws to callers.
import memjs from 'memjs';
import { StoreTimeoutError, StoreUnavailableError, toError } from '../errors';
import { componentLogger, RateLimitedLog } from '../logger';
import { cacheMetrics } from '../metrics';
import type { CacheMetrics, StoreOp } from '../metrics';
import { createHashRing } from '../ring';
import type { ServerAddress } from '../ring';
import { storedValue } from '../store';
import type { CacheStore, NodeHealth, StoredValue } from '../store';

export interface MemcachedStoreOptions {
  servers: readonly ServerAddress[];
  /** Per-call deadline in ms (connect gets twice this). Default 100. */
  timeoutMs?: number;
  /** How long a failed node is skipped before one probe call is let through, in ms. Default 2000. */
  retryAfterMs?: number;
  /** Timeouts in a row (no success between) that open a node's breaker; connection errors open it at once. Default 3. */
  timeoutsToOpen?: number;
  /** memcached's item size limit; larger values are not sent. Default 1 MiB (memcached's -I default). */
  maxItemBytes?: number;
  metrics?: CacheMetrics;
  now?: () => number;
}

/** A value with memcached flags, handed through memjs's serializer hook (memjs has no flags argument). */
class Flagged {
  constructor(
    readonly value: Buffer,
    readonly flags: number,
  ) {}
}

const FLAG_SERIALIZER = {
  serialize(_opcode: number, value: unknown, extras: Buffer): { value: unknown; extras: Buffer } {
    if (value instanceof Flagged) {
      // extras is [flags u32][expiry u32] for set/add; memjs writes zero flags, we write ours.
      extras.writeUInt32BE(value.flags >>> 0, 0);
      return { value: value.value, extras };
    }
    return { value, extras };
  },
  deserialize(_opcode: number, value: unknown, extras: unknown): { value: unknown; extras: unknown } {
    return { value, extras };
  },
};

const NOOP_LOGGER = { log(): void {} };

/** A memcached call not answered yet; the sweep gives it up when memjs has lost it. */
interface Pending {
  /** performance.now() when sent (a monotonic clock: a wall-clock step neither ends nor prolongs calls). */
  readonly startedAt: number;
  giveUp(err: Error): void;
}

type Answer = (read: Read, err: Error | null, value: Buffer | null, flags: Buffer | null) => void;

/** One get on the wire, shared by every get of its key that comes while it is. */
class Read implements Pending {
  settled = false;
  resolve: (value: StoredValue | undefined) => void = noop;
  readonly promise: Promise<StoredValue | undefined>;
  constructor(
    readonly key: string,
    readonly node: Node,
    readonly startedAt: number,
    private readonly answer: Answer,
  ) {
    this.promise = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }
  giveUp(err: Error): void {
    this.answer(this, err, null, null);
  }
}

/** A write (set, add, append, delete) through memjs's promise form, which the sweep can end as well. */
class Write<T> implements Pending {
  settled = false;
  resolve: (value: T) => void = noop;
  reject: (err: Error) => void = noop;
  readonly promise: Promise<T>;
  constructor(
    readonly startedAt: number,
    private readonly unanswered: Set<Pending>,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
  /** The first answer (memjs's, or the sweep's) wins; false for any later one. */
  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.unanswered.delete(this);
    return true;
  }
  succeed(value: T): void {
    if (this.finish()) this.resolve(value);
  }
  giveUp(err: Error): void {
    if (this.finish()) this.reject(err);
  }
}

function noop(): void {}
const MISS: Promise<undefined> = Promise.resolve(undefined);
/** memcached reads expiries above 30 days as a unix time. */
const MAX_RELATIVE_TTL = 60 * 60 * 24 * 30;

interface Node {
  readonly address: ServerAddress;
  readonly client: memjs.Client;
  failures: number;
  retryAt: number;
  probing: boolean;
  /** When the last timeout was counted (timeouts within timeoutMs of it are the same stall). */
  lastTimeoutAt: number;
  readonly up: { set(v: number): void };
}

/** memjs reports a status memcached sent back as an Error whose message starts with 'MemJS <OP>:'. */
function isServerAnswer(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('MemJS ');
}

function classify(err: unknown, node: Node): Error {
  const e = toError(err);
  if (/timed out/i.test(e.message)) return new StoreTimeoutError(`memcached ${node.address.name} timed out`, { cause: e });
  return new StoreUnavailableError(`memcached ${node.address.name}: ${e.message}`, { cause: e });
}

export function createMemcachedStore(options: MemcachedStoreOptions): CacheStore {
  const timeoutMs = options.timeoutMs ?? 100;
  const retryAfterMs = options.retryAfterMs ?? 2000;
  const timeoutsToOpen = options.timeoutsToOpen ?? 3;
  const maxItemBytes = options.maxItemBytes ?? 1024 * 1024;
  const metrics = options.metrics ?? cacheMetrics();
  const now = options.now ?? Date.now;
  const log = new RateLimitedLog(componentLogger('memcached'));
  const ring = createHashRing(options.servers);
  const nodes: Node[] = options.servers.map((address, index) => {
    const client = memjs.Client.create(`placeholder:${address.port}`, {
      retries: 1,
      timeout: timeoutMs / 1000,
      conntimeout: (2 * timeoutMs) / 1000,
      keepAlive: true,
      failover: false,
      logger: NOOP_LOGGER,
      serializer: FLAG_SERIALIZER,
    } as memjs.ClientOptions);
    // memjs parses 'host:port' by splitting on ':', which breaks IPv6: set the server's host directly.
    const server = (client as unknown as { servers: { host: string }[] }).servers[0];
    if (server) server.host = address.host;
    const up = metrics.nodeUp.labels(String(index));
    up.set(1);
    return { address, client, failures: 0, retryAt: 0, probing: false, lastTimeoutAt: 0, up };
  });
  const hitCounter = metrics.storeOps.labels('l2', 'get', 'hit');
  const missCounter = metrics.storeOps.labels('l2', 'get', 'miss');
  const tooBig = metrics.notStored.labels('too-large');
  const joined = metrics.storeOps.labels('l2', 'get', 'joined');
  /**
   * Reads on the wire, by key, oldest first. A write from this process drops its key's entry first, so a
   * read that begins after a write never joins one that began before it (it could return the old bytes).
   */
  const inflight = new Map<string, Read>();
  /** Every call not yet answered (reads joinable or not: a write makes them unjoinable), oldest first. */
  const unanswered = new Set<Pending>();

  /** A memjs promise, ended as a timeout by the sweep if memjs never settles it. */
  function tracked<T>(call: Promise<T>): Promise<T> {
    const w = new Write<T>(performance.now(), unanswered);
    unanswered.add(w);
    call.then(
      (v) => w.succeed(v),
      (err: unknown) => w.giveUp(toError(err)),
    );
    return w.promise;
  }

  function answered(read: Read, err: Error | null, value: Buffer | null, flags: Buffer | null): void {
    if (read.settled) return; // given up already (see giveUpLost)
    read.settled = true;
    unanswered.delete(read);
    if (inflight.get(read.key) === read) inflight.delete(read.key);
    const node = read.node;
    if (err !== null) {
      failed(node, 'get', err);
      read.resolve(undefined);
      return;
    }
    ok(node);
    if (value === null) {
      missCounter.inc();
      read.resolve(undefined);
      return;
    }
    hitCounter.inc();
    read.resolve(storedValue(value, flags !== null && flags.length >= 4 ? flags.readUInt32BE(0) : 0));
  }

  // memjs forgets the calls in flight when memcached closes a connection cleanly (no error, no timeout
  // fires on the closed socket): their callbacks never come. A call so old that memjs's own timeouts
  // would have ended it is given up as a timeout, so no client (nor a fill lock, nor those that joined a
  // read) waits forever. One sweep per timeoutMs, not a timer per call.
  const lostAfterMs = 6 * timeoutMs;
  function giveUpLost(): void {
    const t = performance.now();
    for (const call of unanswered) {
      if (t - call.startedAt < lostAfterMs) break; // oldest first: the rest are younger
      call.giveUp(new Error(`memcached call timed out (no answer in ${lostAfterMs} ms)`));
    }
  }
  const sweeper = setInterval(giveUpLost, Math.max(50, timeoutMs));
  sweeper.unref();

  /** The node for a key, or undefined while its breaker is open (the call is skipped at once). */
  function pick(key: string, op: StoreOp): Node | undefined {
    const node = nodes[ring.nodeFor(key)]!;
    if (node.retryAt === 0) return node;
    if (now() >= node.retryAt && !node.probing) {
      node.probing = true; // half-open: this one call probes, the rest keep skipping
      return node;
    }
    metrics.storeOps.labels('l2', op, 'skipped').inc();
    return undefined;
  }

  function ok(node: Node): void {
    if (node.retryAt !== 0 || node.failures !== 0) {
      node.failures = 0;
      node.retryAt = 0;
      node.up.set(1);
    }
    node.probing = false;
  }

  function failed(node: Node, op: StoreOp, err: unknown): void {
    const e = classify(err, node);
    if (isServerAnswer(err)) {
      // memcached answered (out of memory, value too large...): the node is alive, so its breaker stays
      // closed; only this write is lost. Counted all the same.
      node.probing = false;
      metrics.storeErrors.labels('l2', op, 'ERR_STORE').inc();
      log.warn({ node: node.address.name, op, err: e.message }, 'memcached refused a write');
      return;
    }
    const probe = node.probing || node.retryAt !== 0;
    node.probing = false;
    metrics.storeErrors.labels('l2', op, (e as StoreTimeoutError).code).inc();
    // A refused or reset connection opens the breaker at once. A timeout may be our own busy event loop
    // (a GC pause) rather than the node, so only timeoutsToOpen of them in a row (no success between) do;
    // memjs fails every call in flight at once on a timeout, and those count as one.
    if (e instanceof StoreTimeoutError && !probe) {
      const t = now();
      if (t - node.lastTimeoutAt < timeoutMs / 2) return;
      node.lastTimeoutAt = t;
      node.failures++;
      if (node.failures < timeoutsToOpen) {
        log.warn({ node: node.address.name, op, err: e.message, failures: node.failures }, 'memcached call timed out');
        return;
      }
    } else {
      node.failures++;
    }
    node.retryAt = now() + retryAfterMs;
    node.up.set(0);
    log.warn({ node: node.address.name, op, err: e.message }, 'memcached call failed; node skipped until retry');
  }

  function expiry(ttlSeconds: number): number {
    if (ttlSeconds <= 0) return 0;
    const t = Math.ceil(ttlSeconds);
    return t <= MAX_RELATIVE_TTL ? t : Math.floor(now() / 1000) + t;
  }

  async function write(op: 'set' | 'add', key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean | undefined> {
    inflight.delete(key);
    if (value.length > maxItemBytes) {
      tooBig.inc();
      return false;
    }
    const node = pick(key, op);
    if (node === undefined) return undefined;
    // memjs treats expires 0 as "use the client default" (also 0), so 0 still means no expiry.
    const payload = new Flagged(value, flags) as unknown as Buffer;
    try {
      const result = await tracked(node.client[op](key, payload, { expires: expiry(ttlSeconds) }));
      ok(node);
      return result === true;
    } catch (err) {
      failed(node, op, err);
      return undefined;
    }
  }

  return {
    kind: 'memcached',
    getSync(): StoredValue | undefined {
      return undefined;
    },
    get(key: string): Promise<StoredValue | undefined> {
      // A read of this key already on the wire: join it. A hot page asked for by many clients at once
      // costs one memcached round trip, not one per client, and is decoded once for all of them.
      // Only a read younger than timeoutMs is joined: one held up behind a stall is not waited on by more.
      const pending = inflight.get(key);
      if (pending !== undefined && performance.now() - pending.startedAt < timeoutMs) {
        joined.inc();
        return pending.promise;
      }
      const node = pick(key, 'get');
      if (node === undefined) return MISS;
      // memjs's callback form: its own promise form adds two more layers, and this is the L2 hit path.
      const read = new Read(key, node, performance.now(), answered);
      node.client.get(key, function got(err: Error | null, value: Buffer | null, flags: Buffer | null) {
        answered(read, err, value, flags);
      });
      // (memjs may answer synchronously, on a connection already failed: then there is nothing to join.)
      if (!read.settled) {
        inflight.set(key, read);
        unanswered.add(read);
      }
      return read.promise;
    },
    async set(key, value, flags, ttlSeconds): Promise<boolean> {
      return (await write('set', key, value, flags, ttlSeconds)) === true;
    },
    add(key, value, flags, ttlSeconds): Promise<boolean | undefined> {
      return write('add', key, value, flags, ttlSeconds);
    },
    async append(key: string, value: Buffer): Promise<boolean> {
      inflight.delete(key);
      if (value.length > maxItemBytes) return false;
      const node = pick(key, 'set');
      if (node === undefined) return false;
      try {
        const result = await tracked(node.client.append(key, value));
        ok(node);
        return result === true;
      } catch (err) {
        // memcached answers NOT_STORED when the key is absent; memjs reports that as an error, but the
        // node is healthy, so this is a plain "false", not a fault.
        if (/not stored/i.test(toError(err).message)) {
          ok(node);
          return false;
        }
        failed(node, 'set', err);
        return false;
      }
    },
    async delete(key: string): Promise<boolean> {
      inflight.delete(key);
      const node = pick(key, 'delete');
      if (node === undefined) return false;
      try {
        const result = await tracked(node.client.delete(key));
        ok(node);
        return result === true;
      } catch (err) {
        failed(node, 'delete', err);
        return false;
      }
    },
    evictLocal(key: string): void {
      // Another process changed this key (a purge or write heard from it): later gets read anew.
      inflight.delete(key);
    },
    health(): readonly NodeHealth[] {
      return nodes.map((n) => ({
        name: n.address.name,
        up: n.retryAt === 0,
        failures: n.failures,
        retryAt: n.retryAt,
      }));
    },
    close(): Promise<void> {
      clearInterval(sweeper);
      // memjs's close does not end the calls it has lost: end them here, so nobody waits on a closed store.
      for (const call of unanswered) call.giveUp(new Error('memcached store closed'));
      for (const n of nodes) n.client.close();
      return Promise.resolve();
    },
  };
}
