// RFC 9111 §4.2.4 / §5.2.2 and RFC 5861: when a stale stored response may stand in for the origin.
// The edge runs with its defaults (grace: --stale-if-error 3600) in front of a scripted origin on
// memcached; each page is stored fresh for 1 s, then the origin fails and what the client gets is checked.
import { sleep, scriptedSuite } from '../helpers/scripted-origin';

const s = scriptedSuite({ originTimeoutMs: 400 });

const PAGES: Record<string, string> = {
  '/plain': 'max-age=1',
  '/must-revalidate': 'max-age=1, must-revalidate',
  '/proxy-revalidate': 'max-age=1, proxy-revalidate',
  '/s-maxage': 's-maxage=1',
  '/s-maxage-sie': 's-maxage=1, stale-if-error=60',
  '/must-revalidate-sie': 'max-age=1, must-revalidate, stale-if-error=60',
  '/sie-0': 'max-age=1, stale-if-error=0',
  '/swr': 'max-age=1, stale-while-revalidate=60',
  '/mr-hang': 'max-age=1, must-revalidate',
  '/plain-hang': 'max-age=1',
};

beforeAll(async () => {
  for (const [path, cc] of Object.entries(PAGES)) {
    s.o.script(path, { headers: { 'content-type': 'text/plain', 'cache-control': cc }, body: `v1 ${path}` });
    const r = await s.e.get(path);
    expect(r.headers['x-cache']).toBe('MISS');
  }
  // Every page is now past its 1 s of freshness.
  await sleep(1300);
  for (const path of Object.keys(PAGES)) s.o.script(path, path.endsWith('-hang') ? 'hang' : 'reset');
});

describe('serving stale when the origin fails', () => {
  it('serves STALE within the default grace when nothing forbids it (RFC 9111 §4.2.4, RFC 5861 §4)', async () => {
    const r = await s.e.get('/plain');
    // RFC 9111 §4.2.4: a cache may serve stale when disconnected and nothing forbids it.
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('STALE');
    expect(r.body.toString()).toBe('v1 /plain');
  });

  it('never serves stale a must-revalidate page: 502 (RFC 9111 §5.2.2.2)', async () => {
    const r = await s.e.get('/must-revalidate');
    // RFC 9111 §5.2.2.2: if the cache cannot reach the origin it MUST generate an error, not a stale page.
    expect(r.status).toBe(502);
    expect(r.body.toString()).not.toContain('v1');
  });

  it('never serves stale a must-revalidate page when the origin times out: 504 (RFC 9111 §5.2.2.2)', async () => {
    const r = await s.e.get('/mr-hang');
    // RFC 9111 §5.2.2.2: "MUST generate a 504 (Gateway Timeout) response".
    expect(r.status).toBe(504);
  });

  it('serves stale on a timeout when nothing forbids it (control for the case above)', async () => {
    const r = await s.e.get('/plain-hang');
    expect(r.headers['x-cache']).toBe('STALE');
  });

  it('never serves stale a proxy-revalidate page in a shared cache: 502 (RFC 9111 §5.2.2.8)', async () => {
    const r = await s.e.get('/proxy-revalidate');
    // RFC 9111 §5.2.2.8: proxy-revalidate is must-revalidate for shared caches.
    expect(r.status).toBe(502);
  });

  it('takes the default grace away from s-maxage pages: 502 (RFC 9111 §5.2.2.10)', async () => {
    const r = await s.e.get('/s-maxage');
    // RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate for a shared cache.
    expect(r.status).toBe(502);
  });

  it("serves an s-maxage page stale when the origin's own stale-if-error allows it (RFC 5861 §4)", async () => {
    const r = await s.e.get('/s-maxage-sie');
    // RFC 5861 §4: the origin's explicit stale-if-error is its leave to serve stale on error.
    expect(r.headers['x-cache']).toBe('STALE');
    expect(r.body.toString()).toBe('v1 /s-maxage-sie');
  });

  it('lets must-revalidate win over stale-if-error: 502 (RFC 9111 §4.2.4)', async () => {
    const r = await s.e.get('/must-revalidate-sie');
    // RFC 9111 §4.2.4: a cache MUST NOT generate a stale response when an in-protocol directive forbids it.
    expect(r.status).toBe(502);
  });

  it("lets the response's stale-if-error=0 win over the --stale-if-error default (RFC 5861 §4)", async () => {
    const r = await s.e.get('/sie-0');
    // RFC 5861 §4: the response's stale-if-error is the window, here none.
    expect(r.status).toBe(502);
  });
});

describe('stale-while-revalidate from the response', () => {
  it('serves UPDATING although the --stale-while-revalidate default is 0 (RFC 5861 §3)', async () => {
    const r = await s.e.get('/swr');
    // RFC 5861 §3: within stale-while-revalidate the stale response is served while it is revalidated.
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('UPDATING');
    expect(r.body.toString()).toBe('v1 /swr');
  });
});
