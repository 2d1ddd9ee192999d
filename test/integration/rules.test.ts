// Cache rules (src/core/rules.ts) through both doors: each rule field, first-match order, the match
// conditions (host, path prefix and glob, method, header, cookie), key normalisation (the origin sees the
// normalised URI) and device classes (the origin sees the class, never the User-Agent).
import type { IncomingHttpHeaders } from 'node:http';
import { edgeDoor, middlewareDoor } from '../helpers/doors';
import type { Door, Render } from '../helpers/doors';
import { request } from '../helpers/origin';
import type { Reply } from '../helpers/origin';
import type { RuleOptions } from '../../src/core/rules';

const RULES: RuleOptions[] = [
  { path: '/first/', ttl: 0 },
  { path: '/first/', ttl: 300 },
  { path: '/nocache/', ttl: 0 },
  { path: '/missing/', ttlByStatus: { '404': 0 } },
  { path: '/err/', ttlByStatus: { '5xx': 30 } },
  { path: '/admin/', bypass: true },
  { path: '/shop/', bypassCookies: ['session'] },
  { path: '/prefs/', ignoreCookies: ['theme'] },
  { path: '/gone/', cacheStatuses: [200] },
  { path: '/blog/', tags: ['section-{segment:1}', 'everything', 'at-{host}'] },
  { path: '/campaign/', key: { dropParams: ['utm_*', 'gclid'], sortParams: true } },
  { host: 'ci.example.com', key: { lowercasePath: true } },
  { path: '/browser/', headers: { 'cache-control': 'max-age=5', 'x-served-by': 'rules' } },
  { path: '/device/', key: { deviceClass: true } },
  { host: '*.tenant.test', ttl: 0 },
  { path: '/preview/', header: 'x-preview', bypass: true },
  { path: '/beta/', cookie: '_ga', bypass: true },
  { path: '/glob/*/x', ttl: 0 },
  { path: '/meth/', method: 'HEAD', bypass: true },
];

/** What the origin (or app) saw last, by the URI it rendered. */
const seen = new Map<string, IncomingHttpHeaders>();

const render: Render = (req, res, counts) => {
  const url = req.url ?? '/';
  counts.set(url, (counts.get(url) ?? 0) + 1);
  seen.set(url, { ...req.headers });
  const path = url.split('?')[0]!;
  if (path.startsWith('/missing/')) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('missing');
  } else if (path.startsWith('/err/')) {
    // 503 with explicit freshness: storable only because the rule's ttlByStatus names 5xx.
    res.writeHead(503, { 'content-type': 'text/plain', 'cache-control': url.includes('plain') ? 'no-transform' : 'max-age=60' });
    res.end('down');
  } else if (path.startsWith('/gone/')) {
    res.writeHead(410, { 'content-type': 'text/plain' });
    res.end('gone');
  } else {
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    if (path.startsWith('/browser/')) headers['cache-control'] = 's-maxage=600, max-age=600';
    res.writeHead(200, headers);
    res.end(`${url} ${req.headers['x-device-class'] ?? ''}`);
  }
};

let n = 0;
function fresh(prefix: string): string {
  n++;
  return `${prefix}${n}-${Date.now()}`;
}

/** GETs until the page is a HIT (the middleware stores after the response finished), at most 30 times. */
async function untilHit(port: number, path: string, opts: Parameters<typeof request>[2] = {}): Promise<Reply> {
  let r = await request(port, path, opts);
  for (let i = 0; i < 30 && r.headers['x-cache'] !== 'HIT'; i++) r = await request(port, path, opts);
  return r;
}

/** Three requests that would all be HITs if the page were stored: how many renders they cost. */
async function rendersFor(door: Door, path: string, rendered: string = path, opts: Parameters<typeof request>[2] = {}): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await request(door.port, path, opts);
    await new Promise((r) => setTimeout(r, 20));
  }
  return door.renders(rendered);
}

describe.each([
  ['edge', (): Promise<Door> => edgeDoor(render, 'rules', { rules: RULES })],
  ['middleware', (): Promise<Door> => middlewareDoor(render, 'rules', undefined, { rules: RULES })],
])('cache rules through the %s', (_name, open) => {
  let door: Door;
  beforeAll(async () => {
    door = await open();
  });
  afterAll(async () => {
    await door.close();
  });

  it('caches pages no rule matches as before', async () => {
    const path = fresh('/plain/');
    expect((await untilHit(door.port, path)).headers['x-cache']).toBe('HIT');
  });

  it('ttl: 0 stores nothing that states no freshness; the first matching rule wins over a later one', async () => {
    expect(await rendersFor(door, fresh('/nocache/'))).toBe(3);
    expect(await rendersFor(door, fresh('/first/'))).toBe(3);
  });

  it('ttlByStatus: 404: 0 keeps 404s out; 5xx is stored only with explicit freshness', async () => {
    expect(await rendersFor(door, fresh('/missing/'))).toBe(3);
    const err = fresh('/err/');
    expect((await untilHit(door.port, err)).status).toBe(503);
    expect((await request(door.port, err)).headers['x-cache']).toBe('HIT');
    expect(await rendersFor(door, fresh('/err/plain'))).toBe(3);
  });

  it('cacheStatuses: a 410 is not stored under a rule that stores only 200', async () => {
    expect(await rendersFor(door, fresh('/gone/'))).toBe(3);
  });

  it('bypass: never looked up nor stored', async () => {
    const path = fresh('/admin/');
    expect((await request(door.port, path)).headers['x-cache']).toBe('BYPASS');
    expect(await rendersFor(door, path)).toBe(4);
  });

  it('bypassCookies: only the named cookie makes the page private', async () => {
    const path = fresh('/shop/');
    expect((await untilHit(door.port, path, { headers: { cookie: 'theme=dark' } })).headers['x-cache']).toBe('HIT');
    expect((await request(door.port, path, { headers: { cookie: 'session=1' } })).headers['x-cache']).toBe('BYPASS');
    // Outside the rule, any cookie still makes a request private.
    expect((await request(door.port, fresh('/plain/'), { headers: { cookie: 'theme=dark' } })).headers['x-cache']).toBe('BYPASS');
  });

  it('ignoreCookies: a rule can declare a cookie that never changes its pages', async () => {
    const path = fresh('/prefs/');
    expect((await untilHit(door.port, path, { headers: { cookie: 'theme=dark' } })).headers['x-cache']).toBe('HIT');
  });

  it('tags: static and from the path and host, purgeable', async () => {
    const path = fresh('/blog/');
    await untilHit(door.port, path);
    expect(await door.purgeTags(['section-blog'])).toBeGreaterThanOrEqual(1);
    expect((await request(door.port, path)).headers['x-cache']).toBe('MISS');
    await untilHit(door.port, path);
    expect(await door.purgeTags(['at-example.com'])).toBeGreaterThanOrEqual(1);
    expect((await request(door.port, path)).headers['x-cache']).toBe('MISS');
  });

  it('key normalisation: URLs differing only by utm_* / gclid or parameter order share one entry, and the renderer sees the normalised URI', async () => {
    const path = fresh('/campaign/');
    await untilHit(door.port, `${path}?b=2&a=1&utm_source=news`);
    const r = await request(door.port, `${path}?gclid=xyz&a=1&utm_medium=mail&b=2`);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.body.toString()).toContain(`${path}?a=1&b=2 `);
    expect(door.renders(`${path}?a=1&b=2`)).toBeGreaterThanOrEqual(1);
    expect(door.renders(`${path}?b=2&a=1&utm_source=news`)).toBe(0);
    // A listed parameter with an empty value is kept: another page.
    expect((await request(door.port, `${path}?a=1&b=2&utm_source=`)).headers['x-cache']).toBe('MISS');
    expect(door.renders(`${path}?a=1&b=2&utm_source=`)).toBe(1);
  });

  it('lowercasePath on a host rule: /Page and /page are one entry', async () => {
    const path = fresh('/Mixed/');
    await untilHit(door.port, path, { host: 'ci.example.com' });
    expect((await request(door.port, path.toLowerCase(), { host: 'ci.example.com' })).headers['x-cache']).toBe('HIT');
    expect(door.renders(path)).toBe(0);
  });

  it('headers: stored pages carry the rule headers in place of the origin ones', async () => {
    const path = fresh('/browser/');
    const r = await untilHit(door.port, path);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.headers['cache-control']).toBe('max-age=5');
    expect(r.headers['x-served-by']).toBe('rules');
  });

  it('device classes: one entry per class, the class sent instead of the User-Agent', async () => {
    const path = fresh('/device/');
    const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148';
    const pixel = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari/537.36';
    const ipad = 'Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)';
    const desktop = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0';
    expect((await untilHit(door.port, path, { headers: { 'user-agent': iphone } })).body.toString()).toBe(`${path} mobile`);
    expect(seen.get(path)!['user-agent']).toBeUndefined();
    expect(seen.get(path)!['x-device-class']).toBe('mobile');
    const android = await request(door.port, path, { headers: { 'user-agent': pixel } });
    expect(android.headers['x-cache']).toBe('HIT');
    expect(android.body.toString()).toBe(`${path} mobile`);
    expect((await untilHit(door.port, path, { headers: { 'user-agent': ipad } })).body.toString()).toBe(`${path} tablet`);
    expect((await untilHit(door.port, path, { headers: { 'user-agent': desktop } })).body.toString()).toBe(`${path} desktop`);
    // The client hint wins: Sec-CH-UA-Mobile ?1 is mobile whatever the User-Agent says.
    expect((await request(door.port, path, { headers: { 'user-agent': desktop, 'sec-ch-ua-mobile': '?1' } })).body.toString()).toBe(`${path} mobile`);
    expect(door.renders(path)).toBe(3);
  });

  it('host wildcards match subdomains only', async () => {
    const path = fresh('/plain/');
    expect(await rendersFor(door, path, path, { host: 'a.tenant.test' })).toBe(3);
    const other = fresh('/plain/');
    expect((await untilHit(door.port, other, { host: 'tenant.test' })).headers['x-cache']).toBe('HIT');
  });

  it('header and cookie presence', async () => {
    const path = fresh('/preview/');
    expect((await untilHit(door.port, path)).headers['x-cache']).toBe('HIT');
    expect((await request(door.port, path, { headers: { 'x-preview': '1' } })).headers['x-cache']).toBe('BYPASS');
    const beta = fresh('/beta/');
    expect((await untilHit(door.port, beta, { headers: { cookie: '_gid=1' } })).headers['x-cache']).toBe('HIT');
    expect((await request(door.port, beta, { headers: { cookie: '_ga=1' } })).headers['x-cache']).toBe('BYPASS');
  });

  it('path globs: * is one segment', async () => {
    const one = `/glob/${fresh('a')}/x`;
    expect(await rendersFor(door, one)).toBe(3);
    const two = `/glob/${fresh('a')}/b/x`;
    expect((await untilHit(door.port, two)).headers['x-cache']).toBe('HIT');
  });

  it('method: a rule for HEAD leaves GET alone', async () => {
    const path = fresh('/meth/');
    expect((await untilHit(door.port, path)).headers['x-cache']).toBe('HIT');
    expect((await request(door.port, path, { method: 'HEAD' })).headers['x-cache']).toBe('BYPASS');
  });
});
