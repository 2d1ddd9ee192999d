// Single-flight: while a fetch for a key is in flight, later callers wait for it instead of starting
// another. The entry is deleted when the fetch settles, success or failure, so the map stays bounded.

export interface SingleFlight<T> {
  /** Runs `fn` unless a run for `key` is in flight; then returns that run's promise. */
  run(key: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Marks `key` in flight until the returned function is called with the result: for a fill that is not
   * one promise (the middleware's render ends in response events). Call it exactly once.
   */
  hold(key: string): (value: T) => void;
  /** The in-flight promise for a key, if any. */
  pending(key: string): Promise<T> | undefined;
  readonly size: number;
}

function noop(): void {}

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
    hold(key: string): (value: T) => void {
      let settle: (value: T) => void = noop;
      const p = new Promise<T>(function held(resolve) {
        settle = resolve;
      });
      inFlight.set(key, p);
      return function release(value: T): void {
        if (inFlight.get(key) === p) inFlight.delete(key);
        settle(value);
      };
    },
    pending(key: string): Promise<T> | undefined {
      return inFlight.get(key);
    },
    get size(): number {
      return inFlight.size;
    },
  };
}
