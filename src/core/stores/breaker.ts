// The circuit breaker of one memcached node: when to stop calling it (a connection error at once,
// timeoutsToOpen timeouts in a row), when one probe call may go, and what closes it again. State only:
// counting, logging and skipping the call are the store's (memcached.ts).

export interface BreakerOptions {
  /** The per-call deadline: timeouts less than half of it apart are one stall, counted once. */
  readonly timeoutMs: number;
  /** How long an open breaker skips the node before one probe call is let through, in ms. */
  readonly retryAfterMs: number;
  /** Timeouts in a row (no success between) that open the breaker. */
  readonly timeoutsToOpen: number;
  readonly now: () => number;
}

/** What a failure did to the breaker, so the caller can log it. */
export type BreakerVerdict =
  /** A timeout within timeoutMs / 2 of the last one counted: memjs fails every call in flight at once. */
  | 'same-stall'
  /** A timeout counted, but fewer than timeoutsToOpen in a row: the node is still called. */
  | 'counted'
  /** The node is skipped until retryAt. */
  | 'opened';

export class NodeBreaker {
  /** Failures since the last success. */
  failures = 0;
  /** ms (options.now) when the open breaker lets a probe through; 0 while closed. */
  retryAt = 0;
  /** A half-open probe is on the wire: every other call keeps skipping until it answers. */
  private probing = false;
  /** When the last timeout was counted (timeouts within timeoutMs / 2 of it are the same stall). */
  private lastTimeoutAt = 0;

  constructor(
    private readonly options: BreakerOptions,
    /** The node's edge_cache_memcached_up gauge, kept in step with the breaker (1 closed, 0 open). */
    private readonly up: { set(v: number): void },
  ) {
    up.set(1);
  }

  /** Whether a call may go now: the breaker is closed, or this call is the one half-open probe. */
  admit(): boolean {
    if (this.retryAt === 0) return true;
    if (this.options.now() >= this.retryAt && !this.probing) {
      this.probing = true; // half-open: this one call probes, the rest keep skipping
      return true;
    }
    return false;
  }

  /** The node answered: the breaker closes. */
  succeeded(): void {
    if (this.retryAt !== 0 || this.failures !== 0) {
      this.failures = 0;
      this.retryAt = 0;
      this.up.set(1);
    }
    this.probing = false;
  }

  /**
   * memcached answered with an error status (out of memory, value too large...): the node is alive, so
   * the breaker stays as it is; only that call is lost.
   */
  refused(): void {
    this.probing = false;
  }

  /** The call failed on the connection (refused, reset) or timed out. */
  failed(timeout: boolean): BreakerVerdict {
    const probe = this.probing || this.retryAt !== 0;
    this.probing = false;
    // A refused or reset connection opens the breaker at once. A timeout may be our own busy event loop
    // (a GC pause) rather than the node, so only timeoutsToOpen of them in a row (no success between) do;
    // memjs fails every call in flight at once on a timeout, and those count as one. A failed probe
    // reopens at once: the node was already found failing.
    if (timeout && !probe) {
      const t = this.options.now();
      if (t - this.lastTimeoutAt < this.options.timeoutMs / 2) return 'same-stall';
      this.lastTimeoutAt = t;
      this.failures++;
      if (this.failures < this.options.timeoutsToOpen) return 'counted';
    } else {
      this.failures++;
    }
    this.retryAt = this.options.now() + this.options.retryAfterMs;
    this.up.set(0);
    return 'opened';
  }
}
