// A short fill lock in the shared store (memcached `add`), so that one process among all edges and
// workers fetches a page while the others wait for it: cross-process request coalescing.
import { createHash } from 'node:crypto';
import type { CacheStore } from './store';

export type LockState = 'acquired' | 'held' | 'unknown';

const LOCK_VALUE = Buffer.from('1');
/** Left in the lock's place when the fill found the page uncacheable (Varnish's hit-for-miss). */
const PASS_VALUE = Buffer.from('pass');
/** How long an uncacheable verdict stands before one fill is tried under the lock again. */
export const HIT_FOR_MISS_SECONDS = 10;

/** The lock's key: md5 of a text no page key can have (a host never holds \0), 32 hex like every key. */
export function lockKeyFor(keyPrefix: string, key: string): string {
  return createHash('md5').update(`${keyPrefix}\0lock\0${key}`).digest('hex');
}

/** Takes the lock for at most ttlSeconds (it expires by itself if its holder dies). */
export async function acquireLock(store: CacheStore, lockKey: string, ttlSeconds: number): Promise<LockState> {
  const r = await store.add(lockKey, LOCK_VALUE, 0, Math.max(1, Math.ceil(ttlSeconds)));
  return r === true ? 'acquired' : r === false ? 'held' : 'unknown';
}

function released(): void {}

/** Releases a lock this process holds; fire-and-forget (the TTL bounds a lost delete). */
export function releaseLock(store: CacheStore, lockKey: string): void {
  store.delete(lockKey).then(released, released);
}

/**
 * Releases the lock leaving a short "uncacheable" mark (Varnish's hit-for-miss): the page just fetched may
 * not be stored (Set-Cookie, private, too large), so nobody should queue behind a lock for it; for
 * HIT_FOR_MISS_SECONDS every process fetches it directly instead.
 */
export function markUncacheable(store: CacheStore, lockKey: string): void {
  store.set(lockKey, PASS_VALUE, 0, HIT_FOR_MISS_SECONDS).then(released, released);
}

/** Whether the lock's key holds the uncacheable mark (then fetch at once, without waiting). */
export async function isMarkedUncacheable(store: CacheStore, lockKey: string): Promise<boolean> {
  store.evictLocal(lockKey);
  const v = await store.get(lockKey);
  return v !== undefined && v.value.equals(PASS_VALUE);
}
