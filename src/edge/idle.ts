// Idle client connections: closed once no byte has moved either way for idleMs (nginx's
// client_body_timeout and send_timeout in one), and a keep-alive connection waiting for its next request
// once quiet for keepAliveMs (nginx's keepalive_timeout). A sweep every min(idleMs, keepAliveMs)/4
// compares each connection's byte counts with the last sweep's, so the cost is per connection and per
// sweep, never per request: a socket timeout (Node's own keepAliveTimeout among them) re-arms a timer on
// every request or every read and write of every hit. A connection is closed within a quarter of its
// limit after the limit.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { handleWriteQueueSize, socketResponse } from './node-internals';

/**
 * Bytes that really moved on a connection: read from it, or taken by the kernel. Bytes written but still
 * queued (in the stream or in libuv's queue for a slow reader) are not progress, as for nginx's send_timeout:
 * `res.end(body)` counts a whole large body in bytesWritten at once, while a slow reader drains it for long.
 */
function moved(socket: Socket): number {
  return socket.bytesRead + (socket.bytesWritten ?? 0) - socket.writableLength - handleWriteQueueSize(socket);
}

/** When a connection's byte count last changed, as seen by one reader (the sweep, or a drain). */
class Watch {
  /** NaN until the first reading: moved() can be negative or zero too, so no count can mark "unseen". */
  private bytes = Number.NaN;
  private since = 0;
  /** How long (ms) the count has stood still as of `t`; 0 when it moved since the last reading. */
  stillFor(socket: Socket, t: number): number {
    const bytes = moved(socket);
    if (bytes !== this.bytes) {
      this.bytes = bytes;
      this.since = t;
    }
    return t - this.since;
  }
}

class Progress {
  readonly sweep = new Watch();
  /** Read by closeQuiet during a drain, every few ms instead of every idleMs/4. */
  readonly drain = new Watch();
}

/** A response is in progress on the connection (not yet fully handed to the kernel). */
function busy(socket: Socket): boolean {
  const res = socketResponse(socket);
  return res !== undefined && res !== null && !res.writableFinished;
}

export interface IdleSweeper {
  /** Client connections open now (every connection the server has seen and not yet closed). */
  open(): number;
  /**
   * For a drain, called every few ms: closes the connections with no response in progress that have moved
   * no byte for graceMs (idle keep-alive ones, and ones that never sent a byte, such as a browser's
   * preconnect). A client sending its next request as the last one ends moves bytes, so it is not cut
   * mid-request (Node's closeIdleConnections can reset it) but gets `Connection: close` on that response.
   */
  closeQuiet(graceMs: number): void;
  stop(): void;
}

/**
 * Between requests on a kept-alive connection: a response was written on it (a fresh connection waiting
 * for its first request is left to headersTimeout and idleMs) and none is in progress.
 */
function betweenRequests(socket: Socket): boolean {
  return (socket.bytesWritten ?? 0) > 0 && !busy(socket);
}

export interface SweepLimits {
  /** A connection in a request (or waiting for its first) with no byte moving for this long is closed (ms). */
  idleMs: number;
  /** A connection between requests with no byte moving for this long is closed (ms), longer or shorter than idleMs. */
  keepAliveMs: number;
}

export function sweepIdleConnections(server: http.Server, limits: SweepLimits, now: () => number = Date.now): IdleSweeper {
  const { idleMs, keepAliveMs } = limits;
  const connections = new Map<Socket, Progress>();
  function untrack(this: Socket): void {
    connections.delete(this);
  }
  function track(socket: Socket): void {
    connections.set(socket, new Progress());
    socket.once('close', untrack);
  }
  function sweep(): void {
    const t = now();
    for (const [socket, p] of connections) {
      // Between requests only keepAliveMs counts (above idleMs too: behind a load balancer it may be long).
      if (p.sweep.stillFor(socket, t) >= (betweenRequests(socket) ? keepAliveMs : idleMs)) socket.destroy();
    }
  }
  server.on('connection', track);
  const timer = setInterval(sweep, Math.max(10, Math.floor(Math.min(idleMs, keepAliveMs) / 4)));
  timer.unref();
  return {
    open(): number {
      return connections.size;
    },
    closeQuiet(graceMs: number): void {
      const t = now();
      for (const [socket, p] of connections) if (p.drain.stillFor(socket, t) >= graceMs && !busy(socket)) socket.destroy();
    },
    stop(): void {
      clearInterval(timer);
      server.off('connection', track);
    },
  };
}
