// Generation counters over the in-process store: a stamp is current until a purge sets a new version of
// the global or one of its tags' versions, or a version is lost (evicted): then never again.
import { Registry } from 'prom-client';
import type { CacheEntry } from './entry';
import { createGenerations, isStamp, plainTags, versionKey } from './generations';
import { cacheMetrics } from './metrics';
import { createMemoryStore } from './stores/memory';

function page(tags: string[]): CacheEntry {
  return { status: 200, headers: [], body: Buffer.from('x'), storedAt: 1, ttlSeconds: 60, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, tags, format: 'envelope' };
}

function setup(): { store: ReturnType<typeof createMemoryStore>; g: ReturnType<typeof createGenerations> } {
  const store = createMemoryStore({ maxBytes: 1 << 20, maxEntryBytes: 1 << 16, tier: 'l2', metrics: cacheMetrics(new Registry()) });
  return { store, g: createGenerations(store, 'p:', 60_000) };
}

describe('generations', () => {
  it('stamps a page with its versions as its last tag, replacing an earlier stamp', async () => {
    const { g } = setup();
    const once = await g.stamp(page(['a', 'b']));
    expect(once.tags.length).toBe(3);
    expect(isStamp(once.tags[2]!)).toBe(true);
    const twice = await g.stamp(once);
    expect(plainTags(twice.tags)).toEqual(['a', 'b']);
    expect(twice.tags.length).toBe(3);
  });

  it('a page is current until one of its tags, or the global version, is bumped', async () => {
    const { g } = setup();
    const p = await g.stamp(page(['a', 'b']));
    const other = await g.stamp(page(['c']));
    expect(g.currentSync(p, 10)).toBe('current');
    expect(g.currentSync(p, 11)).toBe('current');
    await g.bump(['b']);
    expect(g.currentSync(p, 12)).toBe('gone');
    expect(await g.current(p, 12)).toBe('gone');
    expect(g.currentSync(other, 12)).toBe('current');
    await g.bump('all');
    expect(g.currentSync(other, 13)).toBe('gone');
    // A page stored now is current again.
    expect(g.currentSync(g.stamp(page(['c'])), 14)).toBe('current');
  });

  it('a lost version (evicted) makes its pages misses, never current again', async () => {
    const { store, g } = setup();
    const p = await g.stamp(page(['a']));
    await store.delete(versionKey('p:', 'a'));
    // Another process's copy: it reads the store (past its own copy's lifetime).
    const later = createGenerations(store, 'p:', 60_000);
    expect(later.currentSync(p, Date.now())).toBe('gone');
  });

  it('a soft purge makes the pages stale, for up to four more soft purges, then gone; a page stored after is current', async () => {
    const { g } = setup();
    const p = g.stamp(page(['a']));
    await g.bump(['a'], true);
    expect(g.currentSync(p, Date.now())).toBe('stale');
    const q = g.stamp(page(['a']));
    expect(g.currentSync(q, Date.now())).toBe('current');
    for (let i = 0; i < 3; i++) await g.bump(['a'], true);
    expect(await g.current(p, Date.now())).toBe('stale');
    await g.bump(['a'], true);
    expect(await g.current(p, Date.now())).toBe('gone');
    await g.bump(['a']);
    expect(await g.current(q, Date.now())).toBe('gone');
  });

  it('memcached down: checks fail open (the L1 keeps shielding the origin); memcached emptied by a restart: known versions are written back', async () => {
    const { store } = setup();
    let down = false;
    // The in-process store standing in for memcached: kind 'memcached', and suspect while "down".
    const flaky = Object.assign(Object.create(store) as typeof store, {
      kind: 'memcached' as const,
      get: (k: string) => (down ? Promise.resolve(undefined) : store.get(k)),
      add: (k: string, v: Buffer, f: number, t: number) => (down ? Promise.resolve(undefined) : store.add(k, v, f, t)),
      suspect: () => down,
    });
    const g = createGenerations(flaky, 'p:', 1);
    const p = g.stamp(page(['a']));
    await new Promise((r) => setImmediate(r));
    expect(await g.current(p, Date.now() + 10)).toBe('current');
    down = true;
    expect(await g.current(p, Date.now() + 20)).toBe('current');
    // A process that never read the versions either (started during the outage).
    expect(await createGenerations(flaky, 'p:', 1).current(p, Date.now())).toBe('current');
    down = false;
    await store.delete(versionKey('p:', 'a'));
    await store.delete(versionKey('p:', undefined));
    expect(await g.current(p, Date.now() + 30)).toBe('current');
    expect((await store.get(versionKey('p:', 'a')))?.value.toString('latin1')).toBe(p.tags[1]!.split(' ')[2]);
  });

  it('a page without tags carries no stamp and is always current', async () => {
    const { g } = setup();
    expect(g.currentSync(page([]), 1)).toBe('current');
    expect(await g.current(page([]), 1)).toBe('current');
  });
});
