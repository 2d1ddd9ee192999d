// Conditional requests answered from a stored entry (RFC 9110 §13.1): If-None-Match (weak comparison),
// else If-Modified-Since against Last-Modified.
import { entryHeader } from './entry';
import type { CacheEntry } from './entry';

type HeaderValue = string | readonly string[] | undefined;

function opaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith('W/') ? t.slice(2) : t;
}

/** True when a GET/HEAD with these validators should get 304 Not Modified instead of the entry. */
export function isNotModified(ifNoneMatch: HeaderValue, ifModifiedSince: HeaderValue, entry: CacheEntry): boolean {
  if (entry.status !== 200) return false;
  if (ifNoneMatch !== undefined) {
    const etag = entryHeader(entry, 'etag');
    if (etag === undefined) return false;
    const list = Array.isArray(ifNoneMatch) ? ifNoneMatch.join(',') : (ifNoneMatch as string);
    if (list.trim() === '*') return true;
    const mine = opaque(etag);
    for (const candidate of list.split(',')) if (opaque(candidate) === mine) return true;
    // RFC 9110 §13.2.2: If-Modified-Since is ignored when If-None-Match is present.
    return false;
  }
  if (ifModifiedSince !== undefined && !Array.isArray(ifModifiedSince)) {
    const lm = entryHeader(entry, 'last-modified');
    if (lm === undefined) return false;
    const since = Date.parse(ifModifiedSince as string);
    const modified = Date.parse(lm);
    return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
  }
  return false;
}

/** RFC 9110 §15.4.5: the headers a 304 carries over from the full response. */
export const NOT_MODIFIED_HEADERS: ReadonlySet<string> = new Set([
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'vary',
  'last-modified',
]);
