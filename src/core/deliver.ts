// Writing a stored entry to a client: status, the stored header list plus Content-Length, Age, X-Cache
// and Cache-Status, then the body in one write (none for HEAD; a 304 when the validators match).
// A header Node refuses is the entry's fault (EntryDecodeError: delete it, a miss); anything a wrapper of
// res.writeHead/res.end throws is not, and is rethrown as it is for the caller to fall back.
import { ServerResponse } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { isNotModified, NOT_MODIFIED_HEADERS } from './conditional';
import type { DecodedCopies } from './decoded';
import { byteRange } from './range';
import type { ByteRange } from './range';
import type { CacheEntry } from './entry';
import { EntryDecodeError } from './errors';
import { ageSeconds } from './policy';
import { CACHE_STATUS, CACHE_STATUS_HEADER, isCachedStatus, X_CACHE } from './status';
import type { CacheStatus } from './status';

/** What delivery reads from the request: an IncomingMessage as it is (no per-hit view object). */
export interface DeliverRequest {
  readonly method?: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

/** RFC 9111 §5.1: Age on answers from the cache, and on a fresh fetch that arrived with an age already. */
export function pushCacheHeaders(h: string[], status: CacheStatus, age: number): void {
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

const NODE_WRITE_HEAD = ServerResponse.prototype.writeHead;

/** Node's codes for a header name, value or status it will not write: the stored entry is at fault. */
const REFUSED_BY_NODE: ReadonlySet<string> = new Set([
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP_INVALID_HEADER_VALUE',
  'ERR_INVALID_CHAR',
  'ERR_HTTP_INVALID_STATUS_CODE',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
]);

function refused(err: unknown): EntryDecodeError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && REFUSED_BY_NODE.has(code) ? new EntryDecodeError(`stored response refused by Node: ${code}`, { cause: err }) : undefined;
}

/**
 * writeHead with a flat header list. While res.writeHead is Node's own, the list goes to it as is (the
 * fast path: no per-header calls). Once something has wrapped it (on-headers in morgan 1.9 and
 * compression 1.7 reads an array argument as [[name, value], ...] and throws on a flat one), the headers
 * are set the way Node's writeHead merges a list (remove each name, then append, keeping repeats) and the
 * wrapper gets writeHead(status) alone, which every wrapper understands. Throws EntryDecodeError when Node
 * refuses a stored header; a wrapper's own throw is rethrown untouched.
 */
/** Whether res.writeHead is still Node's own (nothing has wrapped it). */
export function isNodeWriteHead(res: ServerResponse): boolean {
  return res.writeHead === NODE_WRITE_HEAD;
}

export function writeHeadList(res: ServerResponse, status: number, headers: readonly string[]): void {
  if (isNodeWriteHead(res)) {
    try {
      res.writeHead(status, headers as string[]);
    } catch (err) {
      throw refused(err) ?? err;
    }
    return;
  }
  try {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw Object.assign(new RangeError(`invalid status ${status}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]!);
    for (let i = 0; i < headers.length; i += 2) res.appendHeader(headers[i]!, headers[i + 1]!);
  } catch (err) {
    throw refused(err) ?? err;
  }
  res.writeHead(status);
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

/**
 * RFC 9110 §14: a range cut from the stored body (206 with Content-Range), or 416 with `bytes *\/length`
 * when it starts past the end. The stored headers go with a 206 (§15.3.7); a 416 carries only its own.
 */
function deliverRange(res: ServerResponse, entry: CacheEntry, status: CacheStatus, age: number, r: ByteRange | 'unsatisfiable'): number {
  const length = entry.body.length;
  if (r === 'unsatisfiable') {
    const h = ['content-range', `bytes */${length}`, 'content-length', '0'];
    pushCacheHeaders(h, status, age);
    writeHeadList(res, 416, h);
    res.end();
    return 416;
  }
  const h = entry.headers.slice();
  h.push('content-range', `bytes ${r.start}-${r.end}/${length}`, 'content-length', String(r.end - r.start + 1));
  pushCacheHeaders(h, status, age);
  writeHeadList(res, 206, h);
  res.end(entry.body.subarray(r.start, r.end + 1));
  return 206;
}

/** Delivers an entry; returns the HTTP status written (304 when answered as not modified, 206/416 for a range). */
export function deliverEntry(res: ServerResponse, req: DeliverRequest, entry: CacheEntry, status: CacheStatus, now: number): number {
  const age = ageSeconds(entry.storedAt, now);
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  if ((inm !== undefined || ims !== undefined) && isNotModified(inm, ims, entry)) {
    writeHeadList(res, 304, notModifiedHeaders(entry, status, age));
    res.end();
    return 304;
  }
  const range = req.headers.range;
  if (range !== undefined && req.method === 'GET') {
    const r = byteRange(range, req.headers['if-range'], entry);
    if (r !== undefined) return deliverRange(res, entry, status, age, r);
  }
  let headers: string[];
  const memo = MEMO.get(entry);
  if (memo !== undefined && memo.age === age && memo.status === status) headers = memo.headers;
  else {
    headers = fullHeaders(entry, status, age);
    MEMO.set(entry, { status, age, headers });
  }
  writeHeadList(res, entry.status, headers);
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

/** Told when a stored compressed body turns out not to decode (after its head went out). */
export type OnCorruptBody = (err: Error) => void;

/** zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR for a cut body) and brotli's (ERR__ERROR_FORMAT_...), not a socket's. */
function isInflateError(err: NodeJS.ErrnoException): boolean {
  const code = err.code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR__'));
}

function ignoreDecodeEnd(): void {
  // A client gone mid-body: pipeline destroyed both streams; nothing to count.
}

/**
 * Delivers a stored compressed entry to a client that does not accept its coding, decoding on the fly as
 * nginx's `gunzip on` does: streamed with back-pressure, so memory stays bounded however large the body
 * inflates (a compressed bomb costs CPU at the client's pace, never the edge's memory). No Content-Length
 * (unknown until decoded) and no ETag (it named the encoded bytes). False for a coding we cannot decode.
 * With `copies`, a small page is inflated once and its copy served with a Content-Length after (decoded.ts).
 */
export function deliverDecoded(
  res: ServerResponse,
  req: { readonly method?: string | undefined; readonly headers?: IncomingHttpHeaders },
  entry: CacheEntry,
  coding: string,
  status: CacheStatus,
  now: number,
  onCorrupt?: OnCorruptBody,
  copies?: DecodedCopies,
): boolean {
  const z = decoder(coding);
  if (z === undefined) return false;
  // RFC 9110 §13.1.3 / RFC 9111 §4.3.2: a conditional request is answered 304 whatever coding this client
  // would get: Last-Modified is the same for both, and the stored (weak) ETag names the content either way.
  const inm = req.headers?.['if-none-match'];
  const ims = req.headers?.['if-modified-since'];
  if ((inm !== undefined || ims !== undefined) && isNotModified(inm, ims, entry)) {
    z.destroy();
    writeHeadList(res, 304, notModifiedHeaders(entry, status, ageSeconds(entry.storedAt, now)));
    res.end();
    return true;
  }
  // A small page already inflated once for an identity client: served as any stored page, with its length.
  const copy = copies?.get(entry, coding);
  if (copy !== undefined) {
    z.destroy();
    deliverEntry(res, req.headers === undefined ? { method: req.method, headers: {} } : (req as DeliverRequest), copy, status, now);
    return true;
  }
  const h: string[] = [];
  const src = entry.headers;
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!;
    if (name === 'content-encoding' || name === 'etag') continue;
    h.push(name, src[i + 1]!);
  }
  pushCacheHeaders(h, status, ageSeconds(entry.storedAt, now));
  writeHeadList(res, entry.status, h);
  if (req.method === 'HEAD' || entry.status === 204) {
    z.destroy();
    res.end();
    return true;
  }
  // The head is out, so a body that does not inflate can only end the response (pipeline destroys it);
  // the caller deletes the entry and counts it. Decoding is the slow path: the callback is per request.
  pipeline(
    z,
    res,
    onCorrupt === undefined
      ? ignoreDecodeEnd
      : function decodeEnded(err: NodeJS.ErrnoException | null | undefined): void {
          if (err !== null && err !== undefined && isInflateError(err)) onCorrupt(err);
        },
  );
  z.end(entry.body);
  return true;
}
