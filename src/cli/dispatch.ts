// The cluster primary's side of client connections. It accepts on the listening socket and hands each
// connection's raw handle to a worker picked by LeastConnections, the way node:cluster's round robin does
// (same handle type, so Node sends it once with no retransmission; the primary keeps its copy until the
// worker answers). What it adds to node:cluster:
// - the pick: fewest open connections among workers keeping up, instead of the first to answer;
// - a connection refused by a worker (draining) goes to another worker: no byte of it was read;
// - a worker that exits or disconnects takes no more, and what it never answered goes to another worker;
// - a handoff not answered within ackTimeoutMs of being sent (the worker could not receive the descriptor,
//   or is stuck) is closed here, so no client waits forever on a connection nobody owns, and that worker
//   is picked last until it answers again.
import type { Server } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { interceptConnections } from '../edge/node-internals';
import type { ConnectionHandle } from '../edge/node-internals';
import { LeastConnections } from './balance';

// The raw handle's shape is a Node internal, declared with the others; re-exported for serve.ts and the tests.
export type { ConnectionHandle } from '../edge/node-internals';

export interface ConnMessage {
  epc: 'conn';
  id: number;
}

export interface DispatcherOptions<W> {
  /** Sends a handoff to a worker (node:cluster: worker.send(message, handle, callback)). */
  send(worker: W, message: ConnMessage, handle: ConnectionHandle, callback: (err: Error | null) => void): void;
  /** Handoffs a worker may leave unanswered before it gets no more (2). */
  maxPending?: number;
  /** A handoff unanswered this long is closed (5000 ms). */
  ackTimeoutMs?: number;
  /** Connections held while no worker can take one (each for at most ackTimeoutMs), beyond which new ones are closed (1024). */
  maxQueued?: number;
  /** Called (at most once per 10 s, with how many failed meanwhile) when accepting a connection fails. */
  onAcceptError?: (code: string, count: number) => void;
}

/** How many workers one connection may be offered to before it is closed. */
const MAX_TRIES = 3;

class Handoff<W> {
  /**
   * When the send completed (0: still in Node's queue for the channel, which a stalled worker is not
   * reading). Only a sent handoff can time out: closing a handle Node has yet to write jams the channel.
   */
  sentAt = 0;
  constructor(
    readonly handle: ConnectionHandle,
    readonly worker: W,
    readonly tries: number,
  ) {}
}

interface Waiting {
  readonly handle: ConnectionHandle;
  readonly tries: number;
  /** When it began waiting here: one no worker could take within ackTimeoutMs is closed. */
  readonly since: number;
}

export class ConnectionDispatcher<W> {
  private readonly balancer: LeastConnections<W>;
  private readonly inflight = new Map<number, Handoff<W>>();
  private readonly queue: Waiting[] = [];
  private readonly ackTimeoutMs: number;
  private readonly maxQueued: number;
  private readonly onAcceptError: (code: string, count: number) => void;
  private readonly send: DispatcherOptions<W>['send'];
  private readonly sweep: NodeJS.Timeout;
  private seq = 0;
  private stopped = false;
  private finishing: (() => void) | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  private acceptErrors = 0;
  private acceptErrorLogged = 0;

  constructor(options: DispatcherOptions<W>) {
    this.send = options.send;
    this.balancer = new LeastConnections<W>(options.maxPending ?? 2);
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.maxQueued = options.maxQueued ?? 1024;
    this.onAcceptError = options.onAcceptError ?? noop;
    this.sweep = setInterval(() => this.expire(), Math.max(10, Math.floor(this.ackTimeoutMs / 5)));
    this.sweep.unref();
  }

  /**
   * Takes over the connections of a listening server: they come here as raw handles instead of becoming
   * sockets in this process (node:cluster's round robin does the same).
   */
  attach(server: Server): void {
    interceptConnections(server, (err: number, handle?: ConnectionHandle): void => this.accepted(err, handle));
  }

  /** A worker is set up and takes connections. */
  ready(worker: W): void {
    if (this.stopped) return;
    this.balancer.add(worker);
    this.pump();
  }

  /** A worker is draining: it gets no more (what it is offered meanwhile it refuses, and that goes elsewhere). */
  retire(worker: W): void {
    this.balancer.remove(worker);
  }

  /**
   * A worker exited or lost its channel: it gets no more, and what it never answered goes to another worker.
   * A worker answers a handoff before it reads a byte of the connection, and its answer comes through the
   * channel ahead of the channel's end, so an unanswered connection is one nobody has read from.
   */
  lost(worker: W): void {
    this.balancer.remove(worker);
    for (const [id, h] of this.inflight) {
      if (h.worker !== worker) continue;
      this.inflight.delete(id);
      this.offer(h.handle, h.tries);
    }
    this.pump();
  }

  /** A worker's answer to handoff `id`. */
  answer(worker: W, id: number, took: boolean): void {
    const h = this.inflight.get(id);
    if (h === undefined || h.worker !== worker) {
      // Given up on already (timed out): our copy is closed, but the worker has the connection.
      if (took) this.balancer.opened(worker);
      return;
    }
    this.inflight.delete(id);
    this.balancer.settled(worker, took);
    if (took) h.handle.close();
    else this.offer(h.handle, h.tries);
    this.pump();
  }

  /** One of a worker's connections closed. */
  gone(worker: W): void {
    this.balancer.release(worker);
    this.pump();
  }

  /** Stops dispatching: connections waiting here are closed, handoffs in flight still get their answer. */
  stop(): void {
    this.stopped = true;
    for (const w of this.queue.splice(0)) w.handle.close();
    clearInterval(this.sweep);
    clearTimeout(this.finishTimer);
  }

  /**
   * For a drain: the listener is closed; the connections waiting here still go to workers (at most
   * maxWaitMs more), then dispatching stops and `done` runs. Messages sent to a worker from `done` reach it
   * after every handoff sent before them (a channel keeps order).
   */
  finish(done: () => void, maxWaitMs = 1000): void {
    this.finishing = done;
    this.finishTimer = setTimeout(() => this.finished(), maxWaitMs);
    this.finishTimer.unref();
    if (this.queue.length === 0) this.finished();
  }

  private finished(): void {
    const done = this.finishing;
    if (done === undefined) return;
    this.finishing = undefined;
    this.stop();
    done();
  }

  /** Open connections per worker (handoffs in flight included), in the order the workers became ready. */
  counts(): number[] {
    return this.balancer.counts();
  }

  private accepted(err: number, handle: ConnectionHandle | undefined): void {
    if (err !== 0 || handle === undefined) {
      this.acceptErrors++;
      const now = Date.now();
      if (now - this.acceptErrorLogged >= 10_000) {
        this.onAcceptError(err !== 0 ? getSystemErrorName(err) : 'no handle', this.acceptErrors);
        this.acceptErrorLogged = now;
        this.acceptErrors = 0;
      }
      return;
    }
    handle.setNoDelay?.(true);
    this.offer(handle, 0);
  }

  /** Hands a connection to the best worker now, or holds it until one can take it. */
  private offer(handle: ConnectionHandle, tries: number): void {
    if (this.stopped || tries >= MAX_TRIES) {
      handle.close();
      return;
    }
    const worker = this.balancer.pick();
    if (worker === undefined) {
      if (this.queue.length >= this.maxQueued) handle.close();
      else this.queue.push({ handle, tries, since: Date.now() });
      return;
    }
    const id = ++this.seq;
    const handoff = new Handoff(handle, worker, tries + 1);
    this.inflight.set(id, handoff);
    this.send(worker, { epc: 'conn', id }, handle, (err) => {
      if (err === null) {
        handoff.sentAt = Date.now();
        return;
      }
      // Not sent (the channel closed): the handle is still only ours, so it can go to another worker.
      if (this.inflight.get(id) !== handoff) return;
      this.inflight.delete(id);
      this.balancer.remove(worker);
      this.offer(handle, handoff.tries);
    });
  }

  /** Offers held connections while some worker can take one. */
  private pump(): void {
    while (this.queue.length > 0 && !this.stopped && this.balancer.available()) {
      const w = this.queue.shift()!;
      this.offer(w.handle, w.tries);
    }
    if (this.queue.length === 0) this.finished();
  }

  private expire(): void {
    const limit = Date.now() - this.ackTimeoutMs;
    // Every worker stalled for that long: the client is told by a close instead of waiting on.
    while (this.queue.length > 0 && this.queue[0]!.since <= limit) this.queue.shift()!.handle.close();
    for (const [id, h] of this.inflight) {
      if (h.sentAt === 0 || h.sentAt > limit) continue;
      this.inflight.delete(id);
      this.balancer.expired(h.worker);
      h.handle.close();
    }
    this.pump();
  }
}

function noop(): void {}
