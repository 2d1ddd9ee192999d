// The L1 in front of memcached bounds how long a purge made elsewhere goes unseen (--l1-ttl): an L1 copy
// lives at most l1TtlSeconds from when its memcached read began, not from when the (slow) read ended.
// The L2 here is a stand-in that answers late; the L1 is the real memory store.
import { storedValue } from '../store';
import type { CacheStore, StoredValue } from '../store';
import { createMemoryStore } from './memory';
import { createTieredStore } from './tiered';

function slowL2(delayMs: number, value: StoredValue): CacheStore {
  const never = (): never => {
    throw new Error('not used');
  };
  return {
    kind: 'memcached',
    getSync: () => undefined,
    get: () => new Promise((resolve) => setTimeout(() => resolve(value), delayMs)),
    set: () => Promise.resolve(true),
    add: () => Promise.resolve(true),
    append: never,
    delete: () => Promise.resolve(true),
    evictLocal: () => {},
    health: () => [],
    close: () => Promise.resolve(),
  };
}

it('an L1 copy filled by a slow memcached read expires l1TtlSeconds after the read began', async () => {
  const l1 = createMemoryStore({ maxBytes: 1024 * 1024, maxTtlSeconds: 1 });
  const tiered = createTieredStore({ l1, l2: slowL2(400, storedValue(Buffer.from('page'), 0)), l1TtlSeconds: 1 });
  const begun = performance.now();
  expect((await tiered.get('k'))?.value.toString()).toBe('page');
  // Filled about 400 ms after the read began: it is there now...
  expect(l1.getSync('k')?.value.toString()).toBe('page');
  // ...and gone 1 s after the read began (counted from the fill, it would stay until about 1.4 s).
  await new Promise((r) => setTimeout(r, Math.max(0, begun + 1150 - performance.now())));
  expect(l1.getSync('k')).toBeUndefined();
});
