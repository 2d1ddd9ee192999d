// store: writes a fetched page to the cache off the client's path, and invalidates what an unsafe
// request changed (RFC 9111 §4.4). Store faults are counted by the store and never reach the client.
import type { IncomingHttpHeaders } from 'node:http';
import type { CacheEntry } from '../core/entry';
import { STORED_BY_ORIGIN } from '../core/headers';
import { cacheKey } from '../core/key';
import { invalidatedUris } from '../core/request-policy';
import type { EdgeContext } from './context';
import type { Transaction } from './transaction';

function notWritten(): boolean {
  return false;
}

/**
 * Starts the write off the client's path and returns its promise (which never rejects), or undefined
 * when there is nothing to write.
 */
export function storeEntry(ctx: EdgeContext, key: string, entry: CacheEntry, originHeaders: IncomingHttpHeaders): Promise<boolean> | undefined {
  // The origin's middleware already wrote this page to the shared memcached: writing it again is waste.
  if (ctx.sharedStore && originHeaders[STORED_BY_ORIGIN] !== undefined) return undefined;
  return ctx.cache.put(key, entry).catch(notWritten);
}

/**
 * RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and the
 * Location / Content-Location URIs when they share its host (the rule lives in core/request-policy.ts).
 */
export function invalidateAfterUnsafe(tx: Transaction, status: number, headers: IncomingHttpHeaders): void {
  const uris = invalidatedUris(tx.req.method, status, tx.host, tx.requestUri, headers.location, headers['content-location']);
  if (uris.length === 0) return;
  const { cache } = tx.ctx;
  // Both renderings of each URI (http, and https behind --trust-proxy).
  const keys = uris.flatMap((uri) => cache.deletePage(cacheKey(cache.keyPrefix, tx.host, uri)));
  tx.ctx.onInvalidate?.(keys);
}
