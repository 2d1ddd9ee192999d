// RFC 9213 targeted cache control: CDN-Cache-Control and the edge's own field (Edge-Cache-Control, name
// configurable) override Cache-Control for this cache and are removed before delivery; Surrogate-Control
// max-age / no-store are honoured the same way. Cache-Control still reaches the client untouched.
import { startScriptedEdge, scriptedSuite } from '../helpers/scripted-origin';
import type { ScriptedEdge } from '../helpers/scripted-origin';

const s = scriptedSuite({ ttl: 0 });

async function twice(edge: ScriptedEdge, path: string, headers: Record<string, string>): Promise<{ second: Awaited<ReturnType<typeof s.e.get>>; origin: number }> {
  s.o.script(path, { headers: { 'content-type': 'text/plain', ...headers }, body: `page ${path}` });
  await edge.get(path);
  const second = await edge.get(path);
  return { second, origin: s.o.seen(path).length };
}

describe('CDN-Cache-Control (RFC 9213 §2)', () => {
  it('stores what it allows although Cache-Control says no-store, and removes it before delivery', async () => {
    const { second, origin } = await twice(s.e, '/cdn-store', { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=600' });
    // RFC 9213 §2.2: a cache that uses the targeted field MUST ignore Cache-Control.
    expect(second.headers['x-cache']).toBe('HIT');
    expect(origin).toBe(1);
    // The targeted field is for this cache; the client gets Cache-Control as the origin sent it.
    expect(second.headers['cdn-cache-control']).toBeUndefined();
    expect(second.headers['cache-control']).toBe('no-store');
  });

  it('forbids storing what Cache-Control alone would allow (no-store)', async () => {
    const { second, origin } = await twice(s.e, '/cdn-no-store', { 'cache-control': 'max-age=600', 'cdn-cache-control': 'no-store' });
    expect(second.headers['x-cache']).toBe('MISS');
    expect(origin).toBe(2);
    // Removed from responses streamed to the client too.
    expect(second.headers['cdn-cache-control']).toBeUndefined();
  });
});

describe("the edge's own targeted field", () => {
  it('Edge-Cache-Control wins over CDN-Cache-Control (RFC 9213 §2.1: the most specific field)', async () => {
    const { second } = await twice(s.e, '/edge-wins', { 'cdn-cache-control': 'no-store', 'edge-cache-control': 'max-age=600' });
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['edge-cache-control']).toBeUndefined();
  });

  it('takes a configured name (--targeted-cache-control)', async () => {
    const named = await startScriptedEdge(s.o, { memcached: s.mc.address, ttl: 0, targetedCacheControl: 'Acme-Cache-Control' });
    try {
      const { second } = await twice(named, '/named', { 'cache-control': 'no-store', 'acme-cache-control': 'max-age=600' });
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.headers['acme-cache-control']).toBeUndefined();
    } finally {
      await named.edge.close();
    }
  });
});

describe('Surrogate-Control (Edge Architecture 1.0)', () => {
  it('max-age gives the freshness for this cache, and the field is removed', async () => {
    const { second } = await twice(s.e, '/sc-max-age', { 'cache-control': 'max-age=0', 'surrogate-control': 'max-age=600' });
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['surrogate-control']).toBeUndefined();
  });

  it('no-store forbids storing', async () => {
    const { second, origin } = await twice(s.e, '/sc-no-store', { 'cache-control': 'max-age=600', 'surrogate-control': 'no-store' });
    expect(second.headers['x-cache']).toBe('MISS');
    expect(origin).toBe(2);
  });
});
