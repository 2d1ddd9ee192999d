// Each memcached node's own view of itself for the stats page: the text protocol's `stats` command on a
// short-lived connection (memjs has no stats call that returns them per node), with a deadline, so a node
// that is down or hangs shows as such instead of holding the page.
import net from 'node:net';
import type { ServerAddress } from '../core/ring';

export interface MemcachedNodeStats {
  readonly node: string;
  readonly up: boolean;
  readonly error?: string;
  readonly items?: number;
  readonly bytes?: number;
  readonly limitBytes?: number;
  readonly evictions?: number;
  readonly getHits?: number;
  readonly getMisses?: number;
  /** get_hits / (get_hits + get_misses), null before any get. */
  readonly getHitRatio?: number | null;
  readonly itemSizeMax?: number;
  readonly uptimeSeconds?: number;
}

const MAX_REPLY = 64 * 1024;

/** `stats` of one node: resolves with its numbers, or up: false and why. Never rejects. */
export function memcachedStats(server: ServerAddress, timeoutMs = 1000): Promise<MemcachedNodeStats> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: server.host.replace(/^\[|\]$/g, ''), port: server.port });
    let reply = '';
    const timer = setTimeout(() => finish({ node: server.name, up: false, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    function finish(r: MemcachedNodeStats): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    }
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.write('stats\r\n'));
    socket.on('error', (err) => finish({ node: server.name, up: false, error: err.message }));
    socket.on('data', (d: string) => {
      reply += d;
      if (reply.length > MAX_REPLY) return finish({ node: server.name, up: false, error: 'stats reply too long' });
      if (!reply.endsWith('END\r\n')) return;
      const s = new Map<string, number>();
      for (const line of reply.split('\r\n')) {
        const [word, name, value] = line.split(' ');
        if (word === 'STAT' && name !== undefined && value !== undefined) s.set(name, Number(value));
      }
      const hits = s.get('get_hits') ?? 0;
      const misses = s.get('get_misses') ?? 0;
      finish({
        node: server.name,
        up: true,
        items: s.get('curr_items') ?? 0,
        bytes: s.get('bytes') ?? 0,
        limitBytes: s.get('limit_maxbytes') ?? 0,
        evictions: s.get('evictions') ?? 0,
        getHits: hits,
        getMisses: misses,
        getHitRatio: hits + misses === 0 ? null : hits / (hits + misses),
        itemSizeMax: s.get('item_size_max') ?? 0,
        uptimeSeconds: s.get('uptime') ?? 0,
      });
    });
  });
}

export function memcachedStatsAll(servers: readonly ServerAddress[], timeoutMs = 1000): Promise<MemcachedNodeStats[]> {
  return Promise.all(servers.map((s) => memcachedStats(s, timeoutMs)));
}
