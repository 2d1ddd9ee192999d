// The one request policy (src/core/request-policy.ts) through both front doors: the edge in front of an
// origin and pageCache() inside an Express app, each rendering the same page. What is looked up, what
// bypasses, what an unsafe request invalidates, and that no unkeyed header can change a stored page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { edgeDoor, middlewareDoor } from '../helpers/doors';
import type { Door } from '../helpers/doors';
import { request } from '../helpers/origin';
import type { Reply } from '../helpers/origin';

/**
 * The page: it shows every header an app may render from (Express reads the forwarding ones with
 * `trust proxy`), so a poisoned copy would show in its body.
 */
function render(req: IncomingMessage, res: ServerResponse, counts: Map<string, number>): void {
  const path = (req.url ?? '/').split('?')[0]!;
  counts.set(path, (counts.get(path) ?? 0) + 1);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain', location: '/moved-here' });
    res.end('done');
    return;
  }
  const h = req.headers;
  const seen = ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'forwarded', 'x-host', 'x-original-url', 'x-http-method-override']
    .map((n) => `${n}=${String(h[n] ?? '')}`)
    .join(' ');
  res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
  res.end(`<p>${path}</p><p>${seen}</p>`);
}

const edge = (): Promise<Door> => edgeDoor(render, 'policy');
// Express reads the forwarding headers with `trust proxy`: the unkeyed-header rules must hold with it on.
const middleware = (): Promise<Door> => middlewareDoor(render, 'policy', (app) => app.set('trust proxy', true));

let seq = 0;
function fresh(name: string): string {
  seq++;
  return `/${name}-${seq}`;
}

/** GETs until the page is a HIT (the middleware stores after the response finished), at most 50 times. */
async function untilHit(port: number, path: string): Promise<Reply> {
  let r = await request(port, path);
  for (let i = 0; i < 50 && r.headers['x-cache'] !== 'HIT'; i++) r = await request(port, path);
  return r;
}

describe.each([
  ['edge', edge],
  ['middleware', middleware],
])('request policy through the %s', (_name, open) => {
  let door: Door;
  beforeAll(async () => {
    door = await open();
  });
  afterAll(async () => {
    await door.close();
  });

  it('looks up GET: MISS, then HIT without rendering again', async () => {
    const path = fresh('page');
    expect((await request(door.port, path)).headers['x-cache']).toBe('MISS');
    expect((await untilHit(door.port, path)).headers['x-cache']).toBe('HIT');
    expect(door.renders(path)).toBeLessThanOrEqual(2);
    const before = door.renders(path);
    expect((await request(door.port, path)).headers['x-cache']).toBe('HIT');
    expect(door.renders(path)).toBe(before);
  });

  it('never serves a request with Authorization or a session cookie from the cache', async () => {
    const path = fresh('private');
    await untilHit(door.port, path);
    const before = door.renders(path);
    expect((await request(door.port, path, { headers: { authorization: 'Bearer x' } })).headers['x-cache']).toBe('BYPASS');
    expect((await request(door.port, path, { headers: { cookie: 'sid=abc' } })).headers['x-cache']).toBe('BYPASS');
    expect(door.renders(path)).toBe(before + 2);
  });

  it('serves the shared page to a request whose cookies are all analytics ones', async () => {
    const path = fresh('analytics');
    await untilHit(door.port, path);
    expect((await request(door.port, path, { headers: { cookie: '_ga=GA1.2.3; _gid=4' } })).headers['x-cache']).toBe('HIT');
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'PROPPATCH'])('drops the stored page after a successful %s to it (RFC 9111 §4.4)', async (method) => {
    const path = fresh(`unsafe-${method.toLowerCase()}`);
    await untilHit(door.port, path);
    const done = await request(door.port, path, method === 'DELETE' ? { method } : { method, body: 'x' });
    expect(done.status).toBeLessThan(400);
    expect((await request(door.port, path)).headers['x-cache']).toBe('MISS');
  });

  it('drops the same-host Location of a successful unsafe response too', async () => {
    await untilHit(door.port, '/moved-here');
    await request(door.port, fresh('form'), { method: 'POST', body: 'x' });
    expect((await request(door.port, '/moved-here')).headers['x-cache']).toBe('MISS');
  });

  it('does not invalidate after OPTIONS (a safe method)', async () => {
    const path = fresh('options');
    await untilHit(door.port, path);
    await request(door.port, path, { method: 'OPTIONS' });
    expect((await request(door.port, path)).headers['x-cache']).toBe('HIT');
  });

  it.each<[string, Record<string, string>, string]>([
    ['X-Forwarded-Host', { 'x-forwarded-host': 'evil.test' }, 'evil.test'],
    ['X-Forwarded-Proto', { 'x-forwarded-proto': 'https' }, 'https'],
    ['X-Forwarded-Port', { 'x-forwarded-port': '8443' }, '8443'],
    ['X-Forwarded-Prefix', { 'x-forwarded-prefix': '/evil' }, '/evil'],
    ['Forwarded', { forwarded: 'for=1.2.3.4;host=evil.test;proto=https' }, 'evil.test'],
    ['X-Host', { 'x-host': 'evil.test' }, 'evil.test'],
    ['X-Original-URL', { 'x-original-url': '/evil' }, '/evil'],
    ['X-HTTP-Method-Override', { 'x-http-method-override': 'DELETE' }, 'DELETE'],
  ])('a first request with %s cannot change the page stored for everyone', async (_header, headers, marker) => {
    const path = fresh('poison');
    await request(door.port, path, { headers });
    const clean = await untilHit(door.port, path);
    expect(clean.headers['x-cache']).toBe('HIT');
    expect(clean.body.toString()).not.toContain(marker);
  });

  it('caches requests whose forwarding headers say what the request itself does (an edge in front sends them)', async () => {
    const path = fresh('forwarded-ok');
    const headers = { 'x-forwarded-host': 'example.com', 'x-forwarded-proto': 'http', 'x-forwarded-for': '10.0.0.1', forwarded: 'for=10.0.0.1;proto=http;host=example.com' };
    await request(door.port, path, { headers });
    let r = await request(door.port, path, { headers });
    for (let i = 0; i < 50 && r.headers['x-cache'] !== 'HIT'; i++) r = await request(door.port, path, { headers });
    expect(r.headers['x-cache']).toBe('HIT');
  });
});

