// Soft purge: a stored page marked stale instead of deleted, so the next request is served the old page at
// once (UPDATING) while one refresh runs, as Fastly's soft purge. Pure: the entry in, the entry to store out.
import type { CacheEntry } from './entry';
import { entryHeader } from './entry';
import { parseCacheControl } from './headers';

/**
 * How long a soft-purged page may still be served while its refresh runs (a day): past it, or with the
 * origin down that long, the next request waits for the origin as for any expired page.
 */
export const SOFT_PURGE_GRACE_SECONDS = 86400;

/**
 * RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.4: must-revalidate, proxy-revalidate and no-cache forbid serving the
 * response stale; such a page is soft-purged to "expired, no stale window", so it is revalidated (a
 * conditional request when it has a validator) before its next use. s-maxage does not count here: the
 * page was still fresh by the origin's word, and it is served only until the one refresh lands.
 */
export function forbidsStale(entry: Pick<CacheEntry, 'headers'>): boolean {
  const cc = entryHeader(entry, 'cache-control');
  if (cc === undefined) return false;
  const d = parseCacheControl(cc);
  return d.has('must-revalidate') || d.has('proxy-revalidate') || d.has('no-cache');
}

/**
 * The entry as a soft purge leaves it: its freshness ends now (ttl = its age, whole seconds down, so
 * `freshness()` says stale at once), served stale while revalidating for SOFT_PURGE_GRACE_SECONDS, or for
 * none when its response forbids stale. Undefined for raw entries, which carry no times (nginx serves them
 * while present): those are deleted instead.
 */
export function softPurged(entry: CacheEntry, now: number): CacheEntry | undefined {
  if (entry.storedAt === 0 || entry.format === 'raw') return undefined;
  const age = Math.max(0, Math.floor((now - entry.storedAt) / 1000));
  const noStale = forbidsStale(entry);
  return {
    ...entry,
    ttlSeconds: Math.min(entry.ttlSeconds, age),
    staleWhileRevalidateSeconds: noStale ? 0 : Math.max(entry.staleWhileRevalidateSeconds, SOFT_PURGE_GRACE_SECONDS),
    staleIfErrorSeconds: noStale ? 0 : entry.staleIfErrorSeconds,
  };
}
