// lookup: L1 synchronously, then memcached; the entry's age decides hit, stale or miss. A store fault
// is a miss (the store counted it). A fresh L1 hit finishes without a single await.
import type { CacheEntry } from '../../core/entry';
import { isVariantIndex, readVariantIndex, variantKey } from '../../core/variants';
import type { VariantIndex } from '../../core/variants';
import { deltaSeconds, parseCacheControl } from '../../core/headers';
import { ageSeconds, freshness } from '../../core/policy';
import type { Freshness } from '../../core/policy';
import type { StepName, Transaction } from '../transaction';

function classify(tx: Transaction, entry: CacheEntry | undefined): StepName {
  if (entry === undefined) {
    tx.status = 'MISS';
    return tx.req.headers['cache-control'] === undefined ? 'fetch' : requestDirectives(tx, 'fetch');
  }
  return classifyAs(tx, entry, freshness(entry, tx.now));
}

/**
 * The request's Cache-Control (RFC 9111 §5.2.1), read only when the request has one. By default it is
 * ignored, as Varnish and most CDNs do, so a client cannot make the edge bypass its cache (a reload with
 * no-cache would otherwise reach the origin); --honor-request-cache-control obeys no-cache and max-age
 * (§5.2.1.4, §5.2.1.1) by revalidating. only-if-cached (§5.2.1.7) is always obeyed: what would go to the
 * origin gets 504.
 */
function requestDirectives(tx: Transaction, next: StepName): StepName {
  const cc = parseCacheControl(tx.req.headers['cache-control']);
  if (next === 'deliver' && tx.status === 'HIT' && tx.ctx.opts.honorRequestCacheControl) {
    const maxAge = deltaSeconds(cc, 'max-age');
    // max-age=0 always revalidates (ages are whole seconds: a page stored this second has age 0, too).
    if (cc.has('no-cache') || (maxAge !== undefined && (maxAge === 0 || ageSeconds(tx.entry!.storedAt, tx.now) > maxAge))) {
      tx.status = 'EXPIRED';
      tx.revalidate = true;
      next = 'fetch';
    }
  }
  if (next === 'fetch' && cc.has('only-if-cached')) {
    // RFC 9111 §5.2.1.7: respond with a stored response or a 504.
    tx.synthCode = 504;
    tx.synthMessage = 'Gateway Timeout: not in the cache (only-if-cached)';
    return 'synth';
  }
  return next;
}

function classifyAs(tx: Transaction, entry: CacheEntry, f: Freshness): StepName {
  // One property read on the hit path; the directives are parsed only for a request that sends some.
  if (tx.req.headers['cache-control'] !== undefined) return requestDirectives(tx, classifyFresh(tx, entry, f));
  return classifyFresh(tx, entry, f);
}

function classifyFresh(tx: Transaction, entry: CacheEntry, f: Freshness): StepName {
  tx.entry = entry;
  switch (f) {
    case 'fresh':
      tx.status = 'HIT';
      return 'deliver';
    case 'stale-while-revalidate':
      // RFC 5861 §3: serve at once while one background refresh runs.
      tx.status = 'UPDATING';
      return 'deliver';
    case 'stale-if-error':
    case 'expired':
      // Go to the origin; the stale entry stays on the transaction for stale-if-error (RFC 5861 §4).
      tx.status = 'EXPIRED';
      return 'fetch';
    default: {
      const never: never = f;
      return never;
    }
  }
}

function afterL2(tx: Transaction, entry: CacheEntry | undefined, local: CacheEntry | undefined): StepName {
  // memcached may hold a newer copy than a stale L1 one (another edge refreshed it); else keep the stale one.
  return classify(tx, entry ?? local);
}

/**
 * The page's primary key holds a Vary variant index (RFC 9111 §4.1, core/variants.ts): look up the variant
 * this request's header values select, under its secondary key (once: a variant key never holds an index).
 */
function toVariant(tx: Transaction, index: VariantIndex): StepName | Promise<StepName> {
  if (tx.variantOf !== undefined) return classify(tx, undefined);
  tx.variantOf = tx.key;
  tx.key = variantKey(tx.key, index, tx.req.headers);
  return lookup(tx);
}

function afterGet(tx: Transaction, entry: CacheEntry | undefined, local: CacheEntry | undefined): StepName | Promise<StepName> {
  const index = entry === undefined ? undefined : readVariantIndex(entry);
  return index !== undefined ? toVariant(tx, index) : afterL2(tx, entry, local);
}

export function lookup(tx: Transaction): StepName | Promise<StepName> {
  const cache = tx.ctx.cache;
  const local = cache.getSync(tx.key, tx.now);
  // One flags read on the hit path: an index is not a page.
  if (local !== undefined && isVariantIndex(local)) return toVariant(tx, readVariantIndex(local)!);
  if (local !== undefined) {
    // Freshness once: a fresh copy is the hit; a stale one is final only when there is no memcached behind it.
    const f = freshness(local, tx.now);
    if (f === 'fresh' || cache.store.kind === 'memory') return classifyAs(tx, local, f);
    cache.store.evictLocal(tx.key);
  } else if (cache.store.kind === 'memory') {
    return classify(tx, undefined);
  }
  return cache.get(tx.key).then((entry) => afterGet(tx, entry, local));
}
