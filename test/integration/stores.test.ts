// The three stores against the contract, on real memcached; then memcached failure behaviour.
import { createMemcachedStore } from '../../src/core/stores/memcached';
import { createMemoryStore } from '../../src/core/stores/memory';
import { createTieredStore } from '../../src/core/stores/tiered';
import { parseServerList } from '../../src/core/ring';
import { cacheMetrics } from '../../src/core/metrics';
import { Registry } from 'prom-client';
import { storeContract } from '../contract/store';
import type { CacheStore } from '../../src/core/store';
import { memcachedStat, startHangingServer, startMemcacheds } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { createHashRing } from '../../src/core/ring';
import { sleep } from '../helpers/ports';

const MiB = 1024 * 1024;
let nodes: MemcachedProcess[] = [];

beforeAll(async () => {
  nodes = await startMemcacheds(3);
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

const list = (): string => nodes.map((n) => n.address).join(',');

/**
 * A memcached of its own with a store on it (metrics into `registry`), and a tiered store in front when
 * `l1MaxEntryBytes` is given; everything is closed and stopped after `run`.
 */
async function onOwnNode(
  run: (t: { address: string; l2: CacheStore; tiered: CacheStore; registry: Registry }) => Promise<void>,
  l1MaxEntryBytes = MiB,
): Promise<void> {
  const [node] = await startMemcacheds(1);
  const registry = new Registry();
  const l2 = createMemcachedStore({ servers: parseServerList('memcached', node!.address), timeoutMs: 500, metrics: cacheMetrics(registry) });
  const tiered = createTieredStore({ l1: createMemoryStore({ maxBytes: MiB * 8, maxEntryBytes: l1MaxEntryBytes, maxTtlSeconds: 30 }), l2, l1TtlSeconds: 30 });
  try {
    await run({ address: node!.address, l2, tiered, registry });
  } finally {
    await tiered.close();
    await node!.stop();
  }
}

storeContract('memory', () => createMemoryStore({ maxBytes: 64 * MiB, maxEntryBytes: MiB, tier: 'l2' }), MiB);
storeContract('memcached (3 nodes)', () => createMemcachedStore({ servers: parseServerList('memcached', list()), timeoutMs: 500 }), MiB);
storeContract(
  'tiered (memory L1 + 3 memcached)',
  () =>
    createTieredStore({
      l1: createMemoryStore({ maxBytes: 64 * MiB, maxEntryBytes: MiB, maxTtlSeconds: 5 }),
      l2: createMemcachedStore({ servers: parseServerList('memcached', list()), timeoutMs: 500 }),
      l1TtlSeconds: 5,
    }),
  MiB,
);

describe('memcached store on several nodes', () => {
  it('writes each key to the node the ring picks (and only there)', async () => {
    const servers = parseServerList('memcached', list());
    const store = createMemcachedStore({ servers, timeoutMs: 500 });
    const ring = createHashRing(servers);
    const singles = servers.map((s) => createMemcachedStore({ servers: [s], timeoutMs: 500 }));
    try {
      for (let i = 0; i < 60; i++) {
        const key = `placement-${i}-${Date.now()}`;
        await store.set(key, Buffer.from(String(i)), 0, 60);
        const owner = ring.nodeFor(key);
        for (let n = 0; n < singles.length; n++) {
          const got = await singles[n]!.get(key);
          if (n === owner) expect(got?.value.toString()).toBe(String(i));
          else expect(got).toBeUndefined();
        }
      }
    } finally {
      await store.close();
      await Promise.all(singles.map((s) => s.close()));
    }
  });

  it('keeps serving the other nodes when one is killed, and fails fast on the dead one', async () => {
    const extra = await startMemcacheds(3);
    const servers = parseServerList('memcached', extra.map((n) => n.address).join(','));
    const registry = new Registry();
    const metrics = cacheMetrics(registry);
    const store = createMemcachedStore({ servers, timeoutMs: 200, retryAfterMs: 60000, metrics });
    const ring = createHashRing(servers);
    try {
      const keys = Array.from({ length: 90 }, (_, i) => `kill-${i}-${Date.now()}`);
      for (const key of keys) expect(await store.set(key, Buffer.from(key), 0, 60)).toBe(true);
      await extra[1]!.stop();
      // The first calls to the dead node find out (connection refused or timeout)...
      const onDead = keys.filter((key) => ring.nodeFor(key) === 1);
      const onLive = keys.filter((key) => ring.nodeFor(key) !== 1);
      expect(onDead.length).toBeGreaterThan(5);
      await store.get(onDead[0]!);
      // ...then every call to it returns at once, as a miss.
      for (const key of onDead.slice(1)) {
        const t0 = process.hrtime.bigint();
        expect(await store.get(key)).toBeUndefined();
        expect(await store.set(key, Buffer.from('x'), 0, 60)).toBe(false);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        expect(ms).toBeLessThan(20);
      }
      for (const key of onLive) expect((await store.get(key))?.value.toString()).toBe(key);
      expect(store.health()[1]!.up).toBe(false);
      expect(store.health()[0]!.up).toBe(true);
      const errors = await registry.getSingleMetric('edge_cache_store_errors_total')!.get();
      expect(errors.values.reduce((a, v) => a + v.value, 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await store.close();
      await Promise.all(extra.map((n) => n.stop()));
    }
  });

  it('probes a down node after retryAfterMs and uses it again once it answers', async () => {
    const [node] = await startMemcacheds(1);
    const store = createMemcachedStore({ servers: parseServerList('memcached', node!.address), timeoutMs: 200, retryAfterMs: 300 });
    try {
      await node!.stop();
      expect(await store.set('probe-a', Buffer.from('1'), 0, 60)).toBe(false);
      expect(store.health()[0]!.up).toBe(false);
      await node!.start();
      await new Promise((r) => setTimeout(r, 350));
      expect(await store.set('probe-a', Buffer.from('1'), 0, 60)).toBe(true);
      expect(store.health()[0]!.up).toBe(true);
      expect((await store.get('probe-a'))?.value.toString()).toBe('1');
    } finally {
      await store.close();
      await node!.stop();
    }
  });

  it('a hanging node costs a few timeouts (timeoutsToOpen), then calls skip it at once', async () => {
    const hang = await startHangingServer();
    const store = createMemcachedStore({ servers: parseServerList('memcached', hang.address), timeoutMs: 150, retryAfterMs: 60000, timeoutsToOpen: 3 });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 3; i++) expect(await store.get(`hang-first-${i}`)).toBeUndefined();
      const first = Date.now() - t0;
      expect(first).toBeGreaterThanOrEqual(3 * 100);
      expect(first).toBeLessThan(3000);
      expect(store.health()[0]!.up).toBe(false);
      const t1 = Date.now();
      for (let i = 0; i < 50; i++) expect(await store.get(`hang-${i}`)).toBeUndefined();
      expect(Date.now() - t1).toBeLessThan(50);
    } finally {
      await store.close();
      await hang.close();
    }
  });

  it('calls that time out together (one stall) count as one timeout', async () => {
    const hang = await startHangingServer();
    const store = createMemcachedStore({ servers: parseServerList('memcached', hang.address), timeoutMs: 100, retryAfterMs: 60000, timeoutsToOpen: 3 });
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.get(`together-${i}`)));
      expect(store.health()[0]!.up).toBe(true);
    } finally {
      await store.close();
      await hang.close();
    }
  });

  it('one timeout does not open the breaker: a busy event loop is not a dead node', async () => {
    const hang = await startHangingServer();
    const store = createMemcachedStore({ servers: parseServerList('memcached', hang.address), timeoutMs: 100, retryAfterMs: 60000, timeoutsToOpen: 3 });
    try {
      expect(await store.get('one')).toBeUndefined();
      expect(store.health()[0]!.up).toBe(true);
    } finally {
      await store.close();
      await hang.close();
    }
  });

  it('tiered store keeps serving from L1 and shielding with L1 writes while memcached is down', async () => {
    const [node] = await startMemcacheds(1);
    const store = createTieredStore({
      l1: createMemoryStore({ maxBytes: MiB * 8, maxTtlSeconds: 30 }),
      l2: createMemcachedStore({ servers: parseServerList('memcached', node!.address), timeoutMs: 200 }),
      l1TtlSeconds: 30,
    });
    try {
      await store.set('t-1', Buffer.from('one'), 0, 60);
      await node!.stop();
      expect(store.getSync('t-1')?.value.toString()).toBe('one');
      expect(await store.set('t-2', Buffer.from('two'), 0, 60)).toBe(false);
      expect((await store.get('t-2'))?.value.toString()).toBe('two');
    } finally {
      await store.close();
      await node!.stop();
    }
  });

  it('concurrent gets of one key share one memcached read, and each caller gets the value', () =>
    onOwnNode(async ({ address, l2: store, registry }) => {
      await store.set('hot', Buffer.from('page'), 0, 60);
      const before = await memcachedStat(address, 'cmd_get');
      const got = await Promise.all(Array.from({ length: 50 }, () => store.get('hot')));
      expect(got.map((v) => v?.value.toString())).toEqual(Array(50).fill('page'));
      expect((await memcachedStat(address, 'cmd_get')) - before).toBe(1);
      expect(await registry.getSingleMetricAsString('edge_cache_store_ops_total')).toMatch(/result="joined"} 49/);
      // Once answered, the next get is a read of its own.
      expect((await store.get('hot'))?.value.toString()).toBe('page');
      expect((await memcachedStat(address, 'cmd_get')) - before).toBe(2);
    }));

  it('a get that begins after this process writes the key never joins a read begun before the write', () =>
    onOwnNode(async ({ l2: store }) => {
      await store.set('k', Buffer.from('old'), 0, 60);
      const early = store.get('k');
      const written = store.set('k', Buffer.from('new'), 0, 60);
      const late = store.get('k');
      await written;
      expect((await early)?.value.toString()).toBe('old');
      expect((await late)?.value.toString()).toBe('new');
      const beforeDelete = store.get('k');
      const deleted = store.delete('k');
      const afterDelete = store.get('k');
      await deleted;
      expect((await beforeDelete)?.value.toString()).toBe('new');
      expect(await afterDelete).toBeUndefined();
    }));

  it('tiered: concurrent L1 misses of one key make one memcached read, and L1 holds the value after', () =>
    onOwnNode(async ({ address, l2, tiered: store }) => {
      await l2.set('warm', Buffer.from('from memcached'), 0, 60);
      const before = await memcachedStat(address, 'cmd_get');
      const got = await Promise.all(Array.from({ length: 20 }, () => store.get('warm')));
      expect(got.every((v) => v?.value.toString() === 'from memcached')).toBe(true);
      expect((await memcachedStat(address, 'cmd_get')) - before).toBe(1);
      expect(store.getSync('warm')?.value.toString()).toBe('from memcached');
    }));

  it('a read memcached never answers (connection closed cleanly under it) ends as a miss, for all who joined it', async () => {
    const server = await startHangingServer(true);
    const store = createMemcachedStore({ servers: parseServerList('memcached', server.address), timeoutMs: 100 });
    try {
      const t0 = Date.now();
      const got = await Promise.all([store.get('lost'), store.get('lost'), store.get('lost')]);
      expect(got).toEqual([undefined, undefined, undefined]);
      expect(Date.now() - t0).toBeLessThan(3000);
      // Nothing left to join: the next get is a read of its own, and ends too. Writes end as well (a fill
      // lock taken with add must not hang the client that takes it).
      const t1 = Date.now();
      expect(await store.get('lost')).toBeUndefined();
      expect(await store.set('lost', Buffer.from('x'), 0, 60)).toBe(false);
      expect(await store.add('lock', Buffer.from('x'), 0, 60)).toBeUndefined();
      expect(await store.delete('lost')).toBe(false);
      expect(Date.now() - t1).toBeLessThan(8000);
    } finally {
      await store.close();
      await server.close();
    }
  });

  it('tiered: a read begun before this process deletes or writes the key does not put the old value in L1', () =>
    onOwnNode(async ({ l2, tiered: store }) => {
      await l2.set('purged', Buffer.from('old'), 0, 60);
      const early = store.get('purged');
      await store.delete('purged');
      expect((await early)?.value.toString()).toBe('old');
      expect(store.getSync('purged')).toBeUndefined();
      expect(await store.get('purged')).toBeUndefined();
      // The same for a purge heard from another process (evictLocal) while a read was on the wire.
      await l2.set('elsewhere', Buffer.from('old'), 0, 60);
      const before = store.get('elsewhere');
      await l2.set('elsewhere', Buffer.from('new'), 0, 60);
      store.evictLocal('elsewhere');
      await before;
      expect(store.getSync('elsewhere')).toBeUndefined();
      expect((await store.get('elsewhere'))?.value.toString()).toBe('new');
    }));

  it('tiered: a get made while a write too big for L1 is in progress never brings the old value back into L1', () =>
    onOwnNode(async ({ l2, tiered: store }) => {
      await l2.set('grows', Buffer.from('old'), 0, 60);
      const early = store.get('grows');
      const written = store.set('grows', Buffer.alloc(200 * 1024, 'n'), 0, 60);
      const during = store.get('grows');
      await written;
      expect((await early)?.value.toString()).toBe('old');
      expect((await during)?.value.length).toBe(200 * 1024);
      expect(store.getSync('grows')).toBeUndefined();
      expect((await store.get('grows'))?.value.length).toBe(200 * 1024);
    }, 1024));

  it('close() ends the calls memjs lost, so nobody waits on a closed store', async () => {
    const server = await startHangingServer(true);
    const store = createMemcachedStore({ servers: parseServerList('memcached', server.address), timeoutMs: 2000 });
    try {
      const lost = store.get('lost');
      const write = store.set('lost', Buffer.from('x'), 0, 60);
      await sleep(100);
      const t0 = Date.now();
      await store.close();
      expect(await lost).toBeUndefined();
      expect(await write).toBe(false);
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      await server.close();
    }
  });
});
