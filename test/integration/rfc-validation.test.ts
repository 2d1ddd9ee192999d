// RFC 9111 §4.3: a stale stored page with a validator is revalidated with a conditional request; a 304
// refreshes it (headers merged as §3.2 says, body kept, freshness recomputed), a 200 replaces it. Also under
// stale-while-revalidate, for no-cache / max-age=0 pages with a validator, and past the stale windows for
// --keep seconds. The edge runs on memcached in front of a scripted origin.
import type http from 'node:http';
import { sleep, startScriptedEdge, scriptedSuite } from '../helpers/scripted-origin';
import type { Scripted } from '../helpers/scripted-origin';

const s = scriptedSuite();

const BIG = `<p>${'compressible text '.repeat(200)}</p>`;

/** A page answering 304 to a matching If-None-Match / If-Modified-Since, else 200 with `body`. */
function validated(opts: { etag?: string; lastModified?: string; cc: string; body: string; on304?: http.OutgoingHttpHeaders }): (req: http.IncomingMessage) => Scripted {
  return (req) => {
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    const base: http.OutgoingHttpHeaders = { 'cache-control': opts.cc };
    if (opts.etag !== undefined) base.etag = opts.etag;
    if (opts.lastModified !== undefined) base['last-modified'] = opts.lastModified;
    if ((opts.etag !== undefined && inm === opts.etag) || (opts.etag === undefined && opts.lastModified !== undefined && ims === opts.lastModified)) {
      return { status: 304, headers: { ...base, ...opts.on304 } };
    }
    return { status: 200, headers: { ...base, 'content-type': 'text/html' }, body: opts.body };
  };
}

describe('revalidating a stale page (RFC 9111 §4.3)', () => {
  it('sends If-None-Match with the stored (origin-strong) ETag; a 304 refreshes the entry and the client gets the full page', async () => {
    s.o.script('/etag', validated({ etag: '"v1"', cc: 'max-age=1', body: BIG, on304: { 'cache-control': 'max-age=60', 'x-refreshed': 'yes' } }));
    const first = await s.e.get('/etag', { 'accept-encoding': 'gzip' });
    expect(first.headers['x-cache']).toBe('MISS');
    // The miss streamed the origin's bytes as they came, with the origin's own tag.
    expect(first.headers['content-encoding']).toBeUndefined();
    expect(first.headers.etag).toBe('"v1"');
    const gz = await s.e.get('/etag', { 'accept-encoding': 'gzip' });
    expect(gz.headers['x-cache']).toBe('HIT');
    // The edge stored the page compressed and made its ETag weak (RFC 9110 §8.8.3).
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.etag).toBe('W/"v1"');
    await sleep(1200);
    const second = await s.e.get('/etag');
    const sent = s.o.seen('/etag')[1]!;
    // RFC 9111 §4.3.1: the cache MUST send the stored entity tag; here the origin's own strong one.
    expect(sent['if-none-match']).toBe('"v1"');
    // RFC 9111 §4.3.4: a 304 refreshes the stored response and the client gets it in full.
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('REVALIDATED');
    expect(second.body.toString()).toBe(BIG);
    // RFC 9111 §3.2: the 304's header fields are added to the stored response.
    expect(second.headers['x-refreshed']).toBe('yes');
    const third = await s.e.get('/etag');
    // RFC 9111 §4.3.4: freshness is recomputed from the 304's max-age=60.
    expect(third.headers['x-cache']).toBe('HIT');
    expect(third.headers['x-refreshed']).toBe('yes');
    expect(s.o.seen('/etag')).toHaveLength(2);
    expect(await s.e.metric('edge_cache_revalidations_total')).toContain('edge_cache_revalidations_total{result="not-modified"} 1');
  });

  it('sends If-Modified-Since when only Last-Modified is stored (RFC 9111 §4.3.1)', async () => {
    const lm = 'Sat, 01 Nov 2025 00:00:00 GMT';
    s.o.script('/lm', validated({ lastModified: lm, cc: 'max-age=1', body: 'by date' }));
    expect((await s.e.get('/lm')).headers['x-cache']).toBe('MISS');
    await sleep(1200);
    const r = await s.e.get('/lm');
    // RFC 9111 §4.3.1: the cache SHOULD send Last-Modified in If-Modified-Since.
    expect(s.o.seen('/lm')[1]!['if-modified-since']).toBe(lm);
    expect(r.headers['x-cache']).toBe('REVALIDATED');
    expect(r.body.toString()).toBe('by date');
  });

  it('replaces the stored page when the origin answers 200 (RFC 9111 §4.3.3)', async () => {
    let version = 1;
    s.o.script('/changed', (req) => ({
      status: 200,
      headers: { etag: `"c${version}"`, 'cache-control': 'max-age=1', 'content-type': 'text/plain', 'x-had-inm': String(req.headers['if-none-match'] ?? '') },
      body: `version ${version}`,
    }));
    expect((await s.e.get('/changed')).body.toString()).toBe('version 1');
    version = 2;
    await sleep(1200);
    const r = await s.e.get('/changed');
    // RFC 9111 §4.3.3: a full response to the conditional request replaces the stored one.
    expect(s.o.seen('/changed')[1]!['if-none-match']).toBe('"c1"');
    expect(r.headers['x-cache']).toBe('EXPIRED');
    expect(r.body.toString()).toBe('version 2');
    const again = await s.e.get('/changed');
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.body.toString()).toBe('version 2');
  });

  it("answers the client's own conditional request 304 after revalidating (RFC 9111 §4.3.2)", async () => {
    s.o.script('/client-304', validated({ etag: '"k1"', cc: 'max-age=1', body: 'conditional' }));
    await s.e.get('/client-304');
    await sleep(1200);
    const r = await s.e.get('/client-304', { 'if-none-match': '"k1"' });
    // RFC 9111 §4.3.2: the cache answers the client's conditional from the (refreshed) stored response.
    expect(r.status).toBe(304);
    expect(r.body.length).toBe(0);
    expect(s.o.seen('/client-304')).toHaveLength(2);
  });

  it('revalidates in the background under stale-while-revalidate (RFC 5861 §3, RFC 9111 §4.3)', async () => {
    s.o.script('/swr', validated({ etag: '"s1"', cc: 'max-age=1, stale-while-revalidate=60', body: 'swr page' }));
    await s.e.get('/swr');
    await sleep(1200);
    const stale = await s.e.get('/swr');
    expect(stale.headers['x-cache']).toBe('UPDATING');
    await sleep(200);
    // RFC 9111 §4.3.1: the background refresh is a conditional request.
    expect(s.o.seen('/swr')[1]!['if-none-match']).toBe('"s1"');
    const fresh = await s.e.get('/swr');
    // RFC 9111 §4.3.4: the 304 made the stored page fresh again.
    expect(fresh.headers['x-cache']).toBe('HIT');
    expect(fresh.body.toString()).toBe('swr page');
    expect(s.o.seen('/swr')).toHaveLength(2);
  });
});

describe('no-cache and max-age=0 pages with a validator (RFC 9111 §5.2.2.4)', () => {
  it('stores a no-cache page with an ETag and revalidates it on every use', async () => {
    s.o.script('/no-cache', validated({ etag: '"n1"', cc: 'no-cache', body: 'always validated' }));
    expect((await s.e.get('/no-cache')).headers['x-cache']).toBe('MISS');
    for (let i = 0; i < 2; i++) {
      const r = await s.e.get('/no-cache');
      // RFC 9111 §5.2.2.4: never used without successful validation on the origin.
      expect(r.headers['x-cache']).toBe('REVALIDATED');
      expect(r.body.toString()).toBe('always validated');
    }
    const seen = s.o.seen('/no-cache');
    expect(seen).toHaveLength(3);
    expect(seen[1]!['if-none-match']).toBe('"n1"');
    expect(seen[2]!['if-none-match']).toBe('"n1"');
  });

  it('never serves a stored no-cache page when the origin fails: 502 (RFC 9111 §4.2.4)', async () => {
    s.o.script('/no-cache-down', validated({ etag: '"d1"', cc: 'no-cache', body: 'must validate' }));
    await s.e.get('/no-cache-down');
    s.o.script('/no-cache-down', 'reset');
    const r = await s.e.get('/no-cache-down');
    // RFC 9111 §4.2.4: no-cache forbids a stale response even when disconnected.
    expect(r.status).toBe(502);
  });

  it('stores a max-age=0 page with Last-Modified and revalidates it (RFC 9111 §4.2.4, §4.3)', async () => {
    const lm = 'Sat, 01 Nov 2025 00:00:00 GMT';
    s.o.script('/max-age-0', validated({ lastModified: lm, cc: 'max-age=0', body: 'zero' }));
    await s.e.get('/max-age-0');
    const r = await s.e.get('/max-age-0');
    expect(s.o.seen('/max-age-0')[1]!['if-modified-since']).toBe(lm);
    expect(r.headers['x-cache']).toBe('REVALIDATED');
  });

  it('does not store a no-cache page without a validator (revalidating it would be a full fetch)', async () => {
    s.o.script('/no-cache-plain', { headers: { 'cache-control': 'no-cache', 'content-type': 'text/plain' }, body: 'plain' });
    await s.e.get('/no-cache-plain');
    const r = await s.e.get('/no-cache-plain');
    expect(r.headers['x-cache']).toBe('MISS');
    expect(s.o.seen('/no-cache-plain')[1]!['if-none-match']).toBeUndefined();
  });
});

describe('the keep window', () => {
  it('keeps a page with a validator in memcached past its stale windows, so it is revalidated (--keep)', async () => {
    const kept = await startScriptedEdge(s.o, { memcached: s.mc.address, staleIfError: 0, l1TtlSeconds: 1 });
    const none = await startScriptedEdge(s.o, { memcached: s.mc.address, staleIfError: 0, l1TtlSeconds: 1, keep: 0 });
    try {
      s.o.script('/keep', validated({ etag: '"p1"', cc: 'max-age=1', body: 'kept' }));
      await kept.get('/keep');
      await none.get('/keep');
      await sleep(2300);
      const r = await kept.get('/keep');
      const control = await none.get('/keep');
      const seen = s.o.seen('/keep');
      // With --keep: memcached still held it (expiry = freshness + windows + keep), so it was revalidated.
      expect(r.headers['x-cache']).toBe('REVALIDATED');
      // With --keep 0 it expired with its freshness: a plain miss, no validator sent.
      expect(control.headers['x-cache']).toBe('MISS');
      expect(seen.filter((h) => h['if-none-match'] === '"p1"')).toHaveLength(1);
    } finally {
      await kept.edge.close();
      await none.edge.close();
    }
  });
});
