// The cross-process half of a fill, for both doors: before producing a page (an origin fetch at the edge,
// a render in the middleware) the leader takes the page's fill lock in the shared store; if another
// process holds it, it waits (bounded) for that one's page, and lets the lock go the way the fill ended.
import { setTimeout as sleep } from 'node:timers/promises';
import type { PageCache } from './cache';
import type { CacheEntry } from './entry';
import { acquireLock, isMarkedUncacheable, lockKeyFor, markUncacheable, releaseLock } from './lock';
import { freshness } from './policy';
import { isVariantIndex } from './variants';

/** What the leader does: serve the page another process stored meanwhile, or produce it (holding the lock or not). */
export type FillTurn = { readonly kind: 'found'; readonly entry: CacheEntry } | { readonly kind: 'produce'; readonly locked: boolean };

/** How a produced page ended, which decides how a held lock is let go. */
export type FillEnd = 'stored' | 'uncacheable' | 'other';

const POLL_MS = 10;

/**
 * Takes the page's fill lock (memcached `add`). While another process holds it, polls every 10 ms, at most
 * `waitMs` in all: a hit-for-miss mark means produce now (nothing to wait for); the page appearing fresh
 * means serve it. The look comes after each add, so a holder that stored the page and let go just before
 * it is seen (else the page would be produced twice), and goes past this process's L1, which may hold the
 * stale copy. A store fault (lock state unknown) or the wait running out means producing without the lock.
 */
export async function takeFillTurn(cache: PageCache, key: string, waitMs: number, abandoned?: () => boolean): Promise<FillTurn> {
  const store = cache.store;
  const lockKey = lockKeyFor(cache.keyPrefix, key);
  const lockSeconds = waitMs / 1000;
  // The lock's node just failed a call (this request's own lookup, likely): taking the lock would cost a
  // second timeout on a stalled node, so produce without it (a request pays at most one store timeout).
  if (store.suspect?.(lockKey) === true) return PRODUCE_UNLOCKED;
  let state = await acquireLock(store, lockKey, lockSeconds);
  const deadline = Date.now() + waitMs;
  while (state === 'held' && Date.now() < deadline && abandoned?.() !== true) {
    if (await isMarkedUncacheable(store, lockKey)) return PRODUCE_UNLOCKED;
    await sleep(POLL_MS);
    state = await acquireLock(store, lockKey, lockSeconds);
    store.evictLocal(key);
    const entry = await cache.get(key);
    if (entry !== undefined && isVariantIndex(entry)) {
      // The page turned out to vary (RFC 9111 §4.1): the holder stored its own variant, maybe not this
      // request's; produce without waiting further (the lookup after this one resolves variants).
      if (state === 'acquired') releaseLock(store, lockKey);
      return PRODUCE_UNLOCKED;
    }
    if (entry !== undefined && freshness(entry, Date.now()) === 'fresh') {
      if (state === 'acquired') releaseLock(store, lockKey);
      return { kind: 'found', entry };
    }
  }
  return state === 'acquired' ? PRODUCE_LOCKED : PRODUCE_UNLOCKED;
}

const PRODUCE_LOCKED: FillTurn = { kind: 'produce', locked: true };
const PRODUCE_UNLOCKED: FillTurn = { kind: 'produce', locked: false };

/**
 * Lets a held fill lock go. A page that may not be stored for anyone (private, Set-Cookie, too large)
 * leaves the hit-for-miss mark, so other processes produce at once instead of queueing behind the lock;
 * a stored page, an origin error, a client abort or the client's own no-store just release it (the next
 * fill should still be coalesced).
 */
export function endFill(cache: PageCache, key: string, locked: boolean, end: FillEnd): void {
  if (!locked) return;
  const lockKey = lockKeyFor(cache.keyPrefix, key);
  if (end === 'uncacheable') markUncacheable(cache.store, lockKey);
  else releaseLock(cache.store, lockKey);
}
