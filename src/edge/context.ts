// Everything the pipeline steps share for the life of a server: resolved options, the page cache,
// origins, single-flight map, metrics children resolved once, loggers. Built once in createEdgeServer.
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { PageCache } from '../core/cache';
import type { SingleFlight } from '../core/coalesce';
import type { DecodedCopies } from '../core/decoded';
import type { HitForMiss } from '../core/hit-for-miss';
import type { CacheEntry } from '../core/entry';
import type { Logger } from '../core/logger';
import type { CacheMetrics } from '../core/metrics';
import type { CacheStatus } from '../core/status';
import type { ResolvedEdgeOptions } from './options';
import type { Origins } from './origins';
import type { StatsHistory } from './stats';

/**
 * What a cacheable origin fetch yields to everyone waiting on it. Only a `page` is shared: anything
 * else (private, not storable, too large) belongs to the request that fetched it, and the others go to
 * the origin themselves, so a private response can never reach another client through coalescing.
 */
export type FetchOutcome =
  | {
      readonly kind: 'page';
      readonly entry: CacheEntry;
      /** Whether this fill started a write (false: found already stored, or the origin's middleware stored it). */
      readonly stored: boolean;
      /** Settles when the write is done (true if written); never rejects. */
      readonly written?: Promise<boolean>;
      /** The stored stale page, refreshed by a 304 (RFC 9111 §4.3.4): delivered as REVALIDATED. */
      readonly revalidated?: boolean;
      /** The fetching request's headers: a waiter whose own select another Vary variant fetches its own. */
      readonly requestHeaders?: IncomingHttpHeaders;
      /** The fetching request's client already has the page (streamed while it was stored). */
      readonly delivered?: boolean;
    }
  | {
      readonly kind: 'own';
      readonly response: Dispatcher.ResponseData;
      readonly prefix: readonly Buffer[];
      /** Whether the response itself made it unstorable (then the page gets a hit-for-miss mark). */
      readonly uncacheable: boolean;
      /** The fetching request's client already has the head and is being sent the rest. */
      readonly delivered?: boolean;
    };

export interface EdgeContext {
  readonly opts: ResolvedEdgeOptions;
  readonly cache: PageCache;
  readonly origins: Origins;
  readonly inflight: SingleFlight<FetchOutcome>;
  readonly metrics: CacheMetrics;
  readonly log: Logger;
  readonly accessLog: Logger | undefined;
  /** Per-status request counters, resolved once. */
  readonly served: Readonly<Record<CacheStatus, { inc(): void }>>;
  /** True when the cache is shared with other processes (memcached), so an origin-stored page is not rewritten. */
  readonly sharedStore: boolean;
  /**
   * Keys whose last fill answered with a page that may not be stored, until when (ms): for those, misses
   * go straight to the origin instead of waiting on a coalesced fill (Varnish's hit-for-miss). Bounded.
   */
  readonly uncacheable: HitForMiss;
  /** Inflated copies of small compressed pages for clients that take only identity (bounded in bytes). */
  readonly decoded: DecodedCopies;
  /** Told the keys an unsafe request invalidated here, so other workers can drop their copies. */
  readonly onInvalidate: ((keys: readonly string[]) => void) | undefined;
  /** The stats page's top-k lists: fills not stored record their URL and reason (that path only). */
  readonly stats: StatsHistory;
  /** Set when SIGTERM starts a drain: /healthz answers 503. */
  draining: boolean;
}
