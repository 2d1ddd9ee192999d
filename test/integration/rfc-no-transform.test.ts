// RFC 9111 §5.2.2.6 / RFC 9110 §7.7: a no-transform response is stored and served exactly as received:
// never compressed by the edge, never decoded for a client, its ETag never weakened.
import { gzipSync } from 'node:zlib';
import { scriptedSuite } from '../helpers/scripted-origin';

const s = scriptedSuite();

const BIG = `<p>${'compressible text '.repeat(200)}</p>`;
const GZ = gzipSync(BIG);

beforeAll(async () => {
  s.o.script('/nt', { headers: { 'content-type': 'text/html', 'cache-control': 'max-age=600, no-transform', etag: '"t1"' }, body: BIG });
  s.o.script('/plain', { headers: { 'content-type': 'text/html', 'cache-control': 'max-age=600', etag: '"p1"' }, body: BIG });
  s.o.script('/nt-gz', { headers: { 'content-type': 'text/html', 'cache-control': 'max-age=600, no-transform', 'content-encoding': 'gzip', vary: 'Accept-Encoding' }, body: GZ });
});

describe('no-transform (RFC 9111 §5.2.2.6)', () => {
  it('is stored and served as received: not compressed, ETag kept strong', async () => {
    for (const expected of ['MISS', 'HIT']) {
      const r = await s.e.get('/nt', { 'accept-encoding': 'gzip, br' });
      expect(r.headers['x-cache']).toBe(expected);
      // RFC 9110 §7.7: a proxy MUST NOT transform the content of a no-transform response.
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(r.body.toString()).toBe(BIG);
      expect(r.headers.etag).toBe('"t1"');
    }
  });

  it('a page without it is compressed and its ETag made weak (control)', async () => {
    await s.e.get('/plain');
    const r = await s.e.get('/plain', { 'accept-encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers.etag).toBe('W/"p1"');
  });

  it('a gzip no-transform page is never decoded for a client without Accept-Encoding: that client asks the origin', async () => {
    const stored = await s.e.get('/nt-gz', { 'accept-encoding': 'gzip' });
    expect(stored.headers['x-cache']).toBe('MISS');
    const r = await s.e.get('/nt-gz');
    // RFC 9110 §7.7: decoding would be a transformation; the bytes are the origin's own.
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(Buffer.compare(r.body, GZ)).toBe(0);
    expect(s.o.seen('/nt-gz')).toHaveLength(2);
    const hit = await s.e.get('/nt-gz', { 'accept-encoding': 'gzip' });
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(Buffer.compare(hit.body, GZ)).toBe(0);
  });
});
