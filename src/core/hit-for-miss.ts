// Hit-for-miss in this process (Varnish's term): keys whose last fill produced a page that may not be
// stored for anyone. For a short while their misses go straight to the origin or the app instead of
// queueing behind a coalesced fill that will not give them a page. Bounded: cleared when full.
import { HIT_FOR_MISS_SECONDS } from './lock';

const MAX_KEYS = 10_000;

export class HitForMiss {
  private readonly until = new Map<string, number>();

  /** Remembers that this key's page may not be shared, for HIT_FOR_MISS_SECONDS. */
  mark(key: string, now: number): void {
    if (this.until.size >= MAX_KEYS) this.until.clear();
    this.until.set(key, now + HIT_FOR_MISS_SECONDS * 1000);
  }

  /** True while the mark stands; an expired mark is dropped. */
  has(key: string, now: number): boolean {
    const t = this.until.get(key);
    if (t === undefined) return false;
    if (t > now) return true;
    this.until.delete(key);
    return false;
  }

  get size(): number {
    return this.until.size;
  }
}
