// The cache entry and its codec: one Buffer per entry in memcached, decoded by reading numbers at offsets
// and slicing the body (no copy, no parsing of the body). Two formats (DESIGN.md "Entries"):
// envelope (status, headers, times, tags, body; marked by ENVELOPE_FLAG) and raw (the body alone, nginx's way).
import { EntryDecodeError } from './errors';

/** A stored response. Headers are the flat [name, value, ...] list passed to writeHead, names lower-case. */
export interface CacheEntry {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** When the response was stored (ms since the epoch); 0 when unknown (raw entries). */
  readonly storedAt: number;
  /** Freshness lifetime from storedAt, in seconds. */
  readonly ttlSeconds: number;
  /** After freshness ends, how long it may be served while one refresh runs (RFC 5861). */
  readonly staleWhileRevalidateSeconds: number;
  /** After freshness ends, how long it may be served when the origin fails (RFC 5861). */
  readonly staleIfErrorSeconds: number;
  readonly tags: readonly string[];
  /** The format it came in or goes out as. */
  readonly format: EntryFormat;
  /**
   * What was decided about the response when it was stored (ENTRY_* bits), so a hit reads a field instead
   * of parsing Cache-Control; absent means 0 (entries built before the field existed, raw entries).
   */
  readonly flags?: number;
}

/** RFC 9111 §5.2.2.6 no-transform: stored and served exactly as received (never compressed or decoded). */
export const ENTRY_NO_TRANSFORM = 0x0001;
/** The cache made a strong ETag weak when it compressed the body; revalidation sends the origin's own tag. */
export const ENTRY_ETAG_WEAKENED = 0x0002;
/** Not a page: the variant index at a page's primary key (src/core/variants.ts), read by lookups, never delivered. */
export const ENTRY_VARIANT_INDEX = 0x0004;

export type EntryFormat = 'envelope' | 'raw';

/** memcached flag bit that marks an envelope entry, so a reader never guesses. */
export const ENVELOPE_FLAG = 0x0100;
/** Default flag for gzip raw bodies: set `memcached_gzip_flag 2;` in nginx to match. */
export const DEFAULT_GZIP_FLAG = 0x0002;

const MAGIC_0 = 0x45; // 'E'
const MAGIC_1 = 0x50; // 'P'
/**
 * Bump whenever the layout changes; an unknown version decodes as a miss. v2 (issue 13) gives the u16 at
 * offset 6, reserved and written 0 in v1, to the entry's flags; v1 entries still decode (flags 0).
 */
export const ENVELOPE_VERSION = 2;
const ENVELOPE_V1 = 1;
const FIXED = 36;
const MAX_U16 = 0xffff;
const MAX_U32 = 0xffffffff;

/**
 * Seconds during which the entry may still be used in some way (memcached's expiry): freshness, the longer
 * stale window, and `keepSeconds` more when it has a validator, so it can still be revalidated with a 304
 * (Varnish's keep). At least 1: memcached reads an expiry of 0 as "never".
 */
export function entryLifetimeSeconds(entry: Pick<CacheEntry, 'ttlSeconds' | 'staleWhileRevalidateSeconds' | 'staleIfErrorSeconds'> & Partial<Pick<CacheEntry, 'headers'>>, keepSeconds = 0): number {
  const keep = keepSeconds > 0 && entry.headers !== undefined && hasValidator(entry.headers) ? keepSeconds : 0;
  return Math.max(1, entry.ttlSeconds + Math.max(entry.staleWhileRevalidateSeconds, entry.staleIfErrorSeconds) + keep);
}

/** RFC 9111 §4.3.1: whether a stored header list has a validator (ETag or Last-Modified) to revalidate with. */
export function hasValidator(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'etag' || headers[i] === 'last-modified') return true;
  return false;
}

function clampU32(n: number): number {
  return n <= 0 ? 0 : n >= MAX_U32 ? MAX_U32 : Math.floor(n);
}

/**
 * Envelope layout v2 (big-endian; v1 is the same with offset 6 reserved, 0):
 *   0 'E' 'P' | 2 version u8 | 3 reserved u8 | 4 status u16 | 6 flags u16 (ENTRY_*) | 8 storedAt f64 (ms)
 *   16 ttl u32 | 20 swr u32 | 24 sie u32 | 28 header block length u32 | 32 tag block length u32
 *   36 headers: [u16 name length, name latin1, u32 value length, value latin1]...
 *      tags: [u16 length, tag utf8]...   then the body, to the end.
 */
export function encodeEnvelope(entry: CacheEntry): Buffer {
  const headers = entry.headers;
  if (headers.length % 2 !== 0) throw new TypeError('entry headers must be a flat [name, value, ...] list');
  let headerLen = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const nameLen = Buffer.byteLength(headers[i]!, 'latin1');
    if (nameLen > MAX_U16) throw new RangeError('header name too long to store');
    headerLen += 2 + nameLen + 4 + Buffer.byteLength(headers[i + 1]!, 'latin1');
  }
  let tagLen = 0;
  for (const tag of entry.tags) {
    const n = Buffer.byteLength(tag, 'utf8');
    if (n > MAX_U16) throw new RangeError('tag too long to store');
    tagLen += 2 + n;
  }
  const out = Buffer.allocUnsafe(FIXED + headerLen + tagLen + entry.body.length);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = ENVELOPE_VERSION;
  out[3] = 0;
  out.writeUInt16BE(entry.status, 4);
  out.writeUInt16BE((entry.flags ?? 0) & MAX_U16, 6);
  out.writeDoubleBE(entry.storedAt, 8);
  out.writeUInt32BE(clampU32(entry.ttlSeconds), 16);
  out.writeUInt32BE(clampU32(entry.staleWhileRevalidateSeconds), 20);
  out.writeUInt32BE(clampU32(entry.staleIfErrorSeconds), 24);
  out.writeUInt32BE(headerLen, 28);
  out.writeUInt32BE(tagLen, 32);
  let off = FIXED;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    const nameLen = out.write(name, off + 2, 'latin1');
    out.writeUInt16BE(nameLen, off);
    off += 2 + nameLen;
    const valueLen = out.write(value, off + 4, 'latin1');
    out.writeUInt32BE(valueLen, off);
    off += 4 + valueLen;
  }
  for (const tag of entry.tags) {
    const n = out.write(tag, off + 2, 'utf8');
    out.writeUInt16BE(n, off);
    off += 2 + n;
  }
  entry.body.copy(out, off);
  return out;
}

/** Decodes an envelope; the body is a view into `buf` (no copy). Throws EntryDecodeError on anything odd. */
export function decodeEnvelope(buf: Buffer): CacheEntry {
  if (buf.length < FIXED || buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1) {
    throw new EntryDecodeError('not an envelope entry');
  }
  if (buf[2] !== ENVELOPE_VERSION && buf[2] !== ENVELOPE_V1) throw new EntryDecodeError(`unknown envelope version ${String(buf[2])}`);
  const status = buf.readUInt16BE(4);
  const flags = buf[2] === ENVELOPE_V1 ? 0 : buf.readUInt16BE(6);
  const storedAt = buf.readDoubleBE(8);
  const ttlSeconds = buf.readUInt32BE(16);
  const staleWhileRevalidateSeconds = buf.readUInt32BE(20);
  const staleIfErrorSeconds = buf.readUInt32BE(24);
  const headerLen = buf.readUInt32BE(28);
  const tagLen = buf.readUInt32BE(32);
  const headerEnd = FIXED + headerLen;
  const tagEnd = headerEnd + tagLen;
  if (tagEnd > buf.length || status < 100 || status > 999 || !Number.isFinite(storedAt)) {
    throw new EntryDecodeError('corrupt envelope header');
  }
  const headers: string[] = [];
  let off = FIXED;
  while (off < headerEnd) {
    if (off + 2 > headerEnd) throw new EntryDecodeError('corrupt header block');
    const nameLen = buf.readUInt16BE(off);
    off += 2;
    if (off + nameLen + 4 > headerEnd) throw new EntryDecodeError('corrupt header block');
    headers.push(buf.toString('latin1', off, off + nameLen));
    off += nameLen;
    const valueLen = buf.readUInt32BE(off);
    off += 4;
    if (off + valueLen > headerEnd) throw new EntryDecodeError('corrupt header block');
    headers.push(buf.toString('latin1', off, off + valueLen));
    off += valueLen;
  }
  const tags: string[] = [];
  while (off < tagEnd) {
    if (off + 2 > tagEnd) throw new EntryDecodeError('corrupt tag block');
    const n = buf.readUInt16BE(off);
    off += 2;
    if (off + n > tagEnd) throw new EntryDecodeError('corrupt tag block');
    tags.push(buf.toString('utf8', off, off + n));
    off += n;
  }
  return {
    status,
    headers,
    body: buf.subarray(tagEnd),
    storedAt,
    ttlSeconds,
    staleWhileRevalidateSeconds,
    staleIfErrorSeconds,
    tags,
    format: 'envelope',
    flags,
  };
}

/** How raw entries are read and written: nginx's `default_type` and `memcached_gzip_flag`. */
export interface RawFormatOptions {
  readonly defaultContentType: string;
  readonly gzipFlag: number;
  /** Freshness assumed for a raw entry read back (its real lifetime is memcached's expiry). */
  readonly ttlSeconds: number;
}

/** A raw entry is the body alone; content type from configuration and gzip from the flag, like nginx. */
export function decodeRaw(buf: Buffer, flags: number, opts: RawFormatOptions): CacheEntry {
  const gzip = opts.gzipFlag !== 0 && (flags & opts.gzipFlag) !== 0;
  return {
    status: 200,
    headers: gzip
      ? ['content-type', opts.defaultContentType, 'content-encoding', 'gzip']
      : ['content-type', opts.defaultContentType],
    body: buf,
    storedAt: 0,
    ttlSeconds: opts.ttlSeconds,
    staleWhileRevalidateSeconds: 0,
    staleIfErrorSeconds: 0,
    tags: [],
    format: 'raw',
    flags: 0,
  };
}

/** Value and memcached flags for an entry in the given format. Raw keeps the body bytes as they are. */
export function encodeEntry(entry: CacheEntry, format: EntryFormat, gzipFlag = DEFAULT_GZIP_FLAG): { value: Buffer; flags: number } {
  if (format === 'envelope') return { value: encodeEnvelope(entry), flags: ENVELOPE_FLAG };
  let flags = 0;
  for (let i = 0; i < entry.headers.length; i += 2) {
    if (entry.headers[i] === 'content-encoding' && entry.headers[i + 1]?.toLowerCase() === 'gzip') flags |= gzipFlag;
  }
  return { value: entry.body, flags };
}

/** Decodes a stored value by its flags: the envelope bit says envelope, anything else is raw. */
export function decodeEntry(value: Buffer, flags: number, raw: RawFormatOptions): CacheEntry {
  if ((flags & ENVELOPE_FLAG) !== 0) return decodeEnvelope(value);
  return decodeRaw(value, flags, raw);
}

/** Bytes an entry holds in memory, for byte-bounded caches: body, headers and a fixed overhead. */
export function entrySize(entry: CacheEntry): number {
  let n = 256 + entry.body.length;
  for (let i = 0; i < entry.headers.length; i++) n += entry.headers[i]!.length + 16;
  for (let i = 0; i < entry.tags.length; i++) n += entry.tags[i]!.length + 16;
  return n;
}

/** The first value of a header in an entry's flat list (names are stored lower-case). */
export function entryHeader(entry: Pick<CacheEntry, 'headers'>, name: string): string | undefined {
  const h = entry.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}
