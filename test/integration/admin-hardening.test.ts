// The admin port against a browser on the same machine (DNS rebinding), token guessing, a look from
// another address, and oversize purge bodies: raw requests, as an attacker would send them.
import http from 'node:http';
import net from 'node:net';
import { createAdminServer } from '../../src/edge/admin';
import { createEdgeServer, localAdminBackend } from '../../src/edge/server';
import { startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { rawRequest, request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

const TOKEN = 'admin-hardening-token-0123456789';

let origin: TestOrigin;
let edge: EdgeProcess;

beforeAll(async () => {
  origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
    res.end('ok');
  });
  edge = await startEdge(['--origin', origin.url, '--admin-token', TOKEN]);
});

afterAll(async () => {
  await edge.stop();
  await origin.close();
});

/** A request from a chosen loopback source address (127.0.0.x), so each test is its own client. */
function from(source: string, path: string, opts: { method?: string; token?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: edge.adminPort,
        path,
        method: opts.method ?? 'GET',
        localAddress: source,
        agent: false,
        headers: opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('Host (DNS rebinding)', () => {
  it('refuses a Host naming anything but the admin address, localhost or an IP address with 421', async () => {
    for (const host of ['evil.example', 'evil.example:9091', 'localhost.evil.example', '127.0.0.1.nip.io']) {
      const reply = await rawRequest(edge.adminPort, `GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, reply.split('\r\n')[0]]).toEqual([host, 'HTTP/1.1 421 Misdirected Request']);
      expect(reply).not.toContain('edge_cache_');
    }
    const stats = await rawRequest(edge.adminPort, `GET / HTTP/1.1\r\nHost: rebound.example:${edge.adminPort}\r\nConnection: close\r\n\r\n`);
    expect(stats).toMatch(/^HTTP\/1\.1 421 /);
    expect(stats).not.toContain(origin.url);
  });

  it('answers its own address, localhost, an IP literal, and a request with no Host at all', async () => {
    for (const host of [`127.0.0.1:${edge.adminPort}`, `localhost:${edge.adminPort}`, 'LOCALHOST', `[::1]:${edge.adminPort}`]) {
      const reply = await rawRequest(edge.adminPort, `GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, reply.split('\r\n')[0]]).toEqual([host, 'HTTP/1.1 200 OK']);
    }
    expect(await rawRequest(edge.adminPort, 'GET /metrics HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 OK[^]*edge_cache_requests_total/);
  });
});

describe('token guessing', () => {
  it('takes the right token and refuses a wrong one of any length, its prefix, or one with a byte more', async () => {
    for (const wrong of ['x', TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.replace(/.$/, 'X')]) {
      expect((await from('127.0.0.2', '/reload', { method: 'POST', token: wrong })).status).toBe(401);
    }
    expect((await request(edge.adminPort, '/purge', { host: '127.0.0.1', method: 'POST', body: '{"urls":["http://example.com/x"]}', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('refuses an address with 429 and Retry-After after ten wrong tokens in a minute (even with the right one); other addresses still get in; counted and logged', async () => {
    for (let i = 0; i < 10; i++) expect((await from('127.0.0.3', '/purge', { method: 'POST', token: `guess-${i}-0123456789abcdef` })).status).toBe(401);
    const limited = await from('127.0.0.3', '/purge', { method: 'POST', token: 'guess-10-0123456789abcdef' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    // The right token does not help while the address waits: a guesser cannot tell a hit from a miss.
    expect((await from('127.0.0.3', '/metrics', { token: TOKEN })).status).toBe(429);
    // Another address is not affected.
    expect((await from('127.0.0.4', '/metrics', { token: TOKEN })).status).toBe(200);
    const metrics = (await request(edge.adminPort, '/metrics', { host: '127.0.0.1' })).body.toString();
    // 4 wrong from the test before, 10 here.
    expect(metrics).toMatch(/edge_cache_admin_auth_failures_total\{result="wrong"\} 14\b/);
    expect(metrics).toMatch(/edge_cache_admin_auth_failures_total\{result="limited"\} 2\b/);
    // Logged, but not once per attempt.
    const lines = edge.output().split('\n').filter((l) => /admin token/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(lines[0]).toMatch(/"address":"(::ffff:)?127\.0\.0\.[23]"/);
  });
});

describe('oversize purge body', () => {
  /** Sends raw bytes, reads to the end; resolves with what came back, or the error code if the connection was reset. */
  function send(bytes: Buffer): Promise<string> {
    return new Promise((resolve) => {
      const s = net.connect(edge.adminPort, '127.0.0.1');
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(`${Buffer.concat(chunks).toString('latin1')}[${err.code}]`));
      s.end(bytes);
    });
  }

  it('answers 413 before closing, with a Content-Length over the limit', async () => {
    const body = Buffer.alloc(200 * 1024, 'a');
    const head = `POST /purge HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const reply = await send(Buffer.concat([Buffer.from(head), body]));
    expect(reply).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(reply).toMatch(/body over 65536 bytes/);
    expect(reply).not.toContain('[ECONNRESET]');
  });

  it('answers 413 before closing, with a chunked body that grows over the limit', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'b');
    const parts: Buffer[] = [Buffer.from(`POST /purge HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n`)];
    for (let i = 0; i < 12; i++) parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    parts.push(Buffer.from('0\r\n\r\n'));
    const reply = await send(Buffer.concat(parts));
    expect(reply).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(reply).not.toContain('[ECONNRESET]');
  });
});

describe('on an address other than loopback', () => {
  it('/healthz gives only the status without the token, and the origins and nodes with it', async () => {
    // 127.0.0.2 is not one of the loopback names the admin port trusts, so it behaves as on a public address
    // (while the test still sends nothing off this machine).
    const local = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1' });
    const admin = createAdminServer({ port: 0, host: '127.0.0.2', token: TOKEN }, localAdminBackend(local));
    const port = await admin.listen();
    try {
      const get = (headers: http.OutgoingHttpHeaders): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          http
            .get({ host: '127.0.0.2', port, path: '/healthz', headers, agent: false }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (body += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            })
            .on('error', reject);
        });
      const anonymous = await get({});
      expect(anonymous.status).toBe(200);
      expect(JSON.parse(anonymous.body)).toEqual({ status: 'ok' });
      expect(anonymous.body).not.toContain(origin.url);
      const withToken = await get({ authorization: `Bearer ${TOKEN}` });
      expect(JSON.parse(withToken.body)).toEqual(expect.objectContaining({ status: 'ok', origins: [expect.objectContaining({ url: origin.url })] }));
      // Its own address is an acceptable Host there.
      expect((await get({ host: `127.0.0.2:${port}` })).status).toBe(200);
      expect((await get({ host: 'evil.example' })).status).toBe(421);
    } finally {
      await admin.close();
      await local.close();
    }
  });
});
