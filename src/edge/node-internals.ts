// The Node internals the edge relies on (private fields of net/http objects, and what some public calls do
// beyond their documentation), reached only through here: server.ts, idle.ts and cli/dispatch.ts import
// them, and node-internals.test.ts checks each on the running Node. A Node upgrade that breaks one fails there.
// (server.ts also sets res.shouldKeepAlive, undocumented but typed by @types/node; the test checks it too.)
import type http from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';

/** The libuv handle of an accepted TCP connection (what node:cluster itself passes to workers). */
export interface ConnectionHandle {
  close(callback?: () => void): void;
  setNoDelay?(enable: boolean): number;
}

/** A listening server's libuv handle: Node calls its onconnection with each accepted connection. */
interface ListeningHandle {
  onconnection: (err: number, handle?: ConnectionHandle) => void;
}

/**
 * Used by server.ts. ServerResponse writes its `Keep-Alive: timeout=N` hint from `_keepAliveTimeout` (copied
 * from the server's keepAliveTimeout, which the edge sets to 0 so that Node arms no per-request timer).
 * Setting it keeps the hint that Node's http.Agent and undici read to stop reusing a connection a second
 * before the server closes it.
 */
export function setKeepAliveHint(res: http.ServerResponse, ms: number): void {
  (res as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = ms;
}

/**
 * Used by server.ts. Node sets up a server's list of connections (what headersTimeout, requestTimeout and
 * closeAllConnections work on) on its 'listening' event; a server fed connections from elsewhere never
 * listens, so it is told by the same event.
 */
export function startConnectionTracking(server: http.Server): void {
  server.emit('listening');
}

/**
 * Used by server.ts. Stops accepting without closing any connection: net's close, not http's, which first
 * closes every connection it thinks idle (and resets a keep-alive client whose next request is already on
 * the wire). Relies on http.Server being a net.Server.
 */
export function stopAccepting(server: http.Server): void {
  net.Server.prototype.close.call(server);
}

/**
 * Used by idle.ts. Bytes written to the socket that libuv still queues (the kernel did not take them yet):
 * `_handle.writeQueueSize`; 0 with no handle (closed, or not a TCP socket).
 */
export function handleWriteQueueSize(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return handle?.writeQueueSize ?? 0;
}

/**
 * Used by idle.ts. The ServerResponse Node is writing on a connection (`socket._httpMessage`): undefined
 * before the first request, null between requests (detached once finished).
 */
export function socketResponse(socket: Socket): { readonly writableFinished: boolean } | null | undefined {
  return (socket as unknown as { _httpMessage?: { writableFinished: boolean } | null })._httpMessage;
}

/**
 * Used by cli/dispatch.ts. Takes over a listening server's accepted connections: they come to `onconnection`
 * as raw handles (`_handle.onconnection`) instead of becoming sockets in this process, as node:cluster's
 * round robin does. The handles can then be sent to a worker (child_process sends a raw TCP handle as is)
 * and adopted there with `new net.Socket({ handle })` (cli/serve.ts).
 */
export function interceptConnections(server: net.Server, onconnection: (err: number, handle?: ConnectionHandle) => void): void {
  const listening = (server as unknown as { _handle?: ListeningHandle | null })._handle;
  if (!listening) throw new Error('the server is not listening');
  listening.onconnection = onconnection;
}
