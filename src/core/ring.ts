// The consistent-hash ring for several memcached nodes, point for point the one nginx builds for
// `upstream { hash $memcached_key consistent; server host:port; ... }` (ngx_http_upstream_hash_module.c,
// ngx_http_upstream_init_chash): 160 points per server of weight 1, each point crc32(host "\0" port, prev
// point as 4 little-endian bytes); a key goes to the first point >= crc32(key), wrapping around.
import { crc32 } from 'node:zlib';
import { ConfigError } from './errors';

export interface ServerAddress {
  /** As written in the server list, e.g. '127.0.0.1:11211'; nginx hashes this text, so keep both lists alike. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

const POINTS_PER_WEIGHT = 160;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/**
 * Parses 'host:port[,host:port...]' (IPv6 as '[::1]:11211'). An optional ' weight=N' after a server is
 * accepted as in nginx. Throws ConfigError naming `path` and the bad item.
 */
export function parseServerList(path: string, value: unknown): ServerAddress[] {
  const items: string[] = [];
  if (typeof value === 'string') items.push(...value.split(','));
  else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    for (const v of value as string[]) items.push(...v.split(','));
  } else {
    throw new ConfigError(`${path} must be a list of host:port, got ${JSON.stringify(value)}`);
  }
  const out: ServerAddress[] = [];
  for (const rawItem of items) {
    const item = rawItem.trim();
    if (item === '') continue;
    const [addr = '', ...opts] = item.split(/\s+/);
    const m = HOST_PORT.exec(addr);
    if (!m) throw new ConfigError(`${path}: '${item}' is not host:port (e.g. 127.0.0.1:11211 or [::1]:11211)`);
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new ConfigError(`${path}: port ${m[2]} in '${item}' is out of range (1-65535)`);
    let weight = 1;
    for (const opt of opts) {
      const w = /^weight=(\d+)$/.exec(opt);
      if (!w || Number(w[1]) < 1 || Number(w[1]) > 1000) {
        throw new ConfigError(`${path}: '${opt}' in '${item}' is not weight=N (1-1000)`);
      }
      weight = Number(w[1]);
    }
    const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
    if (out.some((s) => s.name === addr)) throw new ConfigError(`${path}: '${addr}' is listed twice`);
    out.push({ name: addr, host, port, weight });
  }
  if (out.length === 0) throw new ConfigError(`${path} must name at least one host:port, got ${JSON.stringify(value)}`);
  return out;
}

/** nginx splits the server text at the last ':' followed only by digits: host before, port after. */
function splitForHash(name: string): { host: string; port: string } {
  for (let j = 0; j < name.length; j++) {
    const c = name.charCodeAt(name.length - j - 1);
    if (c === 0x3a) return { host: name.slice(0, name.length - j - 1), port: name.slice(name.length - j) };
    if (c < 0x30 || c > 0x39) break;
  }
  return { host: name, port: '' };
}

export interface HashRing {
  /** Index into the server list for a key. */
  nodeFor(key: string): number;
  /** Points in ring order, each ~the next node index to try when the first is down (nginx walks points). */
  nodeAfter(key: string, attempt: number): number;
  readonly size: number;
}

const ZERO = Buffer.from([0]);

export function createHashRing(servers: readonly Pick<ServerAddress, 'name' | 'weight'>[]): HashRing {
  const points: { hash: number; server: number }[] = [];
  const prev = Buffer.alloc(4);
  servers.forEach((server, index) => {
    const { host, port } = splitForHash(server.name);
    const base = crc32(port, crc32(ZERO, crc32(host)));
    let prevHash = 0;
    const n = POINTS_PER_WEIGHT * server.weight;
    for (let j = 0; j < n; j++) {
      prev.writeUInt32LE(prevHash, 0);
      const h = crc32(prev, base);
      points.push({ hash: h, server: index });
      prevHash = h;
    }
  });
  // nginx sorts by hash (ngx_qsort, not stable), then drops later points with an equal hash.
  points.sort((a, b) => a.hash - b.hash);
  const hashes: number[] = [];
  const owners: number[] = [];
  for (const p of points) {
    if (hashes.length > 0 && hashes[hashes.length - 1] === p.hash) continue;
    hashes.push(p.hash);
    owners.push(p.server);
  }
  const hashArr = Uint32Array.from(hashes);
  const ownerArr = Uint16Array.from(owners);
  const count = hashArr.length;

  function firstPoint(key: string): number {
    const h = crc32(key);
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashArr[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  return {
    size: servers.length,
    nodeFor(key: string): number {
      if (servers.length === 1) return 0;
      return ownerArr[firstPoint(key) % count]!;
    },
    nodeAfter(key: string, attempt: number): number {
      if (servers.length === 1) return 0;
      return ownerArr[(firstPoint(key) + attempt) % count]!;
    },
  };
}
