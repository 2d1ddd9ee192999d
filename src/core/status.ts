// What happened to a request, in nginx's $upstream_cache_status vocabulary, and the header values for
// each status, built once: X-Cache and an RFC 9211 Cache-Status line.

export type CacheStatus = 'HIT' | 'MISS' | 'BYPASS' | 'EXPIRED' | 'STALE' | 'UPDATING' | 'REVALIDATED';

export const CACHE_STATUSES = ['HIT', 'MISS', 'BYPASS', 'EXPIRED', 'STALE', 'UPDATING', 'REVALIDATED'] as const satisfies readonly CacheStatus[];

/** RFC 9211 cache identifier. */
export const CACHE_NAME = 'edge-page-cache';

/** RFC 9211 §2: hit, or fwd=<why the request went forward>, plus our detail where nginx's word says more. */
export const CACHE_STATUS_HEADER = {
  HIT: `${CACHE_NAME}; hit`,
  MISS: `${CACHE_NAME}; fwd=uri-miss`,
  BYPASS: `${CACHE_NAME}; fwd=bypass`,
  EXPIRED: `${CACHE_NAME}; fwd=stale`,
  STALE: `${CACHE_NAME}; hit; detail=stale-if-error`,
  UPDATING: `${CACHE_NAME}; hit; detail=stale-while-revalidate`,
  REVALIDATED: `${CACHE_NAME}; fwd=stale; fwd-status=304`,
} as const satisfies Record<CacheStatus, string>;

export const X_CACHE = 'x-cache';
export const CACHE_STATUS = 'cache-status';

/** Whether the response came from the cache (and so carries Age). */
export function isCachedStatus(status: CacheStatus): boolean {
  switch (status) {
    case 'HIT':
    case 'STALE':
    case 'UPDATING':
    case 'REVALIDATED':
      return true;
    case 'MISS':
    case 'BYPASS':
    case 'EXPIRED':
      return false;
    default: {
      const never: never = status;
      return never;
    }
  }
}
