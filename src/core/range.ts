// Byte ranges answered from a stored complete response (RFC 9110 §14): one satisfiable range gets 206
// with Content-Range, an unsatisfiable one 416. Several ranges, a range of another unit, a malformed one,
// or an If-Range that does not match get the whole 200, which RFC 9110 §14.2 allows ("a server MAY ignore
// the Range header field"). The cache never asks the origin for a range: fills drop Range, so the whole
// response is stored and every later range is cut from it.
import { entryHeader } from './entry';
import type { CacheEntry } from './entry';

/** A satisfiable range, inclusive, as Content-Range writes it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export type RangeAnswer = ByteRange | 'unsatisfiable' | undefined;

const DIGITS = /^\d+$/;

/** RFC 9110 §13.1.5: If-Range holds when it strongly matches the ETag, or equals Last-Modified exactly. */
function ifRangeHolds(ifRange: string, entry: CacheEntry): boolean {
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) {
    // A weak tag never matches (strong comparison, §8.8.3.2), nor does a stored weak one.
    const etag = entryHeader(entry, 'etag')?.trim();
    return etag !== undefined && !v.startsWith('W/') && !etag.startsWith('W/') && etag === v;
  }
  const lm = entryHeader(entry, 'last-modified');
  return lm !== undefined && lm.trim() === v;
}

/**
 * What a GET with `range` (and `ifRange`) gets from `entry`: a range to send as 206, 'unsatisfiable' for
 * 416, or undefined for the whole response. Only a stored 200 is cut.
 */
export function byteRange(range: string | undefined, ifRange: string | string[] | undefined, entry: CacheEntry): RangeAnswer {
  if (range === undefined || entry.status !== 200) return undefined;
  if (ifRange !== undefined && (Array.isArray(ifRange) || !ifRangeHolds(ifRange, entry))) return undefined;
  const eq = range.indexOf('=');
  if (eq < 0 || range.slice(0, eq).trim().toLowerCase() !== 'bytes') return undefined;
  const spec = range.slice(eq + 1).trim();
  if (spec.includes(',')) return undefined; // several ranges: the whole response (no multipart/byteranges)
  const dash = spec.indexOf('-');
  if (dash < 0) return undefined;
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  const length = entry.body.length;
  if (first === '') {
    // bytes=-N: the last N bytes.
    if (!DIGITS.test(last)) return undefined;
    const n = Number(last);
    if (n === 0 || length === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - n), end: length - 1 };
  }
  if (!DIGITS.test(first) || (last !== '' && !DIGITS.test(last))) return undefined;
  const start = Number(first);
  if (last !== '' && Number(last) < start) return undefined; // invalid: ignored (§14.1.1)
  if (start >= length) return 'unsatisfiable';
  return { start, end: last === '' ? length - 1 : Math.min(Number(last), length - 1) };
}
