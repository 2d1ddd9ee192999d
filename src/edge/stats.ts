// The live stats behind the admin page (GET /stats.json): 15 minutes of per-second samples read from the
// metrics the edge already keeps (a 1 s timer; nothing added to the hit path), the URLs that go to the
// origin and those not stored (bounded space-saving top-k, fed on those paths only), and the merge of
// several workers' stats by the cluster primary. memcached's own `stats` are memcached-stats.ts's.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { OriginHealth, OriginRequest, Origins } from './origins';

/** Seconds of history kept (15 minutes at one sample a second). */
export const HISTORY_SECONDS = 900;
const TOP_CAPACITY = 64;
const TOP_SHOWN = 15;
/** edge_cache_origin_seconds buckets, in ms (+Inf last), as metrics.ts declares them. */
export const ORIGIN_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, Infinity];

export interface TopItem {
  readonly url: string;
  readonly count: number;
  /** Space-saving's overestimate bound: the true count is between count - error and count. */
  readonly error: number;
  /** For not-stored URLs: the reason seen last. */
  readonly reason?: string;
}

/**
 * Space-saving top-k (Metwally et al.): at most `capacity` URLs are counted; a new URL replaces the least
 * counted one and inherits its count as its error bound. Memory is bounded whatever URLs come.
 */
export class SpaceSaving {
  private readonly items = new Map<string, { count: number; error: number; reason: string | undefined }>();
  constructor(private readonly capacity = TOP_CAPACITY) {}
  record(url: string, reason?: string): void {
    const it = this.items.get(url);
    if (it !== undefined) {
      it.count++;
      it.reason = reason;
      return;
    }
    if (this.items.size < this.capacity) {
      this.items.set(url, { count: 1, error: 0, reason });
      return;
    }
    let minUrl = '';
    let min = Infinity;
    for (const [u, v] of this.items) {
      if (v.count < min) {
        min = v.count;
        minUrl = u;
      }
    }
    this.items.delete(minUrl);
    this.items.set(url, { count: min + 1, error: min, reason });
  }
  top(n = TOP_SHOWN): TopItem[] {
    return [...this.items.entries()]
      .map(([url, v]) => ({ url, count: v.count, error: v.error, ...(v.reason === undefined ? {} : { reason: v.reason }) }))
      .sort((a, b) => b.count - a.count)
      .slice(0, n);
  }
}

/** One second of traffic (differences of the counters between two readings). */
export interface StatsSample {
  /** Seconds since the epoch at the end of the second. */
  readonly t: number;
  readonly requests: Readonly<Record<string, number>>;
  readonly bytesOut: number;
  /** Origin responses by latency bucket (ORIGIN_BUCKETS_MS, not cumulative). */
  readonly originBuckets: readonly number[];
  /** Per origin URL: requests and errors. */
  readonly origins: Readonly<Record<string, { readonly requests: number; readonly errors: number }>>;
}

/** What one process (or the merge of all workers) reports. */
export interface StatsSnapshot {
  readonly samples: readonly StatsSample[];
  readonly requests: Readonly<Record<string, number>>;
  readonly notStored: Readonly<Record<string, number>>;
  readonly topOrigin: readonly TopItem[];
  readonly topNotStored: readonly TopItem[];
  readonly l1Bytes: number;
  readonly l1Evictions: number | null;
}

export interface StatsSources {
  readonly registry: Registry;
  /** Bytes written to clients so far (every connection, open and closed). */
  bytesOut(): number;
  origins(): readonly OriginHealth[];
}

async function counterValues(registry: Registry, name: string, label: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name);
  const out: Record<string, number> = {};
  if (metric === undefined) return out;
  for (const v of (await metric.get()).values) {
    const k = String(v.labels[label] ?? '');
    out[k] = (out[k] ?? 0) + v.value;
  }
  return out;
}

async function histogramBuckets(registry: Registry, name: string): Promise<number[]> {
  const metric = registry.getSingleMetric(name);
  const cumulative = ORIGIN_BUCKETS_MS.map(() => 0);
  if (metric === undefined) return cumulative;
  for (const v of (await metric.get()).values) {
    if ((v as { metricName?: string }).metricName !== `${name}_bucket`) continue;
    const le = v.labels.le;
    const ms = le === '+Inf' ? Infinity : Number(le) * 1000;
    const i = ORIGIN_BUCKETS_MS.findIndex((b) => Math.abs(b - ms) < 1e-6 || b === ms);
    if (i >= 0) cumulative[i]! += v.value;
  }
  return cumulative;
}

function diff(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(now)) {
    const d = now[k]! - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

/** Samples the counters every intervalMs (unref'd timer) into a ring of HISTORY_SECONDS samples. */
export class StatsHistory {
  readonly topOrigin = new SpaceSaving();
  readonly topNotStored = new SpaceSaving();
  private readonly samples: StatsSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last: { requests: Record<string, number>; bytes: number; buckets: number[]; origins: Record<string, { requests: number; errors: number }> } | undefined;
  private reading = false;

  constructor(
    private readonly src: StatsSources,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One reading; the first only sets the baseline. */
  async sample(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const requests = await counterValues(this.src.registry, 'edge_cache_requests_total', 'status');
      const cumulative = await histogramBuckets(this.src.registry, 'edge_cache_origin_seconds');
      const bytes = this.src.bytesOut();
      const origins: Record<string, { requests: number; errors: number }> = {};
      for (const o of this.src.origins()) origins[o.url] = { requests: o.requests, errors: o.errors };
      const before = this.last;
      this.last = { requests, bytes, buckets: cumulative, origins };
      if (before === undefined) return;
      const perOrigin: Record<string, { requests: number; errors: number }> = {};
      for (const [url, o] of Object.entries(origins)) {
        const b = before.origins[url] ?? { requests: 0, errors: 0 };
        perOrigin[url] = { requests: Math.max(0, o.requests - b.requests), errors: Math.max(0, o.errors - b.errors) };
      }
      // Cumulative buckets (le) to counts per bucket, for this second only.
      const delta = cumulative.map((c, i) => Math.max(0, c - before.buckets[i]!));
      const perBucket = delta.map((c, i) => Math.max(0, c - (i === 0 ? 0 : delta[i - 1]!)));
      this.samples.push({ t: Math.round(Date.now() / 1000), requests: diff(requests, before.requests), bytesOut: Math.max(0, bytes - before.bytes), originBuckets: perBucket, origins: perOrigin });
      if (this.samples.length > HISTORY_SECONDS) this.samples.splice(0, this.samples.length - HISTORY_SECONDS);
    } finally {
      this.reading = false;
    }
  }

  async snapshot(): Promise<StatsSnapshot> {
    const registry = this.src.registry;
    const l1 = registry.getSingleMetric('edge_cache_l1_bytes');
    const l1Bytes = l1 === undefined ? 0 : ((await l1.get()).values[0]?.value ?? 0);
    const ev = registry.getSingleMetric('edge_cache_l1_evictions_total');
    const l1Evictions = ev === undefined ? null : ((await ev.get()).values[0]?.value ?? 0);
    return {
      samples: this.samples.slice(),
      requests: await counterValues(registry, 'edge_cache_requests_total', 'status'),
      notStored: await counterValues(registry, 'edge_cache_not_stored_total', 'reason'),
      topOrigin: this.topOrigin.top(),
      topNotStored: this.topNotStored.top(),
      l1Bytes,
      l1Evictions,
    };
  }
}

function addInto(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function mergeTop(lists: readonly (readonly TopItem[])[]): TopItem[] {
  const by = new Map<string, { count: number; error: number; reason?: string }>();
  for (const list of lists) {
    for (const it of list) {
      const m = by.get(it.url) ?? { count: 0, error: 0 };
      m.count += it.count;
      m.error += it.error;
      if (it.reason !== undefined) m.reason = it.reason;
      by.set(it.url, m);
    }
  }
  return [...by.entries()].map(([url, v]) => ({ url, ...v })).sort((a, b) => b.count - a.count).slice(0, TOP_SHOWN);
}

/** Several workers' snapshots as one: samples summed second by second, top lists merged. */
export function mergeSnapshots(list: readonly StatsSnapshot[]): StatsSnapshot {
  if (list.length === 1) return list[0]!;
  const byT = new Map<number, { requests: Record<string, number>; bytesOut: number; originBuckets: number[]; origins: Record<string, { requests: number; errors: number }> }>();
  for (const snap of list) {
    for (const s of snap.samples) {
      let m = byT.get(s.t);
      if (m === undefined) byT.set(s.t, (m = { requests: {}, bytesOut: 0, originBuckets: ORIGIN_BUCKETS_MS.map(() => 0), origins: {} }));
      addInto(m.requests, s.requests);
      m.bytesOut += s.bytesOut;
      s.originBuckets.forEach((c, i) => (m!.originBuckets[i]! += c));
      for (const [url, o] of Object.entries(s.origins)) {
        const mo = (m.origins[url] ??= { requests: 0, errors: 0 });
        mo.requests += o.requests;
        mo.errors += o.errors;
      }
    }
  }
  const requests: Record<string, number> = {};
  const notStored: Record<string, number> = {};
  let l1Bytes = 0;
  let l1Evictions: number | null = null;
  for (const snap of list) {
    addInto(requests, snap.requests);
    addInto(notStored, snap.notStored);
    l1Bytes += snap.l1Bytes;
    if (snap.l1Evictions !== null) l1Evictions = (l1Evictions ?? 0) + snap.l1Evictions;
  }
  return {
    samples: [...byT.entries()].sort((a, b) => a[0] - b[0]).map(([t, m]) => ({ t, ...m })),
    requests,
    notStored,
    topOrigin: mergeTop(list.map((s) => s.topOrigin)),
    topNotStored: mergeTop(list.map((s) => s.topNotStored)),
    l1Bytes,
    l1Evictions,
  };
}

/** The p-quantile (0..1) of per-bucket counts, as the bucket's upper bound in ms; null without data. */
export function quantileMs(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= q * total) return Number.isFinite(ORIGIN_BUCKETS_MS[i]!) ? ORIGIN_BUCKETS_MS[i]! : ORIGIN_BUCKETS_MS[i - 1]!;
  }
  return null;
}

/**
 * Bytes written to clients, open and closed connections alike: one listener per connection (never per
 * request), read by the sampler. The count includes heads.
 */
export function trackBytesOut(server: Server): () => number {
  let closed = 0;
  const open = new Set<Socket>();
  function onClose(this: Socket): void {
    open.delete(this);
    closed += this.bytesWritten ?? 0;
  }
  server.on('connection', function countBytes(socket: Socket) {
    open.add(socket);
    socket.once('close', onClose);
  });
  return function bytesOut(): number {
    let n = closed;
    for (const s of open) n += s.bytesWritten ?? 0;
    return n;
  };
}

/**
 * Origins that record, per request sent, its host + path in the top-k of URLs going to the origin (misses,
 * passes, refreshes). Only those paths reach the origin; a hit never does. (Fills not stored are recorded
 * where they are decided, in src/edge/fill.ts.)
 */
export function recordingOrigins(origins: Origins, stats: StatsHistory): Origins {
  return {
    health: () => origins.health(),
    close: () => origins.close(),
    request(req: OriginRequest): Promise<Dispatcher.ResponseData> {
      // originRequestHeaders puts Host first.
      stats.topOrigin.record((req.headers[0] === 'host' ? req.headers[1] ?? '' : '') + req.path);
      return origins.request(req);
    },
  };
}
