// The memcached CacheStore: keys routed to a node by the nginx-compatible ring, a timeout on every call and
// a circuit breaker per node (breaker.ts), so a dead node costs one call and a hanging one a few timeouts,
// then is skipped (a miss, a write not made) until a probe finds it answering again. Concurrent reads of a
// key share one call. Never throws to callers. The memjs client and its workarounds are memjs-adapter.ts's.
// Envelope values over the item size are written as chunks on the page key's node (chunks.ts).
import { ENVELOPE_FLAG } from '../entry';
import { StoreTimeoutError } from '../errors';
import { componentLogger, RateLimitedLog } from '../logger';
import { cacheMetrics } from '../metrics';
import type { CacheMetrics, StoreOp } from '../metrics';
import { createHashRing } from '../ring';
import type { ServerAddress } from '../ring';
import { storedValue } from '../store';
import type { CacheStore, NodeHealth, StoredValue } from '../store';
import { NodeBreaker } from './breaker';
import { CHUNKED_FLAG, chunkBytesFor, chunkKey, decodeManifest, encodeManifest, joinChunks, splitValue } from './chunks';
import type { Manifest } from './chunks';
import { createCallTracker, isNotStored, isServerAnswer, MemjsConnection, storeError } from './memjs-adapter';
import type { Pending } from './memjs-adapter';

export interface MemcachedStoreOptions {
  servers: readonly ServerAddress[];
  /** Per-call deadline in ms (connect gets twice this). Default 100. */
  timeoutMs?: number;
  /** How long a failed node is skipped before one probe call is let through, in ms. Default 2000. */
  retryAfterMs?: number;
  /** Timeouts in a row (no success between) that open a node's breaker; connection errors open it at once. Default 3. */
  timeoutsToOpen?: number;
  /**
   * memcached's item size limit (its -I). Default 1 MiB (memcached's default). Envelope values over it are
   * stored as chunks of at most this size with a manifest at the key; other (raw) values over it are not sent.
   */
  maxItemBytes?: number;
  metrics?: CacheMetrics;
  now?: () => number;
}

interface Node {
  readonly address: ServerAddress;
  readonly connection: MemjsConnection;
  readonly breaker: NodeBreaker;
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

/** The chunk gets of one manifest read, answered into `got` by index; done once all are in or the deadline passes. */
class ChunkRead {
  private readonly got: { value: Buffer | null; flags: number }[];
  private left: number;
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    readonly read: Read,
    private readonly manifest: Manifest,
    readonly flags: number,
    private readonly deadlineMs: number,
    private readonly finished: (r: ChunkRead, whole: Buffer | undefined) => void,
  ) {
    this.got = new Array<{ value: Buffer | null; flags: number }>(manifest.count);
    this.left = manifest.count;
  }
  start(): void {
    this.timer = setTimeout(() => this.finish(), this.deadlineMs);
    const key = this.read.key;
    for (let i = 0; i < this.manifest.count; i++) {
      this.read.node.connection.get(chunkKey(key, this.manifest.generation, i), (err, value, flags) => this.answer(i, err, value, flags));
    }
  }
  private answer(i: number, err: Error | null, value: Buffer | null, flags: Buffer | null): void {
    this.got[i] = { value: err === null ? value : null, flags: flags !== null && flags.length >= 4 ? flags.readUInt32BE(0) : 0 };
    if (--this.left === 0) this.finish();
  }
  private finish(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.finished(this, this.left === 0 ? joinChunks(this.manifest, this.got) : undefined);
  }
}

function noop(): void {}
const MISS: Promise<undefined> = Promise.resolve(undefined);
/** memcached reads expiries above 30 days as a unix time. */
const MAX_RELATIVE_TTL = 60 * 60 * 24 * 30;

export function createMemcachedStore(options: MemcachedStoreOptions): CacheStore {
  const timeoutMs = options.timeoutMs ?? 100;
  const maxItemBytes = options.maxItemBytes ?? 1024 * 1024;
  const chunkBytes = chunkBytesFor(maxItemBytes);
  const metrics = options.metrics ?? cacheMetrics();
  const now = options.now ?? Date.now;
  const breakerOptions = {
    timeoutMs,
    retryAfterMs: options.retryAfterMs ?? 2000,
    timeoutsToOpen: options.timeoutsToOpen ?? 3,
    now,
  };
  const log = new RateLimitedLog(componentLogger('memcached'));
  const ring = createHashRing(options.servers);
  /** Every call not yet answered (reads joinable or not: a write makes them unjoinable), oldest first. */
  const calls = createCallTracker(timeoutMs);
  const nodes: Node[] = options.servers.map((address, index) => ({
    address,
    connection: new MemjsConnection(address, timeoutMs, calls),
    breaker: new NodeBreaker(breakerOptions, metrics.nodeUp.labels(String(index))),
  }));
  const hitCounter = metrics.storeOps.labels('l2', 'get', 'hit');
  const missCounter = metrics.storeOps.labels('l2', 'get', 'miss');
  const tooBig = metrics.notStored.labels('too-large');
  const joined = metrics.storeOps.labels('l2', 'get', 'joined');
  /** A manifest whose chunks are not all there and intact: a miss. */
  const chunkMiss = metrics.storeOps.labels('l2', 'get', 'chunk-miss');
  /**
   * Reads on the wire, by key, oldest first. A write from this process drops its key's entry first, so a
   * read that begins after a write never joins one that began before it (it could return the old bytes).
   */
  const inflight = new Map<string, Read>();

  function answered(read: Read, err: Error | null, value: Buffer | null, flags: Buffer | null): void {
    if (read.settled) return; // given up already (by the call tracker's sweep)
    read.settled = true;
    calls.answered(read);
    if (inflight.get(read.key) === read) inflight.delete(read.key);
    const node = read.node;
    if (err !== null) {
      failed(node, 'get', err);
      read.resolve(undefined);
      return;
    }
    node.breaker.succeeded();
    if (value === null) {
      missCounter.inc();
      read.resolve(undefined);
      return;
    }
    const f = flags !== null && flags.length >= 4 ? flags.readUInt32BE(0) : 0;
    if ((f & CHUNKED_FLAG) !== 0 && (f & ENVELOPE_FLAG) !== 0) {
      readChunks(read, value, f);
      return;
    }
    hitCounter.inc();
    read.resolve(storedValue(value, f));
  }

  /**
   * The value a manifest describes: every chunk asked for at once on the page key's node (memjs has no
   * multi-get, but it writes each get to the socket as it is asked, so they go out together), then checked
   * (chunks.ts). Anything missing, mismatched, failed or late is a miss, so the page is fetched and stored anew.
   */
  function readChunks(read: Read, manifestBytes: Buffer, flags: number): void {
    const m = decodeManifest(manifestBytes);
    if (m === undefined) {
      chunkMiss.inc();
      read.resolve(undefined);
      return;
    }
    new ChunkRead(read, m, flags, Math.max(4 * timeoutMs, 250), chunksRead).start();
  }

  function chunksRead(r: ChunkRead, whole: Buffer | undefined): void {
    if (whole === undefined) {
      chunkMiss.inc();
      r.read.resolve(undefined);
      return;
    }
    hitCounter.inc();
    r.read.resolve(storedValue(whole, r.flags & ~CHUNKED_FLAG));
  }

  /** Chunks first, then the manifest that points at them, so a reader never finds a manifest before its chunks. */
  async function writeChunked(key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean | undefined> {
    const { manifest, chunks } = splitValue(value, chunkBytes);
    if (manifest.count > 0xffff) {
      tooBig.inc();
      return false;
    }
    // Routed by the page key: a page's chunks live on its node, so a node lost loses whole pages only.
    const node = pick(key, 'set');
    if (node === undefined) return undefined;
    const expires = expiry(ttlSeconds);
    try {
      const written = await Promise.all(chunks.map((c, i) => node.connection.write('set', chunkKey(key, manifest.generation, i), c, manifest.generation, expires)));
      if (!written.every((w) => w)) return false;
      const result = await node.connection.write('set', key, encodeManifest(manifest), flags | CHUNKED_FLAG, expires);
      node.breaker.succeeded();
      return result === true;
    } catch (err) {
      failed(node, 'set', err);
      return undefined;
    }
  }

  /** The node for a key, or undefined while its breaker is open (the call is skipped at once). */
  function pick(key: string, op: StoreOp): Node | undefined {
    const node = nodes[ring.nodeFor(key)]!;
    if (node.breaker.admit()) return node;
    metrics.storeOps.labels('l2', op, 'skipped').inc();
    return undefined;
  }

  function failed(node: Node, op: StoreOp, err: unknown): void {
    const e = storeError(err, node.address.name);
    if (isServerAnswer(err)) {
      // memcached answered (out of memory, value too large...): the node is alive, so its breaker stays
      // closed; only this write is lost. Counted all the same.
      node.breaker.refused();
      metrics.storeErrors.labels('l2', op, 'ERR_STORE').inc();
      log.warn({ node: node.address.name, op, err: e.message }, 'memcached refused a write');
      return;
    }
    metrics.storeErrors.labels('l2', op, e.code).inc();
    const verdict = node.breaker.failed(e instanceof StoreTimeoutError);
    switch (verdict) {
      case 'same-stall':
        return;
      case 'counted':
        log.warn({ node: node.address.name, op, err: e.message, failures: node.breaker.failures }, 'memcached call timed out');
        return;
      case 'opened':
        log.warn({ node: node.address.name, op, err: e.message }, 'memcached call failed; node skipped until retry');
        return;
      default: {
        const never: never = verdict;
        void never;
      }
    }
  }

  function expiry(ttlSeconds: number): number {
    if (ttlSeconds <= 0) return 0;
    const t = Math.ceil(ttlSeconds);
    return t <= MAX_RELATIVE_TTL ? t : Math.floor(now() / 1000) + t;
  }

  async function write(op: 'set' | 'add', key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean | undefined> {
    inflight.delete(key);
    if (value.length > maxItemBytes) {
      // Envelope entries are chunked; raw ones stay one item (nginx reads one item), so they are not stored.
      if (op === 'set' && (flags & ENVELOPE_FLAG) !== 0) return writeChunked(key, value, flags, ttlSeconds);
      tooBig.inc();
      return false;
    }
    const node = pick(key, op);
    if (node === undefined) return undefined;
    try {
      const result = await node.connection.write(op, key, value, flags, expiry(ttlSeconds));
      node.breaker.succeeded();
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
      const read = new Read(key, node, performance.now(), answered);
      node.connection.get(key, function got(err: Error | null, value: Buffer | null, flags: Buffer | null) {
        answered(read, err, value, flags);
      });
      // (memjs may answer synchronously, on a connection already failed: then there is nothing to join.)
      if (!read.settled) {
        inflight.set(key, read);
        calls.watch(read);
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
        const result = await node.connection.append(key, value);
        node.breaker.succeeded();
        return result === true;
      } catch (err) {
        // memcached answers NOT_STORED when the key is absent; memjs reports that as an error, but the
        // node is healthy, so this is a plain "false", not a fault.
        if (isNotStored(err)) {
          node.breaker.succeeded();
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
        const result = await node.connection.delete(key);
        node.breaker.succeeded();
        return result === true;
      } catch (err) {
        failed(node, 'delete', err);
        return false;
      }
    },
    suspect(key: string): boolean {
      const b = nodes[ring.nodeFor(key)]!.breaker;
      return b.failures > 0 || b.retryAt !== 0;
    },
    evictLocal(key: string): void {
      // Another process changed this key (a purge or write heard from it): later gets read anew.
      inflight.delete(key);
    },
    health(): readonly NodeHealth[] {
      return nodes.map((n) => ({
        name: n.address.name,
        up: n.breaker.retryAt === 0,
        failures: n.breaker.failures,
        retryAt: n.breaker.retryAt,
      }));
    },
    close(): Promise<void> {
      calls.close();
      for (const n of nodes) n.connection.close();
      return Promise.resolve();
    },
  };
}
