import {
  ENTRY_ETAG_WEAKENED,
  ENTRY_NO_TRANSFORM,
  DEFAULT_GZIP_FLAG,
  ENVELOPE_FLAG,
  decodeEntry,
  decodeEnvelope,
  encodeEntry,
  encodeEnvelope,
  entryLifetimeSeconds,
} from './entry';
import type { CacheEntry } from './entry';
import { EntryDecodeError } from './errors';

/** Deterministic PRNG (mulberry32) so property-style cases are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(r: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function randomToken(r: () => number, min: number, max: number, alphabet: string): string {
  const n = min + Math.floor(r() * (max - min + 1));
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
let LATIN1 = '';
for (let c = 0x20; c < 0x100; c++) if (c !== 0x7f) LATIN1 += String.fromCharCode(c);

function entry(partial: Partial<CacheEntry>): CacheEntry {
  return {
    status: 200,
    headers: ['content-type', 'text/html; charset=utf-8'],
    body: Buffer.from('<p>hi</p>'),
    storedAt: 1_700_000_000_123,
    ttlSeconds: 300,
    staleWhileRevalidateSeconds: 30,
    staleIfErrorSeconds: 86400,
    tags: ['page', 'post-1'],
    format: 'envelope',
    ...partial,
  };
}

describe('envelope round trip', () => {
  it('keeps every field', () => {
    const e = entry({ status: 404, headers: ['set-x', 'a', 'x-multi', 'one', 'x-multi', 'two'] });
    const d = decodeEnvelope(encodeEnvelope(e));
    expect(d).toEqual({ ...e, body: e.body, flags: 0 });
    expect(Buffer.compare(d.body, e.body)).toBe(0);
  });

  it('keeps the flags (v2) and still reads v1 entries, whose reserved field was 0', () => {
    const e = entry({ flags: ENTRY_NO_TRANSFORM | ENTRY_ETAG_WEAKENED });
    const buf = encodeEnvelope(e);
    expect(buf[2]).toBe(2);
    expect(decodeEnvelope(buf).flags).toBe(ENTRY_NO_TRANSFORM | ENTRY_ETAG_WEAKENED);
    const v1 = Buffer.from(encodeEnvelope(entry({})));
    v1[2] = 1;
    expect(decodeEnvelope(v1)).toMatchObject({ flags: 0, status: e.status });
  });

  it('keeps a page with a validator for the keep window, and never asks memcached for "no expiry" (0)', () => {
    expect(entryLifetimeSeconds({ ttlSeconds: 60, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 10, headers: ['etag', '"a"'] }, 100)).toBe(170);
    expect(entryLifetimeSeconds({ ttlSeconds: 60, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 10, headers: ['content-type', 'x'] }, 100)).toBe(70);
    expect(entryLifetimeSeconds({ ttlSeconds: 0, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 })).toBe(1);
  });

  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['64 KiB', 64 * 1024],
    ['just under 1 MiB', 1024 * 1024 - 100],
  ])('round-trips a random binary body: %s', (_label, size) => {
    const body = randomBytes(rng(size + 1), size);
    const d = decodeEnvelope(encodeEnvelope(entry({ body })));
    expect(d.body.length).toBe(size);
    expect(d.body.equals(body)).toBe(true);
  });

  it('round-trips 300 random entries (headers, latin1 values, tags, times, statuses)', () => {
    const r = rng(42);
    for (let i = 0; i < 300; i++) {
      const headers: string[] = [];
      const nh = Math.floor(r() * 12);
      for (let h = 0; h < nh; h++) {
        headers.push(randomToken(r, 1, 30, NAME_CHARS), randomToken(r, 0, 200, LATIN1));
      }
      const tags: string[] = [];
      const nt = Math.floor(r() * 5);
      for (let t = 0; t < nt; t++) tags.push(randomToken(r, 1, 40, 'abcdefé-_:0123456789'));
      const e = entry({
        status: 100 + Math.floor(r() * 500),
        headers,
        tags,
        body: randomBytes(r, Math.floor(r() * 5000)),
        storedAt: Math.floor(r() * 2e12) + r(),
        ttlSeconds: Math.floor(r() * 1e6),
        staleWhileRevalidateSeconds: Math.floor(r() * 1e4),
        staleIfErrorSeconds: Math.floor(r() * 1e5),
      });
      const d = decodeEnvelope(encodeEnvelope(e));
      expect(d.status).toBe(e.status);
      expect(d.headers).toEqual(e.headers);
      expect(d.tags).toEqual(e.tags);
      expect(d.storedAt).toBe(e.storedAt);
      expect(d.ttlSeconds).toBe(e.ttlSeconds);
      expect(d.staleWhileRevalidateSeconds).toBe(e.staleWhileRevalidateSeconds);
      expect(d.staleIfErrorSeconds).toBe(e.staleIfErrorSeconds);
      expect(d.body.equals(e.body)).toBe(true);
    }
  });

  it('decodes the body as a view, without copying', () => {
    const buf = encodeEnvelope(entry({ body: Buffer.alloc(1000, 7) }));
    const d = decodeEnvelope(buf);
    expect(d.body.buffer).toBe(buf.buffer);
  });

  it('refuses an odd header list at encode time', () => {
    expect(() => encodeEnvelope(entry({ headers: ['a'] }))).toThrow(TypeError);
  });
});

describe('envelope decode failures are EntryDecodeError (a miss), never garbage', () => {
  const good = encodeEnvelope(entry({}));
  it.each([
    ['empty', Buffer.alloc(0)],
    ['short', good.subarray(0, 20)],
    ['bad magic', Buffer.concat([Buffer.from('XX'), good.subarray(2)])],
    ['unknown version', (() => { const b = Buffer.from(good); b[2] = 99; return b; })()],
    ['header block past the end', (() => { const b = Buffer.from(good); b.writeUInt32BE(1e6, 28); return b; })()],
    ['truncated header block', (() => { const b = Buffer.from(good); b.writeUInt32BE(5, 28); b.writeUInt32BE(0, 32); return b; })()],
    ['status out of range', (() => { const b = Buffer.from(good); b.writeUInt16BE(42, 4); return b; })()],
  ])('%s', (_label, buf) => {
    expect(() => decodeEnvelope(buf)).toThrow(EntryDecodeError);
  });
});

describe('formats and memcached flags', () => {
  const raw = { defaultContentType: 'text/html', gzipFlag: DEFAULT_GZIP_FLAG, ttlSeconds: 60 };

  it('marks envelopes with the envelope flag and reads them back by it', () => {
    const e = entry({});
    const { value, flags } = encodeEntry(e, 'envelope');
    expect(flags & ENVELOPE_FLAG).toBe(ENVELOPE_FLAG);
    expect(decodeEntry(value, flags, raw).tags).toEqual(e.tags);
  });

  it('stores raw entries as the body bytes alone, as nginx serves them', () => {
    const e = entry({ body: Buffer.from('<html>raw</html>') });
    const { value, flags } = encodeEntry(e, 'raw');
    expect(value.equals(e.body)).toBe(true);
    expect(flags).toBe(0);
    const d = decodeEntry(value, flags, raw);
    expect(d.format).toBe('raw');
    expect(d.headers).toEqual(['content-type', 'text/html']);
    expect(d.body.equals(e.body)).toBe(true);
  });

  it('sets the gzip flag for gzip raw bodies and serves them with Content-Encoding: gzip', () => {
    const e = entry({ headers: ['content-type', 'text/html', 'content-encoding', 'gzip'], body: Buffer.from([0x1f, 0x8b, 8]) });
    const { value, flags } = encodeEntry(e, 'raw', 4);
    expect(flags).toBe(4);
    const d = decodeEntry(value, flags, { ...raw, gzipFlag: 4 });
    expect(d.headers).toEqual(['content-type', 'text/html', 'content-encoding', 'gzip']);
  });

  it('memcached lifetime is freshness plus the longer stale window', () => {
    expect(entryLifetimeSeconds({ ttlSeconds: 300, staleWhileRevalidateSeconds: 30, staleIfErrorSeconds: 600 })).toBe(900);
  });
});
