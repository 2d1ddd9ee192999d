// lookup: L1 synchronously, then memcached; the entry's age decides hit, stale or miss. A store fault
// is a miss (the store counted it). A fresh L1 hit finishes without a single await.
import type { CacheEntry } from '../../core/entry';
import { freshness } from '../../core/policy';
import type { Freshness } from '../../core/policy';
import type { StepName, Transaction } from '../transaction';

function classify(tx: Transaction, entry: CacheEntry | undefined): StepName {
  if (entry === undefined) {
    tx.status = 'MISS';
    return 'fetch';
  }
  return classifyAs(tx, entry, freshness(entry, tx.now));
}

function classifyAs(tx: Transaction, entry: CacheEntry, f: Freshness): StepName {
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

export function lookup(tx: Transaction): StepName | Promise<StepName> {
  const cache = tx.ctx.cache;
  const local = cache.getSync(tx.key);
  if (local !== undefined) {
    // Freshness once: a fresh copy is the hit; a stale one is final only when there is no memcached behind it.
    const f = freshness(local, tx.now);
    if (f === 'fresh' || cache.store.kind === 'memory') return classifyAs(tx, local, f);
    cache.store.evictLocal(tx.key);
  } else if (cache.store.kind === 'memory') {
    return classify(tx, undefined);
  }
  return cache.get(tx.key).then((entry) => afterL2(tx, entry, local));
}
