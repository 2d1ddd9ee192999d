// store: writes a fetched page to the cache off the client's path, and invalidates what an unsafe
// request changed (RFC 9111 §4.4). Store faults are counted by the store and never reach the client.
import type { IncomingHttpHeaders } from 'node:http';
import type { CacheEntry } from '../core/entry';
import { entryVariantNames } from '../core/variants';
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
export function storeEntry(ctx: EdgeContext, tx: Transaction, entry: CacheEntry, originHeaders: IncomingHttpHeaders): Promise<boolean> | undefined {
  // The origin's middleware already wrote this page to the shared memcached: writing it again is waste.
  if (ctx.sharedStore && originHeaders[STORED_BY_ORIGIN] !== undefined) return undefined;
  // A page that varies on request headers (RFC 9111 §4.1): stored as this request's variant, under the index.
  const names = entryVariantNames(entry);
  if (names !== undefined) return ctx.cache.putVariant(tx.variantOf ?? tx.key, entry, names, tx.req.headers).then(isStored, notWritten);
  return ctx.cache.put(tx.key, entry).catch(notWritten);
}

function isStored(secondary: string | undefined): boolean {
  return secondary !== undefined;
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
