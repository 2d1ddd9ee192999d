// Compression of stored pages: compressible bodies are stored compressed once (gzip, or brotli when
// configured) and sent as stored to clients that accept it; for the rest they are decoded on the fly.
// Small bodies and types that are already compressed are left alone.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { CacheEntry } from './entry';

export type Compression = 'gzip' | 'br' | 'off';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

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

function withVaryAcceptEncoding(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'vary') {
      if (!/(^|,)\s*accept-encoding\s*(,|$)/i.test(headers[i + 1]!)) headers[i + 1] = `${headers[i + 1]}, Accept-Encoding`;
      return;
    }
  }
  headers.push('vary', 'Accept-Encoding');
}

/**
 * Returns the entry compressed with `coding` when that pays (compressible type, no coding yet, at
 * least minBytes, and the result smaller), else the entry as it was. A strong ETag becomes weak, as the
 * compressed bytes are another representation (RFC 9110 §8.8.3; nginx's gzip does the same).
 */
export async function compressEntry(entry: CacheEntry, coding: Compression, minBytes: number): Promise<CacheEntry> {
  if (coding === 'off' || entry.body.length < minBytes || entryEncoding(entry) !== 'identity') return entry;
  let contentType: string | undefined;
  for (let i = 0; i < entry.headers.length; i += 2) if (entry.headers[i] === 'content-type') contentType = entry.headers[i + 1];
  if (!isCompressible(contentType)) return entry;
  const body =
    coding === 'gzip'
      ? await gzip(entry.body, { level: 6 })
      : await brotli(entry.body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: entry.body.length } });
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
