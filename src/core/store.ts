// The byte-level store interface every tier implements (memcached, the in-process store, the tiered pair).
// Stores never throw or reject on a cache fault: a failed get is a miss, a failed write returns false,
// and the failure is counted in edge_cache_store_errors_total and logged (rate-limited) by the store.
import type { CacheEntry } from './entry';

/** A value as memcached holds it: bytes and 32-bit flags. */
export interface StoredValue {
  readonly value: Buffer;
  readonly flags: number;
  /**
   * The decoded entry, filled in by the first reader and kept with the value in the in-process tier,
   * so an L1 hit never decodes again. Always present as a property (fixed shape).
   */
  decoded: CacheEntry | undefined;
}

export function storedValue(value: Buffer, flags: number): StoredValue {
  return { value, flags, decoded: undefined };
}

export interface NodeHealth {
  readonly name: string;
  readonly up: boolean;
  readonly failures: number;
  /** ms since the epoch when a down node is next tried; 0 while up. */
  readonly retryAt: number;
}

export interface CacheStore {
  /** 'memory', 'memcached' or 'tiered'. */
  readonly kind: string;
  /** In-process tiers answer synchronously; undefined is a miss here (a slower tier may still have it). */
  getSync(key: string): StoredValue | undefined;
  get(key: string): Promise<StoredValue | undefined>;
  /** ttlSeconds 0 means no expiry (as memcached); false when not written (fault, oversize). */
  set(key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean>;
  /**
   * Writes only when the key is absent: true if this call wrote it (used as a short lock), false if the
   * key exists, undefined when the store could not be asked (a fault: the lock state is unknown).
   */
  add(key: string, value: Buffer, flags: number, ttlSeconds: number): Promise<boolean | undefined>;
  /** Appends bytes to an existing value (flags and expiry unchanged); false when the key is absent. */
  append(key: string, value: Buffer): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  /**
   * Whether the key's node failed its last call and has not answered since (a timeout or an open breaker):
   * a caller skips optional calls to it (the fill lock), so one request pays at most one store timeout.
   * Absent: never suspect (in-process stores).
   */
  suspect?(key: string): boolean;
  /** Drops a key from in-process tiers and reads in flight only (to apply a purge heard from elsewhere). */
  evictLocal(key: string): void;
  health(): readonly NodeHealth[];
  close(): Promise<void>;
}
