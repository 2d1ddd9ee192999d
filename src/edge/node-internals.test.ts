// Each Node internal in node-internals.ts (and res.shouldKeepAlive), checked on the running Node by its
// effect on real objects: an upgrade that renames or changes one fails here, naming it and its user, instead
// of the edge silently losing a Keep-Alive hint, a drain or a handoff. Unlike the other unit tests this one
// uses loopback sockets and one child process: a fake could not tell whether Node still behaves so.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  handleWriteQueueSize,
  interceptConnections,
  setKeepAliveHint,
  socketResponse,
  startConnectionTracking,
  stopAccepting,
} from './node-internals';
import type { ConnectionHandle } from './node-internals';

jest.setTimeout(10_000);

/** Fails with the internal's name, its user, and what was found, so the failure says what to fix. */
function assertInternal(ok: boolean, internal: string, usedBy: string, found: string): void {
  if (!ok) throw new Error(`Node ${process.version}: ${internal} (used by ${usedBy}) is not what it assumes: ${found}`);
}

function listening<T extends net.Server>(server: T): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads from a socket until `done` says the text so far is enough (or the socket ends). */
function readUntil(socket: net.Socket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    function finish(): void {
      socket.off('data', onData);
      socket.off('end', finish);
      resolve(text);
    }
    function onData(chunk: Buffer): void {
      text += chunk.toString('latin1');
      if (done(text)) finish();
    }
    socket.on('data', onData);
    socket.once('end', finish);
  });
}

/** Whether `promise` settles within `ms` (the timer is cleared either way, so none outlives the test). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

const closed = (socket: net.Socket): Promise<void> => new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

/** An http.Server configured as the edge's (keepAliveTimeout 0), on a loopback port. */
async function edgeLikeServer(onRequest: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer({ keepAliveTimeout: 0 }, onRequest);
  return { server, port: await listening(server) };
}

function stop(server: net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('Node internals used by src/edge/server.ts', () => {
  it('ServerResponse._keepAliveTimeout: setting it writes the Keep-Alive hint with Node’s keepAliveTimeout at 0', async () => {
    const { server, port } = await edgeLikeServer((req, res) => {
      if (req.url === '/hint') setKeepAliveHint(res, 5000);
      res.end('x');
    });
    try {
      const c = await connect(port);
      c.write('GET /plain HTTP/1.1\r\nHost: a\r\n\r\n');
      const plain = await readUntil(c, (t) => t.endsWith('\r\n\r\nx'));
      c.write('GET /hint HTTP/1.1\r\nHost: a\r\n\r\n');
      const hinted = await readUntil(c, (t) => t.endsWith('\r\n\r\nx'));
      c.destroy();
      assertInternal(!/keep-alive: timeout/i.test(plain), 'http.Server keepAliveTimeout 0', 'src/edge/server.ts', `Node wrote a hint of its own: ${plain}`);
      assertInternal(
        /\r\nKeep-Alive: timeout=5\r\n/i.test(hinted),
        'ServerResponse._keepAliveTimeout',
        'src/edge/server.ts (setKeepAliveHint)',
        `no 'Keep-Alive: timeout=5' in the response head: ${JSON.stringify(hinted)}`,
      );
    } finally {
      await stop(server);
    }
  });

  it('ServerResponse.shouldKeepAlive: false before the head is written sends Connection: close and closes after', async () => {
    const { server, port } = await edgeLikeServer((_req, res) => {
      res.shouldKeepAlive = false;
      res.end('x');
    });
    try {
      const c = await connect(port);
      const gone = closed(c);
      c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      const head = await readUntil(c, (t) => t.endsWith('\r\n\r\nx'));
      assertInternal(/\r\nConnection: close\r\n/i.test(head), 'ServerResponse.shouldKeepAlive', 'src/edge/server.ts (closeAfter)', `no 'Connection: close': ${JSON.stringify(head)}`);
      c.resume();
      await gone;
    } finally {
      await stop(server);
    }
  });

  it('the "listening" event starts connection tracking on a server that never listens (closeAllConnections, headersTimeout)', async () => {
    const fed = http.createServer({ headersTimeout: 200, requestTimeout: 0, connectionsCheckingInterval: 50 } as http.ServerOptions, (_req, res) => res.end('x'));
    // Connections accepted by a plain net listener and handed over, as a cluster worker gets them.
    const listener = net.createServer((socket) => fed.emit('connection', socket));
    const port = await listening(listener);
    try {
      startConnectionTracking(fed);
      // A head never finished: headersTimeout (enforced by the tracking's periodic check) must end it.
      const slow = await connect(port);
      const slowGone = closed(slow);
      slow.write('GET / HTTP/1.1\r\nHost: a\r\n');
      slow.resume();
      const timedOut = await within(slowGone, 3000);
      assertInternal(timedOut, "http.Server 'listening' -> connection tracking", 'src/edge/server.ts (startConnectionTracking)', 'headersTimeout did not close a connection fed through emit("connection")');
      // And closeAllConnections reaches a fed connection.
      const idle = await connect(port);
      const idleGone = closed(idle);
      idle.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      await readUntil(idle, (t) => t.endsWith('\r\n\r\nx'));
      fed.closeAllConnections();
      const cut = await within(idleGone, 1000);
      assertInternal(cut, "http.Server 'listening' -> connection tracking", 'src/edge/server.ts (startConnectionTracking)', 'closeAllConnections did not close a connection fed through emit("connection")');
    } finally {
      fed.closeAllConnections();
      await stop(listener);
      fed.emit('close'); // stops the tracking's interval, as a real close would
    }
  });

  it('net.Server.prototype.close on an http.Server stops accepting and leaves idle keep-alive connections open', async () => {
    assertInternal(http.Server.prototype instanceof net.Server, 'http.Server extends net.Server', 'src/edge/server.ts (stopAccepting)', 'it does not');
    const { server, port } = await edgeLikeServer((_req, res) => res.end('x'));
    const c = await connect(port);
    try {
      c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      await readUntil(c, (t) => t.endsWith('\r\n\r\nx'));
      stopAccepting(server);
      await new Promise((r) => setTimeout(r, 50)); // a close of idle connections would have happened by now
      assertInternal(!c.destroyed, 'net.Server.prototype.close', 'src/edge/server.ts (stopAccepting)', 'it closed an idle keep-alive connection');
      // The connection still serves a request sent after the close.
      c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      const again = await readUntil(c, (t) => t.endsWith('\r\n\r\nx'));
      assertInternal(again.startsWith('HTTP/1.1 200'), 'net.Server.prototype.close', 'src/edge/server.ts (stopAccepting)', `the kept connection did not answer: ${JSON.stringify(again)}`);
      const refused = await connect(port).then(
        (s) => (s.destroy(), false),
        () => true,
      );
      assertInternal(refused, 'net.Server.prototype.close', 'src/edge/server.ts (stopAccepting)', 'the server still accepts new connections');
    } finally {
      c.destroy();
      server.closeAllConnections();
    }
  });
});

describe('Node internals used by src/edge/idle.ts', () => {
  it('socket._httpMessage: absent before the first request, the response while it is written, null once finished', async () => {
    const seen: string[] = [];
    let serverSocket: net.Socket | undefined;
    const { server, port } = await edgeLikeServer((req, res) => {
      const r = socketResponse(req.socket);
      seen.push(r === res && r.writableFinished === false ? 'in progress' : `unexpected ${String(r)}`);
      res.end('x');
    });
    server.on('connection', (s: net.Socket) => {
      serverSocket = s;
      const r = socketResponse(s);
      seen.push(r === undefined || r === null ? 'none yet' : 'unexpected response before a request');
    });
    try {
      const c = await connect(port);
      c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      await readUntil(c, (t) => t.endsWith('\r\n\r\nx'));
      await new Promise((r) => setImmediate(r));
      const after = serverSocket === undefined ? 'no socket' : socketResponse(serverSocket);
      seen.push(after === null || (after !== undefined && typeof after === 'object' && after.writableFinished) ? 'finished' : `unexpected ${String(after)}`);
      c.destroy();
      assertInternal(
        seen.join(', ') === 'none yet, in progress, finished',
        'net.Socket._httpMessage',
        'src/edge/idle.ts (busy, via socketResponse)',
        seen.join(', '),
      );
    } finally {
      await stop(server);
    }
  });

  it('socket._handle.writeQueueSize: counts bytes libuv holds for a peer that does not read, and drains to 0', async () => {
    let accepted: (s: net.Socket) => void = () => {};
    const got = new Promise<net.Socket>((r) => (accepted = r));
    const server = net.createServer((s) => accepted(s));
    const port = await listening(server);
    const reader = await connect(port);
    reader.pause();
    const writer = await got;
    try {
      const handle = (writer as unknown as { _handle?: { writeQueueSize?: unknown } | null })._handle;
      assertInternal(
        typeof handle?.writeQueueSize === 'number',
        'net.Socket._handle.writeQueueSize',
        'src/edge/idle.ts (moved, via handleWriteQueueSize)',
        `_handle is ${typeof handle}, writeQueueSize is ${typeof handle?.writeQueueSize}`,
      );
      writer.write(Buffer.alloc(16 * 1024 * 1024));
      assertInternal(
        handleWriteQueueSize(writer) > 0,
        'net.Socket._handle.writeQueueSize',
        'src/edge/idle.ts (moved, via handleWriteQueueSize)',
        'it stays 0 while 16 MiB wait for a peer that does not read',
      );
      const drained = new Promise<void>((r) => writer.once('drain', () => r()));
      reader.resume();
      await drained;
      assertInternal(handleWriteQueueSize(writer) === 0, 'net.Socket._handle.writeQueueSize', 'src/edge/idle.ts', `it is ${handleWriteQueueSize(writer)} after a drain`);
    } finally {
      reader.destroy();
      writer.destroy();
      await stop(server);
    }
  });
});

/**
 * The worker's side of a handoff, as cli/serve.ts does it: adopt the raw handle with new net.Socket({ handle })
 * and answer on it.
 */
const WORKER = `
const net = require('node:net');
process.on('message', (m, handle) => {
  const socket = new net.Socket({ handle, readable: true, writable: true });
  socket.end('adopted ' + m.id);
  socket.on('close', () => process.disconnect());
});
process.send('ready');
`;

describe('Node internals used by src/cli/dispatch.ts', () => {
  it('net.Server._handle.onconnection: gets each accepted connection as a raw handle, which a child process can adopt', async () => {
    const server = net.createServer(() => {
      throw new Error('a connection became a socket in this process: onconnection was not taken over');
    });
    const port = await listening(server);
    const handles: ConnectionHandle[] = [];
    let onHandle: () => void = () => {};
    interceptConnections(server, (err, handle) => {
      assertInternal(err === 0 && handle !== undefined, 'net.Server._handle.onconnection', 'src/cli/dispatch.ts (attach)', `called with (${err}, ${typeof handle})`);
      handles.push(handle!);
      onHandle();
    });
    const child = spawn(process.execPath, ['-e', WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('error', reject);
      });
      const gotHandle = new Promise<void>((r) => (onHandle = r));
      const client = await connect(port);
      await gotHandle;
      const handle = handles[0]!;
      assertInternal(
        typeof handle.close === 'function' && typeof handle.setNoDelay === 'function',
        'the raw TCP handle (close, setNoDelay)',
        'src/cli/dispatch.ts (ConnectionHandle)',
        `close is ${typeof handle.close}, setNoDelay is ${typeof handle.setNoDelay}`,
      );
      handle.setNoDelay?.(true);
      const reply = readUntil(client, () => false);
      // As cli/serve.ts sends it through node:cluster (worker.send is child_process's send).
      const sent = await new Promise<Error | null>((r) => child.send({ id: 7 }, handle as unknown as net.Socket, (err) => r(err)));
      assertInternal(sent === null, 'child_process send of a raw TCP handle', 'src/cli/dispatch.ts, src/cli/serve.ts', String(sent));
      handle.close(); // the primary's copy, closed once the worker has it (dispatch.ts's answer)
      const answered = await within(reply, 5000);
      const text = answered ? await reply : '(no answer in 5 s)';
      assertInternal(text === 'adopted 7', 'new net.Socket({ handle }) in a child', 'src/cli/serve.ts (take)', JSON.stringify(text));
      client.destroy();
    } finally {
      child.kill();
      await stop(server);
    }
  });

  it('interceptConnections refuses a server that is not listening', () => {
    expect(() => interceptConnections(net.createServer(), () => {})).toThrow('the server is not listening');
  });
});
