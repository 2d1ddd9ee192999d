// RFC 9111 §5.1 and §4.2.3: the Age a response arrives with. An invalid Age is ignored, a list counts by its
// first member, and a response already older than its freshness lifetime is never served as fresh.
import { scriptedSuite } from '../helpers/scripted-origin';

const s = scriptedSuite();

/** Stores a max-age=3600 page arriving with these Age lines, then asks again: what the second request got. */
async function secondAfter(path: string, age: string[], extra: Record<string, string> = {}): Promise<{ xcache: string | undefined; age: string | undefined; origin: number }> {
  const headers: string[] = ['content-type', 'text/plain', 'cache-control', 'max-age=3600'];
  for (const [k, v] of Object.entries(extra)) headers.push(k, v);
  for (const a of age) headers.push('age', a);
  s.o.script(path, (req) => (req.headers['if-none-match'] !== undefined ? { status: 304, headers: { etag: extra.etag ?? '', 'cache-control': 'max-age=3600' } } : { status: 200, headers: headers as unknown as Record<string, string>, body: `page ${path}` }));
  await s.e.get(path);
  const r = await s.e.get(path);
  return { xcache: r.headers['x-cache'] as string | undefined, age: r.headers.age, origin: s.o.seen(path).length };
}

describe('invalid Age values are ignored (RFC 9111 §5.1: "a cache SHOULD ignore the field")', () => {
  it.each([
    ['non-numeric', '/age-abc', ['abc']],
    ['negative', '/age-negative', ['-7200']],
    ['fractional', '/age-float', ['7200.0']],
    ['suffixed', '/age-suffix', ['7200a']],
    ['with a parameter', '/age-param', ['7200;x=1']],
  ])('%s: the page is stored fresh and the next request is a HIT', async (_name, path, age) => {
    const r = await secondAfter(path, age);
    // RFC 9111 §5.1: an invalid Age is ignored, so the page is as fresh as its max-age says.
    expect(r.xcache).toBe('HIT');
    expect(r.origin).toBe(1);
  });
});

describe('a list of Age values counts by its first member (RFC 9111 §5.1)', () => {
  it('"7200, 0" on one line is 7200: older than max-age=3600, never a HIT', async () => {
    const r = await secondAfter('/age-list-old', ['7200, 0']);
    // RFC 9111 §5.1: the first member counts; §4.2: age 7200 > lifetime 3600 is stale.
    expect(r.xcache).not.toBe('HIT');
    expect(r.origin).toBe(2);
  });

  it('two lines, 7200 then 0, count as 7200', async () => {
    const r = await secondAfter('/age-two-lines', ['7200', '0']);
    expect(r.xcache).not.toBe('HIT');
    expect(r.origin).toBe(2);
  });

  it('"0, 7200" counts as 0: fresh', async () => {
    const r = await secondAfter('/age-list-young', ['0, 7200']);
    expect(r.xcache).toBe('HIT');
  });

  it('a value past 2^31 is 2^31 (RFC 9111 §1.2.2): stale', async () => {
    const r = await secondAfter('/age-huge', ['99999999999']);
    expect(r.xcache).not.toBe('HIT');
  });
});

describe('a response older than its freshness (RFC 9111 §4.2)', () => {
  it('is never served as fresh; with a validator it is stored and revalidated before use', async () => {
    const r = await secondAfter('/age-old-etag', ['7200'], { etag: '"a1"' });
    // RFC 9111 §4.2.4: a stale response is not used without validation.
    expect(r.xcache).toBe('REVALIDATED');
    expect(s.o.seen('/age-old-etag')[1]!['if-none-match']).toBe('"a1"');
  });

  it('carries the Age it arrived with on a HIT (RFC 9111 §4.2.3)', async () => {
    const r = await secondAfter('/age-30', ['30']);
    expect(r.xcache).toBe('HIT');
    // RFC 9111 §4.2.3: current_age = corrected_initial_age + resident_time.
    expect(Number(r.age)).toBeGreaterThanOrEqual(30);
    expect(Number(r.age)).toBeLessThan(35);
  });
});
