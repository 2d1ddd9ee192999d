// L1 (in-process, lru-cache) in front of L2 (memcached): reads go L1 then L2 and fill L1 on an L2 hit;
// writes go to both. L1 keeps an item at most l1TtlSeconds, which bounds how long a purge made through
// another edge can go unseen here.
import type { CacheStore, NodeHealth, StoredValue } from '../store';
import type { MemoryStore } from './memory';

export interface TieredStoreOptions {
  l1: MemoryStore;
  l2: CacheStore;
  /** Longest an item stays in L1, in seconds. The L1 store's own maxTtlSeconds should match. */
  l1TtlSeconds: number;
  /**
   * How much older than this process's get an L2 read it joined may be (memcached joins reads younger than
   * its timeout), in ms: an L1 fill's lifetime counts from the read's start, so a purge made elsewhere is
   * seen within l1TtlSeconds of being made, never later. Default 0.
   */
  joinWindowMs?: number;
}

/** Keys whose last write is remembered (see `wrote`). */
const WRITTEN_MAX = 10_000;

export function createTieredStore(options: TieredStoreOptions): CacheStore {
  const { l1, l2, l1TtlSeconds } = options;
  const l1TtlMs = l1TtlSeconds * 1000;
  const joinWindowMs = options.joinWindowMs ?? 0;
  /** Values already put in L1: memcached hands one value to every get that joined its read, filled once. */
  const filled = new WeakSet<StoredValue>();
  // A read of memcached that began before this process wrote or evicted its key must not fill L1 when
  // it ends (it could bring back what a purge just removed): writes are numbered, and a fill is skipped
  // when its key was written after the read began. The map is bounded: when full it is cleared and reads
  // begun before that moment skip their fill.
  let writes = 0;
  let floor = 0;
  const writtenAt = new Map<string, number>();
  function wrote(key: string): void {
    writes++;
    if (writtenAt.size >= WRITTEN_MAX) {
      writtenAt.clear();
      floor = writes;
    }
    writtenAt.set(key, writes);
  }

  function fill(key: string, value: StoredValue, readBegunAt: number): void {
    // Filling L1 on an L2 hit is the point of L1: the next request for this page never leaves the process.
    // The entry's own freshness is checked on every hit, so L1 only bounds how long a purge goes unseen:
    // counted from when the read began (memcached may have answered it just before a purge landed), not
    // from now, or a slow read would stretch the bound by its own duration.
    const ttlMs = l1TtlMs - (performance.now() - readBegunAt) - joinWindowMs;
    if (ttlMs >= 1) l1.putValue(key, value, ttlMs / 1000);
  }

  return {
    kind: 'tiered',
    getSync(key: string): StoredValue | undefined {
      return l1.getSync(key);
    },
    async get(key: string): Promise<StoredValue | undefined> {
      // peek: callers on the hit path have usually just asked getSync, which counted the L1 miss.
      const local = l1.peek(key);
      if (local !== undefined) return local;
      const begun = writes;
      const begunAt = performance.now();
      const remote = await l2.get(key);
      if (remote !== undefined && !filled.has(remote) && begun >= floor && (writtenAt.get(key) ?? 0) <= begun) {
        filled.add(remote);
        fill(key, remote, begunAt);
      }
      return remote;
    },
    async set(key, value, flags, ttlSeconds): Promise<boolean> {
      wrote(key);
      // memcached first, in this tick: a get that begins after this line is sent after the write (one
      // connection answers in order) and joins no read begun before it, whatever L1 does with the value.
      const remote = l2.set(key, value, flags, ttlSeconds);
      // L1 is written even when L2 fails: with memcached down this edge still shields its origin.
      await l1.set(key, value, flags, ttlSeconds > 0 ? Math.min(ttlSeconds, l1TtlSeconds) : l1TtlSeconds);
      return remote;
    },
    add(key, value, flags, ttlSeconds): Promise<boolean | undefined> {
      return l2.add(key, value, flags, ttlSeconds);
    },
    append(key, value): Promise<boolean> {
      wrote(key);
      l1.evictLocal(key);
      return l2.append(key, value);
    },
    async delete(key: string): Promise<boolean> {
      wrote(key);
      l1.evictLocal(key);
      return l2.delete(key);
    },
    suspect(key: string): boolean {
      return l2.suspect?.(key) === true;
    },
    evictLocal(key: string): void {
      wrote(key);
      l1.evictLocal(key);
      l2.evictLocal(key);
    },
    health(): readonly NodeHealth[] {
      return l2.health();
    },
    async close(): Promise<void> {
      await l1.close();
      await l2.close();
    },
  };
}
