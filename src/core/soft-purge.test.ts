// softPurged: the entry a soft purge stores, from the entry found (pure; time passed in).
import type { CacheEntry } from './entry';
import { freshness } from './policy';
import { SOFT_PURGE_GRACE_SECONDS, softPurged } from './soft-purge';

const NOW = 1_700_000_000_000;

function entry(cc: string | undefined, over: Partial<CacheEntry> = {}): CacheEntry {
  return {
    status: 200,
    headers: cc === undefined ? ['content-type', 'text/html'] : ['content-type', 'text/html', 'cache-control', cc],
    body: Buffer.from('x'),
    storedAt: NOW - 10_500,
    ttlSeconds: 300,
    staleWhileRevalidateSeconds: 0,
    staleIfErrorSeconds: 600,
    tags: [],
    format: 'envelope',
    ...over,
  };
}

describe('softPurged', () => {
  it('ends freshness now and serves stale while one refresh runs', () => {
    const s = softPurged(entry('max-age=300'), NOW)!;
    expect(s.ttlSeconds).toBe(10);
    expect(s.staleWhileRevalidateSeconds).toBe(SOFT_PURGE_GRACE_SECONDS);
    expect(s.staleIfErrorSeconds).toBe(600);
    expect(freshness(s, NOW)).toBe('stale-while-revalidate');
  });
  it.each(['max-age=300, must-revalidate', 'max-age=300, proxy-revalidate', 'no-cache'])('%s: expired, never served stale', (cc) => {
    const s = softPurged(entry(cc), NOW)!;
    expect([s.staleWhileRevalidateSeconds, s.staleIfErrorSeconds]).toEqual([0, 0]);
    expect(freshness(s, NOW)).toBe('expired');
  });
  it('a page stored this very second is stale at once too', () => {
    expect(freshness(softPurged(entry(undefined, { storedAt: NOW - 200 }), NOW)!, NOW)).toBe('stale-while-revalidate');
  });
  it('raw entries (no times) are left to a delete', () => {
    expect(softPurged(entry(undefined, { storedAt: 0, format: 'raw' }), NOW)).toBeUndefined();
  });
});
