// Idle client connections: closed once no byte has moved either way for idleMs (nginx's
// client_body_timeout and send_timeout in one). A sweep every idleMs/4 compares each connection's byte
// counts with the last sweep's, so the cost is per connection and per sweep, never per request: a socket
// timeout would re-arm a timer on every read and write of every hit. A connection is closed between idleMs
// and 1.25 x idleMs after its last byte. Idle keep-alive connections between requests are closed sooner by
// the server's keepAliveTimeout.
import type http from 'node:http';
import type { Socket } from 'node:net';

/**
 * Bytes that really moved on a connection: read from it, or taken by the kernel. Bytes written but still
 * queued (in the stream or in libuv's queue for a slow reader) are not progress, as for nginx's send_timeout:
 * `res.end(body)` counts a whole large body in bytesWritten at once, while a slow reader drains it for long.
 */
function moved(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return socket.bytesRead + (socket.bytesWritten ?? 0) - socket.writableLength - (handle?.writeQueueSize ?? 0);
}

class Progress {
  /** NaN until the first sweep: moved() may be any number, even negative, so no number can mark "unseen". */
  bytes = Number.NaN;
  since = 0;
}

export interface IdleSweeper {
  /** Client connections open now (every connection the server has seen and not yet closed). */
  open(): number;
  /**
   * Closes the connections that have not sent a byte yet (a browser's preconnect): Node counts them as
   * busy, so closeIdleConnections leaves them, and a drain would wait its whole timeout for them.
   */
  closeSilent(): void;
  stop(): void;
}

export function sweepIdleConnections(server: http.Server, idleMs: number, now: () => number = Date.now): IdleSweeper {
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
      const bytes = moved(socket);
      if (bytes !== p.bytes) {
        p.bytes = bytes;
        p.since = t;
      } else if (t - p.since >= idleMs) {
        socket.destroy();
      }
    }
  }
  server.on('connection', track);
  const timer = setInterval(sweep, Math.max(10, Math.floor(idleMs / 4)));
  timer.unref();
  return {
    open(): number {
      return connections.size;
    },
    closeSilent(): void {
      for (const socket of connections.keys()) if (socket.bytesRead === 0) socket.destroy();
    },
    stop(): void {
      clearInterval(timer);
      server.off('connection', track);
    },
  };
}
