// Single-flight: while a fetch for a key is in flight, later callers wait for it instead of starting
// another. The entry is deleted when the fetch settles, success or failure, so the map stays bounded.

export interface SingleFlight<T> {
  /** Runs `fn` unless a run for `key` is in flight; then returns that run's promise. */
  run(key: string, fn: () => Promise<T>): Promise<T>;
  /** The in-flight promise for a key, if any. */
  pending(key: string): Promise<T> | undefined;
  readonly size: number;
}

export function createSingleFlight<T>(onJoin?: () => void): SingleFlight<T> {
  const inFlight = new Map<string, Promise<T>>();
  return {
    run(key: string, fn: () => Promise<T>): Promise<T> {
      const existing = inFlight.get(key);
      if (existing !== undefined) {
        onJoin?.();
        return existing;
      }
      const p = fn().finally(function settle() {
        inFlight.delete(key);
      });
      inFlight.set(key, p);
      return p;
    },
    pending(key: string): Promise<T> | undefined {
      return inFlight.get(key);
    },
    get size(): number {
      return inFlight.size;
    },
  };
}
