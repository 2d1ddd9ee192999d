// Every Prometheus metric, created once per registry at startup; label values come from closed sets only.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type StoreTier = 'l1' | 'l2';
export type StoreOp = 'get' | 'set' | 'add' | 'delete';

/** One label combination of a HotCounter: a plain number, added to the Prometheus counter at scrape time. */
export class HotCell<L extends string> {
  n = 0;
  constructor(readonly labels: Readonly<Record<L, string>>) {}
  inc(by = 1): void {
    this.n += by;
  }
}

/**
 * A counter for the hit path: inc() is a number increment (prom-client's labelled inc hashes the label set
 * on every call, which showed up in the hit-path profile); the totals are moved into the real Counter
 * whenever it is collected.
 */
export class HotCounter<L extends string> {
  private readonly cells = new Map<string, HotCell<L>>();
  readonly counter: Counter<L>;
  private readonly names: readonly L[];

  constructor(config: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    const cells = this.cells;
    this.names = config.labelNames;
    this.counter = new Counter<L>({
      ...config,
      collect(this: Counter<L>) {
        for (const cell of cells.values()) {
          if (cell.n === 0) continue;
          this.inc(cell.labels as Partial<Record<L, string>>, cell.n);
          cell.n = 0;
        }
      },
    });
  }

  /** The cell for these label values (in labelNames order); resolve once, at startup. */
  labels(...values: string[]): HotCell<L> {
    const id = values.join('\0');
    let cell = this.cells.get(id);
    if (cell === undefined) {
      const labels = {} as Record<L, string>;
      this.names.forEach((n, i) => (labels[n] = values[i] ?? ''));
      cell = new HotCell<L>(labels);
      this.cells.set(id, cell);
    }
    return cell;
  }
}

export interface CacheMetrics {
  readonly registry: Registry;
  readonly storeErrors: Counter<'tier' | 'op' | 'code'>;
  readonly storeOps: HotCounter<'tier' | 'op' | 'result'>;
  readonly requests: HotCounter<'status'>;
  readonly notStored: Counter<'reason'>;
  readonly stored: Counter<'tier'>;
  readonly decodeErrors: Counter;
  readonly hitFailures: Counter<'stage'>;
  readonly originRequests: Counter<'result'>;
  readonly originSeconds: Histogram<'result'>;
  readonly coalesced: Counter;
  readonly l1Bytes: Gauge;
  /** Pages the L1 dropped to make room (lru-cache's 'evict'), not those expired or deleted. */
  readonly l1Evictions: Counter;
  readonly nodeUp: Gauge<'node'>;
  readonly purged: Counter<'by'>;
  /** RFC 9111 §4.3: conditional fills of a stored stale page, by result (not-modified: a 304 refreshed it). */
  readonly revalidations: Counter<'result'>;
}

const byRegistry = new WeakMap<Registry, CacheMetrics>();
let defaultRegistry: Registry | undefined;

/** Metrics on the given registry (created on first use, then shared), or on the package's default one. */
export function cacheMetrics(registry?: Registry): CacheMetrics {
  if (registry === undefined) {
    if (defaultRegistry === undefined) {
      defaultRegistry = new Registry();
      if (process.env.EPC_NO_DEFAULT_METRICS === undefined) collectDefaultMetrics({ register: defaultRegistry });
    }
    registry = defaultRegistry;
  }
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: CacheMetrics = {
    registry,
    storeErrors: new Counter({
      name: 'edge_cache_store_errors_total',
      help: 'Store operations that failed and were treated as a miss or not written',
      labelNames: ['tier', 'op', 'code'],
      registers,
    }),
    storeOps: new HotCounter({
      name: 'edge_cache_store_ops_total',
      help: 'Store operations by tier, operation and result (hit, miss, joined: a get that shared a read already on the wire, ok, fail, skipped)',
      labelNames: ['tier', 'op', 'result'],
      registers,
    }),
    requests: new HotCounter({
      name: 'edge_cache_requests_total',
      help: 'Requests by cache status (X-Cache)',
      labelNames: ['status'],
      registers,
    }),
    notStored: new Counter({
      name: 'edge_cache_not_stored_total',
      help: 'Responses not stored, by reason',
      labelNames: ['reason'],
      registers,
    }),
    stored: new Counter({
      name: 'edge_cache_stored_total',
      help: 'Responses written to the cache',
      labelNames: ['tier'],
      registers,
    }),
    decodeErrors: new Counter({
      name: 'edge_cache_entry_decode_errors_total',
      help: 'Entries that could not be decoded and were deleted (treated as a miss)',
      registers,
    }),
    hitFailures: new Counter({
      name: 'edge_cache_hit_failures_total',
      help: 'Hits whose delivery failed through no fault of the entry (a wrapped res.writeHead/end that threw): before-head fell through to the app, after-head ended the response',
      labelNames: ['stage'],
      registers,
    }),
    originRequests: new Counter({
      name: 'edge_cache_origin_requests_total',
      help: 'Requests sent to the origin, by result',
      labelNames: ['result'],
      registers,
    }),
    originSeconds: new Histogram({
      name: 'edge_cache_origin_seconds',
      help: 'Time to the origin response headers',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    coalesced: new Counter({
      name: 'edge_cache_coalesced_total',
      help: 'Requests that waited for a fetch already in flight instead of starting one',
      registers,
    }),
    l1Bytes: new Gauge({
      name: 'edge_cache_l1_bytes',
      help: 'Bytes held by the in-process cache',
      registers,
    }),
    l1Evictions: new Counter({
      name: 'edge_cache_l1_evictions_total',
      help: 'Pages the in-process cache dropped to make room for others',
      registers,
    }),
    nodeUp: new Gauge({
      name: 'edge_cache_memcached_node_up',
      help: '1 while a memcached node answers, 0 while its circuit breaker is open (node = index in the server list)',
      labelNames: ['node'],
      registers,
    }),
    purged: new Counter({
      name: 'edge_cache_purged_total',
      help: 'Keys purged, by url or tag',
      labelNames: ['by'],
      registers,
    }),
    revalidations: new Counter({
      name: 'edge_cache_revalidations_total',
      help: 'Conditional requests revalidating a stored stale page, by result: not-modified (304, entry refreshed), modified (a new page replaced it), failed (error or a 304 that did not match)',
      labelNames: ['result'],
      registers,
    }),
  };
  byRegistry.set(registry, m);
  return m;
}

/** The admin port's own metrics, in the registry of the process that runs it (the cluster primary). */
export interface AdminMetrics {
  readonly authFailures: Counter<'result'>;
}

export function adminMetrics(registry: Registry): AdminMetrics {
  return {
    authFailures: new Counter({
      name: 'edge_cache_admin_auth_failures_total',
      help: 'Admin requests with a wrong bearer token, by result: wrong (401) or limited (429: too many from that address)',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
