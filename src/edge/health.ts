// What /healthz says: ok, degraded (a memcached node or an origin is down: still 200, for load balancers),
// draining or down (503); and the memcached probe that finds a dead node without waiting for traffic.
import { createHashRing } from '../core/ring';
import type { ServerAddress } from '../core/ring';
import type { CacheStore, NodeHealth } from '../core/store';
import type { OriginHealth } from './origins';

export type HealthStatus = 'ok' | 'degraded' | 'draining' | 'down';

export function healthStatus(h: { readonly draining: boolean; readonly origins: readonly OriginHealth[]; readonly memcached: readonly NodeHealth[] }): HealthStatus {
  if (h.draining) return 'draining';
  if (h.origins.length > 0 && !h.origins.some((o) => o.up)) return 'down';
  if (h.origins.some((o) => !o.up) || h.memcached.some((n) => !n.up)) return 'degraded';
  return 'ok';
}

/** 503 for the states a load balancer must take this edge out for. */
export function healthCode(status: HealthStatus): number {
  return status === 'draining' || status === 'down' ? 503 : 200;
}

/** Prefix of the keys the probe reads (never written, so always a miss where the node answers). */
const PROBE_KEY = 'edge-page-cache:health-probe:';

/**
 * One key per node, found through the same ring the store places keys with, so a get of it asks that node.
 * Keys are not contract keys (those are md5 hex): they can never name a page.
 */
export function probeKeys(nodes: readonly Pick<ServerAddress, 'name' | 'weight'>[]): string[] {
  const ring = createHashRing(nodes);
  const keys: (string | undefined)[] = nodes.map(() => undefined);
  let left = nodes.length;
  for (let i = 0; left > 0 && i < 100_000; i++) {
    const key = `${PROBE_KEY}${i}`;
    const n = ring.nodeFor(key);
    if (keys[n] === undefined) {
      keys[n] = key;
      left--;
    }
  }
  return keys.filter((k): k is string => k !== undefined);
}

/**
 * Reads one probe key per memcached node every intervalMs (the store's retry interval), through the store
 * itself: a node that went down opens its breaker within one interval even when no request asks it, and
 * one that came back closes it. Each probe is one get (counted as a miss in edge_cache_store_ops_total).
 * Returns the stop function.
 */
export function probeMemcachedNodes(store: CacheStore, nodes: readonly ServerAddress[], intervalMs: number): () => void {
  if (nodes.length === 0) return noop;
  const keys = probeKeys(nodes);
  const timer = setInterval(function probe() {
    for (const key of keys) store.get(key).then(noop, noop);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function noop(): void {}
