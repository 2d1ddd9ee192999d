// Compression of stored pages: compressible bodies are stored compressed once (gzip, or brotli when
// configured) and sent as stored to clients that accept it; for the rest they are decoded on the fly.
// Small bodies and types that are already compressed are left alone.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { CacheEntry } from './entry';

export type Compression = 'gzip' | 'br' | 'off';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

/**
 * Bodies up to this size are compressed in line, on the event loop (as nginx's gzip and Varnish's fetch
 * thread do): about 80 µs for a 10 KB HTML page at gzip level 6, where the thread pool's round trip costs
 * more than the work (a zlib stream object, a hand-off each way: 270 µs of latency for the same page, and
 * about 60 µs of this thread's time, measured on Node 20). Larger ones go to the thread pool, so a big
 * page never holds up the hits behind it for long.
 */
export const INLINE_COMPRESS_BYTES = 32 * 1024;

const GZIP_OPTIONS: zlib.ZlibOptions = { level: 6 };

function brotliOptions(size: number): zlib.BrotliOptions {
  return { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size } };
}

function compressBody(body: Buffer, coding: 'gzip' | 'br'): Buffer | Promise<Buffer> {
  if (body.length <= INLINE_COMPRESS_BYTES) {
    return coding === 'gzip' ? zlib.gzipSync(body, GZIP_OPTIONS) : zlib.brotliCompressSync(body, brotliOptions(body.length));
  }
  return coding === 'gzip' ? gzip(body, GZIP_OPTIONS) : brotli(body, brotliOptions(body.length));
}

const COMPRESSIBLE_PREFIXES = ['text/', 'application/json', 'application/javascript', 'application/xml', 'application/xhtml+xml',
  'application/rss+xml', 'application/atom+xml', 'application/ld+json', 'application/manifest+json', 'application/x-javascript',
  'image/svg+xml', 'application/wasm'];

export function isCompressible(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const t = contentType.trimStart().toLowerCase();
  for (const p of COMPRESSIBLE_PREFIXES) if (t.startsWith(p)) return true;
  return false;
}

/** The content coding of a stored entry ('identity' when none). */
export function entryEncoding(entry: Pick<CacheEntry, 'headers'>): string {
  const h = entry.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'content-encoding') return h[i + 1]!.trim().toLowerCase();
  return 'identity';
}

/** Adds Accept-Encoding to the Vary header of a flat header list (or a Vary of its own). */
export function withVaryAcceptEncoding(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'vary') {
      if (!/(^|,)\s*accept-encoding\s*(,|$)/i.test(headers[i + 1]!)) headers[i + 1] = `${headers[i + 1]}, Accept-Encoding`;
      return;
    }
  }
  headers.push('vary', 'Accept-Encoding');
}

/**
 * Whether a page with these headers is stored compressed (compressible type, no coding yet, at least
 * minBytes long; `length` undefined when not known yet: the page may be). Compression still leaves a body
 * alone that it would not make smaller.
 */
export function mayCompress(headers: readonly string[], coding: Compression, minBytes: number, length: number | undefined): boolean {
  if (coding === 'off' || (length !== undefined && length < minBytes) || entryEncoding({ headers }) !== 'identity') return false;
  let contentType: string | undefined;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-type') contentType = headers[i + 1];
  return isCompressible(contentType);
}

/**
 * Returns the entry compressed with `coding` when that pays (compressible type, no coding yet, at
 * least minBytes, and the result smaller), else the entry as it was. A strong ETag becomes weak, as the
 * compressed bytes are another representation (RFC 9110 §8.8.3; nginx's gzip does the same).
 */
export async function compressEntry(entry: CacheEntry, coding: Compression, minBytes: number): Promise<CacheEntry> {
  if (coding === 'off' || !mayCompress(entry.headers, coding, minBytes, entry.body.length)) return entry;
  const body = await compressBody(entry.body, coding);
  if (body.length >= entry.body.length) return entry;
  const headers: string[] = [];
  for (let i = 0; i < entry.headers.length; i += 2) {
    const name = entry.headers[i]!;
    let value = entry.headers[i + 1]!;
    if (name === 'etag' && !value.startsWith('W/')) value = `W/${value}`;
    headers.push(name, value);
  }
  headers.push('content-encoding', coding);
  withVaryAcceptEncoding(headers);
  return { ...entry, headers, body };
}
