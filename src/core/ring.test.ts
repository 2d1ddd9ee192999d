import { ConfigError } from './errors';
import { createHashRing, parseServerList } from './ring';
import type { ServerAddress } from './ring';

function servers(n: number, base = 11211): ServerAddress[] {
  return Array.from({ length: n }, (_, i) => ({ name: `10.0.0.${i + 1}:${base}`, host: `10.0.0.${i + 1}`, port: base, weight: 1 }));
}

const keys = Array.from({ length: 10000 }, (_, i) => `key-${i}-${(i * 2654435761) >>> 0}`);

describe('hash ring', () => {
  it('is deterministic and spreads keys over every node', () => {
    const a = createHashRing(servers(4));
    const b = createHashRing(servers(4));
    const counts = [0, 0, 0, 0];
    for (const k of keys) {
      expect(a.nodeFor(k)).toBe(b.nodeFor(k));
      counts[a.nodeFor(k)]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(10000 / 4 / 2);
  });

  it('moves only about 1/N of the keys when a node is added', () => {
    const before = createHashRing(servers(4));
    const after = createHashRing(servers(5));
    let moved = 0;
    for (const k of keys) {
      const from = before.nodeFor(k);
      const to = after.nodeFor(k);
      if (from !== to) {
        moved++;
        expect(to).toBe(4); // a key only ever moves to the new node
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.1);
    expect(moved / keys.length).toBeLessThan(0.3);
  });

  it('moves only the removed node’s keys when a node is removed', () => {
    const all = servers(4);
    const before = createHashRing(all);
    const after = createHashRing([all[0]!, all[1]!, all[3]!]);
    const idx = [0, 1, 3];
    for (const k of keys) {
      const from = before.nodeFor(k);
      if (from !== 2) expect(idx[after.nodeFor(k)]).toBe(from);
    }
  });

  it('weights a server by its points', () => {
    const s = servers(2);
    const ring = createHashRing([s[0]!, { ...s[1]!, weight: 3 }]);
    let heavy = 0;
    for (const k of keys) if (ring.nodeFor(k) === 1) heavy++;
    expect(heavy / keys.length).toBeGreaterThan(0.6);
  });

  it('sends everything to a single server', () => {
    const ring = createHashRing(servers(1));
    expect(keys.slice(0, 100).every((k) => ring.nodeFor(k) === 0)).toBe(true);
  });
});

describe('parseServerList', () => {
  it('parses host:port lists, IPv6 and weights', () => {
    expect(parseServerList('memcached', '127.0.0.1:11211, cache-2:11212,[::1]:11213 weight=2')).toEqual([
      { name: '127.0.0.1:11211', host: '127.0.0.1', port: 11211, weight: 1 },
      { name: 'cache-2:11212', host: 'cache-2', port: 11212, weight: 1 },
      { name: '[::1]:11213', host: '::1', port: 11213, weight: 2 },
    ]);
  });

  it.each([
    ['', /at least one host:port/],
    ['127.0.0.1', /'127.0.0.1' is not host:port/],
    ['127.0.0.1:99999', /port 99999 .* out of range/],
    ['127.0.0.1:0', /port 0 .* out of range/],
    ['127.0.0.1:11211,127.0.0.1:11211', /listed twice/],
    ['host name:11211', /not weight=N|not host:port/],
    ['a:1 weight=x', /'weight=x' .* is not weight=N/],
  ])('rejects %j naming the flag', (value, message) => {
    expect(() => parseServerList('--memcached', value)).toThrow(ConfigError);
    expect(() => parseServerList('--memcached', value)).toThrow(message);
    expect(() => parseServerList('--memcached', value)).toThrow(/--memcached/);
  });
});
