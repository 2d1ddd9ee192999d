// One suite every CacheStore must pass: miss, round trip with flags, TTL expiry, add, delete,
// oversize refused, concurrent gets. Each store factory gets a fresh store.
import type { CacheStore } from '../../src/core/store';
import { sleep } from '../helpers/ports';

let seq = 0;
function k(): string {
  seq++;
  return `contract${process.pid}x${Date.now()}x${seq}`;
}

export function storeContract(name: string, make: () => Promise<CacheStore> | CacheStore, maxItemBytes: number): void {
  describe(`CacheStore contract: ${name}`, () => {
    let store: CacheStore;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(async () => {
      await store.close();
    });

    it('misses a key never set', async () => {
      expect(await store.get(k())).toBeUndefined();
    });

    it('round-trips bytes and flags', async () => {
      const key = k();
      const value = Buffer.from([0, 1, 2, 255, 0x0d, 0x0a, 0]);
      expect(await store.set(key, value, 0x0102, 60)).toBe(true);
      const got = await store.get(key);
      expect(got?.value.equals(value)).toBe(true);
      expect(got?.flags).toBe(0x0102);
    });

    it('round-trips an empty value', async () => {
      const key = k();
      expect(await store.set(key, Buffer.alloc(0), 0, 60)).toBe(true);
      expect((await store.get(key))?.value.length).toBe(0);
    });

    it('expires an item after its TTL', async () => {
      const key = k();
      await store.set(key, Buffer.from('x'), 0, 1);
      expect(await store.get(key)).toBeDefined();
      await sleep(2100);
      expect(await store.get(key)).toBeUndefined();
    });

    it('add writes only when the key is absent', async () => {
      const key = k();
      expect(await store.add(key, Buffer.from('first'), 0, 60)).toBe(true);
      expect(await store.add(key, Buffer.from('second'), 0, 60)).toBe(false);
      expect((await store.get(key))?.value.toString()).toBe('first');
    });

    it('appends to a present key and refuses an absent one', async () => {
      const key = k();
      expect(await store.append(key, Buffer.from('x'))).toBe(false);
      await store.set(key, Buffer.from('ab'), 7, 60);
      expect(await store.append(key, Buffer.from('cd'))).toBe(true);
      store.evictLocal(key);
      const got = await store.get(key);
      expect(got?.value.toString()).toBe('abcd');
      expect(got?.flags).toBe(7);
      // An absent key is not a fault: the store stays healthy.
      expect(store.health().every((h) => h.up)).toBe(true);
    });

    it('deletes', async () => {
      const key = k();
      await store.set(key, Buffer.from('x'), 0, 60);
      await store.delete(key);
      expect(await store.get(key)).toBeUndefined();
    });

    it('refuses a value over the item size limit without throwing', async () => {
      const key = k();
      expect(await store.set(key, Buffer.alloc(maxItemBytes + 1), 0, 60)).toBe(false);
      expect(await store.get(key)).toBeUndefined();
    });

    it('stores a value just under the limit byte for byte', async () => {
      const key = k();
      const value = Buffer.alloc(maxItemBytes - 1024);
      for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
      expect(await store.set(key, value, 0, 60)).toBe(true);
      expect((await store.get(key))?.value.equals(value)).toBe(true);
    });

    it('answers 200 concurrent gets correctly', async () => {
      const keysList = Array.from({ length: 20 }, () => k());
      await Promise.all(keysList.map((key, i) => store.set(key, Buffer.from(`v${i}`), 0, 60)));
      const reads = await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.get(keysList[i % 20]!).then((v) => [i % 20, v?.value.toString()] as const)),
      );
      for (const [i, v] of reads) expect(v).toBe(`v${i}`);
    });
  });
}
