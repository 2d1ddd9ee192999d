// memjs, one client per memcached node, and what we work around in it: it has no flags argument (a
// serializer hook writes ours), it splits 'host:port' on ':' (IPv6), it reports memcached's status answers
// as Errors told apart only by their text, and it forgets calls when a connection closes cleanly (every
// call is tracked here and given up by a sweep). Routing and the breaker are memcached.ts's.
import type { Socket } from 'node:net';
import memjs from 'memjs';
import { StoreTimeoutError, StoreUnavailableError, toError } from '../errors';
import type { ServerAddress } from '../ring';

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

/** memjs logs to the console on its own; our failures are counted and logged (rate-limited) by the store. */
const NOOP_LOGGER = { log(): void {} };

/** A memcached call not answered yet; the sweep gives it up when memjs has lost it. */
export interface Pending {
  /** performance.now() when sent (a monotonic clock: a wall-clock step neither ends nor prolongs calls). */
  readonly startedAt: number;
  giveUp(err: Error): void;
}

/** Every memcached call of a store not answered yet, oldest first, and the sweep that ends the lost ones. */
export interface CallTracker {
  /** Watches a call made through a callback; its answer must call `answered`. */
  watch(call: Pending): void;
  answered(call: Pending): void;
  /** A memjs promise, ended as a timeout by the sweep if memjs never settles it. */
  track<T>(call: Promise<T>): Promise<T>;
  /** Stops the sweep and gives up every call still unanswered (memjs's close does not end them). */
  close(): void;
}

function noop(): void {}

/** A call through memjs's promise form (set, add, append, delete), which the sweep can end as well. */
class Tracked<T> implements Pending {
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

export function createCallTracker(timeoutMs: number): CallTracker {
  /** Insertion order is send order, so the sweep can stop at the first call young enough. */
  const unanswered = new Set<Pending>();
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
  return {
    watch(call: Pending): void {
      unanswered.add(call);
    },
    answered(call: Pending): void {
      unanswered.delete(call);
    },
    track<T>(call: Promise<T>): Promise<T> {
      const w = new Tracked<T>(performance.now(), unanswered);
      unanswered.add(w);
      call.then(
        (v) => w.succeed(v),
        (err: unknown) => w.giveUp(toError(err)),
      );
      return w.promise;
    },
    close(): void {
      clearInterval(sweeper);
      for (const call of unanswered) call.giveUp(new Error('memcached store closed'));
    },
  };
}

/** The part of memjs's Server this adapter reaches into. */
interface MemjsServer {
  host: string;
  responseBuffer: Buffer;
  appendToBuffer(data: Buffer): Buffer;
  _socket?: Socket;
  sock(sasl: boolean, go: (socket: Socket) => void): void;
}

/**
 * memjs leaves Nagle's algorithm on: a small request written while an earlier one is unacknowledged waits
 * for its ACK, which the kernel may delay by up to 40 ms. A miss makes several calls in a row (get, lock
 * add, set, tag appends, lock delete), so misses waited on the network with the CPU idle (1,300 misses/s
 * against an origin doing 14,000, 68 % idle in the profile). Every socket memjs opens gets TCP_NODELAY.
 */
function noDelay(server: MemjsServer): void {
  const sock = server.sock;
  server.sock = function sockNoDelay(this: MemjsServer, sasl: boolean, go: (socket: Socket) => void): void {
    const fresh = this._socket === undefined;
    sock.call(this, sasl, go);
    if (fresh) this._socket?.setNoDelay(true);
  };
}

/**
 * memjs gathers what memcached sends in `responseBuffer`, and for every chunk read from the socket it
 * allocates a zeroed Buffer the size of what it holds plus the chunk and copies both in, even when it
 * holds nothing (the usual case: a read ends on a response boundary). On the L2 hit path that doubled the
 * Buffer bytes allocated per hit (a 10 KB page: the socket's read, then memjs's copy of it), and V8 answers
 * external memory growth with collections: `--trace-gc` showed a scavenge or mark-compact "for external
 * memory pressure" every 70-300 ms serving 2,000 distinct pages from memcached. Here a chunk read on an
 * empty buffer is kept as it is (values are slices of it, as they were of the copy), and a partial
 * response is joined with the next chunk without zero-filling.
 */
function appendWithoutCopy(this: { responseBuffer: Buffer }, data: Buffer): Buffer {
  const held = this.responseBuffer;
  this.responseBuffer = held.length === 0 ? data : Buffer.concat([held, data], held.length + data.length);
  return this.responseBuffer;
}

export type GetCallback = (err: Error | null, value: Buffer | null, flags: Buffer | null) => void;

/** One memcached node through its own memjs client; writes are tracked, a get is the caller's to watch. */
export class MemjsConnection {
  private readonly client: memjs.Client;
  private readonly server: MemjsServer | undefined;
  /** The socket corked for this turn of the event loop, until `flush` runs. */
  private corked: Socket | undefined = undefined;
  private readonly flush = (): void => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };
  constructor(
    address: ServerAddress,
    timeoutMs: number,
    private readonly calls: CallTracker,
  ) {
    this.client = memjs.Client.create(`placeholder:${address.port}`, {
      retries: 1,
      timeout: timeoutMs / 1000,
      conntimeout: (2 * timeoutMs) / 1000,
      keepAlive: true,
      failover: false,
      logger: NOOP_LOGGER,
      serializer: FLAG_SERIALIZER,
    } as memjs.ClientOptions);
    // memjs parses 'host:port' by splitting on ':', which breaks IPv6: set the server's host directly.
    const server = (this.client as unknown as { servers: MemjsServer[] }).servers[0];
    this.server = server;
    if (server) {
      server.host = address.host;
      noDelay(server);
      server.appendToBuffer = appendWithoutCopy;
    }
  }

  /**
   * memjs's callback form: its own promise form adds two more layers, and this is the L2 hit path. memjs
   * may call back synchronously (on a connection already failed). Not tracked: the caller watches it.
   */
  get(key: string, callback: GetCallback): void {
    this.batch();
    this.client.get(key, callback);
  }

  /** `expires` as memcached reads it (0: no expiry; memjs reads 0 as its default, which is also 0). */
  write(op: 'set' | 'add', key: string, value: Buffer, flags: number, expires: number): Promise<boolean> {
    const payload = new Flagged(value, flags) as unknown as Buffer; // unwrapped by FLAG_SERIALIZER
    this.batch();
    return this.calls.track(this.client[op](key, payload, { expires }));
  }

  append(key: string, value: Buffer): Promise<boolean> {
    this.batch();
    return this.calls.track(this.client.append(key, value));
  }

  delete(key: string): Promise<boolean> {
    this.batch();
    return this.calls.track(this.client.delete(key));
  }

  /**
   * Calls made in one turn of the event loop go out in one write: the connection is corked at the first
   * and uncorked once the turn's I/O callbacks have run (setImmediate), as memcached clients that pipeline
   * do. memjs wrote each request on its own, one syscall per GET: 18 % of a worker's profile serving 2,000
   * distinct pages from memcached, where the requests of the clients read in one poll go out together.
   */
  private batch(): void {
    if (this.corked !== undefined) return;
    const socket = this.server?._socket;
    if (socket === undefined || socket.connecting || socket.destroyed) return;
    socket.cork();
    this.corked = socket;
    setImmediate(this.flush);
  }

  close(): void {
    this.client.close();
  }
}

const TIMED_OUT = /timed out/i;
const NOT_STORED = /not stored/i;

/** memjs reports a status memcached sent back as an Error whose message starts with 'MemJS <OP>:'. */
export function isServerAnswer(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('MemJS ');
}

/** memcached's NOT_STORED (an append to an absent key), which memjs reports as an error. */
export function isNotStored(err: unknown): boolean {
  return NOT_STORED.test(toError(err).message);
}

/** A memjs failure as our typed store error, the original kept as `cause`. */
export function storeError(err: unknown, nodeName: string): StoreTimeoutError | StoreUnavailableError {
  const e = toError(err);
  if (TIMED_OUT.test(e.message)) return new StoreTimeoutError(`memcached ${nodeName} timed out`, { cause: e });
  return new StoreUnavailableError(`memcached ${nodeName}: ${e.message}`, { cause: e });
}
