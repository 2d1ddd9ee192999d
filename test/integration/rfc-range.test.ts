// RFC 9110 §14: Range requests answered from a stored complete 200. One range gets 206 with Content-Range
// cut from the stored body, a range past the end 416, and everything the cache does not serve as a range
// (several ranges, another unit, a malformed range, an If-Range that does not hold) the whole 200, which
// §14.2 allows. A range miss fetches the whole object, so it is stored and later ranges are cut from it.
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { listen, uniquePrefix } from '../helpers/express-app';
import { request } from '../helpers/origin';
import { scriptedSuite } from '../helpers/scripted-origin';

const s = scriptedSuite({ compression: 'off' });

/** 100 distinct bytes: every cut is visible. */
const BODY = Buffer.from(Array.from({ length: 100 }, (_, i) => String.fromCharCode(33 + (i % 90))).join(''));
const LM = 'Sat, 01 Nov 2025 00:00:00 GMT';

let seq = 0;
/** A stored page: scripted, fetched once whole (a MISS), so the tests below are hits. */
async function stored(etag = '"r1"'): Promise<string> {
  const path = `/range-${++seq}`;
  s.o.script(path, { headers: { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=600', etag, 'last-modified': LM }, body: BODY });
  await s.e.get(path);
  return path;
}

describe('single ranges from the cache (RFC 9110 §14.1.2, §15.3.7)', () => {
  it.each([
    ['bytes=0-9', 0, 9],
    ['bytes=90-', 90, 99],
    ['bytes=-5', 95, 99],
    ['bytes=95-200', 95, 99], // a last-pos past the end is cut to the length (§14.1.2)
    ['BYTES = 10-19', 10, 19], // the unit is case-insensitive, whitespace around '=' allowed
  ])('%s: 206 with Content-Range and exactly those bytes', async (range, start, end) => {
    const path = await stored();
    const r = await s.e.get(path, { range });
    expect(r.status).toBe(206);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/100`);
    expect(r.headers['content-length']).toBe(String(end - start + 1));
    expect(r.body.equals(BODY.subarray(start, end + 1))).toBe(true);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(s.o.seen(path)).toHaveLength(1);
  });

  it('a range starting past the end: 416 with Content-Range: bytes */length (§15.5.17)', async () => {
    const path = await stored();
    const r = await s.e.get(path, { range: 'bytes=100-' });
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe('bytes */100');
    expect(r.body.length).toBe(0);
  });

  it('bytes=-0 is unsatisfiable (§14.1.2): 416', async () => {
    const path = await stored();
    expect((await s.e.get(path, { range: 'bytes=-0' })).status).toBe(416);
  });
});

describe('what gets the whole 200 instead (§14.2: a server MAY ignore Range)', () => {
  it.each([
    ['several ranges (no multipart/byteranges)', 'bytes=0-1,5-6'],
    ['another unit', 'items=0-1'],
    ['a malformed range', 'bytes=abc'],
    ['first-pos after last-pos (invalid, §14.1.1)', 'bytes=9-2'],
  ])('%s', async (_what, range) => {
    const path = await stored();
    const r = await s.e.get(path, { range });
    expect(r.status).toBe(200);
    expect(r.headers['content-range']).toBeUndefined();
    expect(r.body.equals(BODY)).toBe(true);
  });

  it('HEAD with a Range: the whole response head (Range is defined for GET only, §14.2)', async () => {
    const path = await stored();
    const r = await s.e.get(path, { range: 'bytes=0-9' }, 'HEAD');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('100');
  });
});

describe('If-Range (§13.1.5)', () => {
  it('a matching strong ETag: the range', async () => {
    const path = await stored('"strong"');
    const r = await s.e.get(path, { range: 'bytes=0-9', 'if-range': '"strong"' });
    expect(r.status).toBe(206);
  });

  it('another ETag: the whole 200', async () => {
    const path = await stored('"strong"');
    const r = await s.e.get(path, { range: 'bytes=0-9', 'if-range': '"other"' });
    expect(r.status).toBe(200);
    expect(r.body.equals(BODY)).toBe(true);
  });

  it('a weak ETag never matches (strong comparison): the whole 200', async () => {
    const path = await stored('W/"weak"');
    const r = await s.e.get(path, { range: 'bytes=0-9', 'if-range': 'W/"weak"' });
    expect(r.status).toBe(200);
  });

  it('a date equal to Last-Modified: the range; another date: the whole 200', async () => {
    const path = await stored();
    expect((await s.e.get(path, { range: 'bytes=0-9', 'if-range': LM })).status).toBe(206);
    expect((await s.e.get(path, { range: 'bytes=0-9', 'if-range': 'Sun, 02 Nov 2025 00:00:00 GMT' })).status).toBe(200);
  });
});

it('a range miss fetches the whole object (the origin sees no Range), stores it, and later ranges are hits', async () => {
  const path = `/range-miss-${++seq}`;
  s.o.script(path, { headers: { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=600' }, body: BODY });
  const first = await s.e.get(path, { range: 'bytes=0-9' });
  expect(s.o.seen(path)[0]!.range).toBeUndefined();
  // The first answer is the range cut from the page just fetched.
  expect(first.status).toBe(206);
  expect(first.body.equals(BODY.subarray(0, 10))).toBe(true);
  const second = await s.e.get(path, { range: 'bytes=10-19' });
  expect(second.status).toBe(206);
  expect(second.headers['x-cache']).toBe('HIT');
  expect(second.body.equals(BODY.subarray(10, 20))).toBe(true);
  expect(s.o.seen(path)).toHaveLength(1);
});

it('the middleware answers ranges of a stored page the same way', async () => {
  const mw = pageCache({ ttl: 60, keyPrefix: uniquePrefix('range-mw'), registry: new Registry() });
  const app = express();
  app.use(mw);
  let renders = 0;
  app.get('/doc', (_req, res) => {
    renders++;
    res.type('application/octet-stream').send(BODY);
  });
  const running = await listen(app);
  try {
    await request(running.port, '/doc');
    let r = await request(running.port, '/doc', { headers: { range: 'bytes=5-14' } });
    for (let i = 0; i < 20 && r.headers['x-cache'] !== 'HIT'; i++) r = await request(running.port, '/doc', { headers: { range: 'bytes=5-14' } });
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe('bytes 5-14/100');
    expect(r.body.equals(BODY.subarray(5, 15))).toBe(true);
    expect(renders).toBe(1);
  } finally {
    await running.close();
    await mw.close();
  }
});
