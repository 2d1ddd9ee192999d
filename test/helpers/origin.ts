// A real http.createServer origin on a free loopback port that counts the requests it sees.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { Socket } from 'node:net';

export interface TestOrigin {
  readonly port: number;
  readonly url: string;
  /** Requests seen, by path with query. */
  hits(path: string): number;
  total(): number;
  /** The last request's headers for a path. */
  lastHeaders(path: string): http.IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export async function startOrigin(handler: Handler, port = 0): Promise<TestOrigin> {
  const counts = new Map<string, number>();
  const last = new Map<string, http.IncomingHttpHeaders>();
  let total = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    total++;
    const path = req.url ?? '';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    last.set(path, req.headers);
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const bound = (server.address() as AddressInfo).port;
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    hits: (p) => counts.get(p) ?? 0,
    total: () => total,
    lastHeaders: (p) => last.get(p),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request with node:http (no pooling surprises): method, path, headers, optional body. */
export function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string; host?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: opts.host ?? 'example.com', ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Sends raw bytes and returns the raw reply (for malformed requests). */
export function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
    s.write(bytes);
    setTimeout(() => s.end(), 300);
  });
}
