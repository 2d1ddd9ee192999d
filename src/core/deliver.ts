// Writing a stored entry to a client: status, the stored header list plus Content-Length, Age, X-Cache
// and Cache-Status, then the body in one write (none for HEAD; a 304 when the validators match).
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { isNotModified, NOT_MODIFIED_HEADERS } from './conditional';
import type { CacheEntry } from './entry';
import { ageSeconds } from './policy';
import { CACHE_STATUS, CACHE_STATUS_HEADER, isCachedStatus, X_CACHE } from './status';
import type { CacheStatus } from './status';

/** What delivery reads from the request: an IncomingMessage as it is (no per-hit view object). */
export interface DeliverRequest {
  readonly method?: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

/** RFC 9111 §5.1: Age on answers from the cache, and on a fresh fetch that arrived with an age already. */
function pushCacheHeaders(h: string[], status: CacheStatus, age: number): void {
  if (isCachedStatus(status) || age > 0) h.push('age', String(age));
  h.push(X_CACHE, status, CACHE_STATUS, CACHE_STATUS_HEADER[status]);
}

/** Headers for a full delivery; a fresh array (the memo below keeps it). */
function fullHeaders(entry: CacheEntry, status: CacheStatus, age: number): string[] {
  const h = entry.headers.slice();
  // RFC 9110 §8.6: no Content-Length on 204 (nor 1xx/304, which are never stored).
  if (entry.status !== 204) h.push('content-length', String(entry.body.length));
  pushCacheHeaders(h, status, age);
  return h;
}

function notModifiedHeaders(entry: CacheEntry, status: CacheStatus, age: number): string[] {
  const h: string[] = [];
  const src = entry.headers;
  for (let i = 0; i < src.length; i += 2) if (NOT_MODIFIED_HEADERS.has(src[i]!)) h.push(src[i]!, src[i + 1]!);
  pushCacheHeaders(h, status, age);
  return h;
}

interface HeaderMemo {
  status: CacheStatus;
  age: number;
  headers: string[];
}

/**
 * The full header list of the last delivery of each entry, reused while status and Age are unchanged
 * (Age moves once a second): a hot page's hits then build no header array at all. writeHead only reads
 * the list. Entries are the keys, so a memo goes when its entry does.
 */
const MEMO = new WeakMap<CacheEntry, HeaderMemo>();

/** Delivers an entry; returns the HTTP status written (304 when answered as not modified). */
export function deliverEntry(res: ServerResponse, req: DeliverRequest, entry: CacheEntry, status: CacheStatus, now: number): number {
  const age = ageSeconds(entry.storedAt, now);
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  if ((inm !== undefined || ims !== undefined) && isNotModified(inm, ims, entry)) {
    res.writeHead(304, notModifiedHeaders(entry, status, age));
    res.end();
    return 304;
  }
  let headers: string[];
  const memo = MEMO.get(entry);
  if (memo !== undefined && memo.age === age && memo.status === status) headers = memo.headers;
  else {
    headers = fullHeaders(entry, status, age);
    MEMO.set(entry, { status, age, headers });
  }
  res.writeHead(entry.status, headers);
  if (req.method === 'HEAD') res.end();
  else res.end(entry.body);
  return entry.status;
}

function decoder(coding: string): Transform | undefined {
  if (coding === 'gzip' || coding === 'x-gzip') return zlib.createGunzip();
  if (coding === 'br') return zlib.createBrotliDecompress();
  if (coding === 'deflate') return zlib.createInflate();
  return undefined;
}

function decodedDone(err: NodeJS.ErrnoException | null): void {
  // A corrupt body or a client gone: pipeline destroyed the response; nothing more to do.
  void err;
}

/**
 * Delivers a stored compressed entry to a client that does not accept its coding, decoding on the fly as
 * nginx's `gunzip on` does: streamed with back-pressure, so memory stays bounded however large the body
 * inflates (a compressed bomb costs CPU at the client's pace, never the edge's memory). No Content-Length
 * (unknown until decoded) and no ETag (it named the encoded bytes). False for a coding we cannot decode.
 */
export function deliverDecoded(
  res: ServerResponse,
  req: { readonly method?: string | undefined },
  entry: CacheEntry,
  coding: string,
  status: CacheStatus,
  now: number,
): boolean {
  const z = decoder(coding);
  if (z === undefined) return false;
  const h: string[] = [];
  const src = entry.headers;
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!;
    if (name === 'content-encoding' || name === 'etag') continue;
    h.push(name, src[i + 1]!);
  }
  pushCacheHeaders(h, status, ageSeconds(entry.storedAt, now));
  res.writeHead(entry.status, h);
  if (req.method === 'HEAD' || entry.status === 204) {
    z.destroy();
    res.end();
    return true;
  }
  pipeline(z, res, decodedDone);
  z.end(entry.body);
  return true;
}
