import { GuessLimit, isAdminHost, tokenDigest, tokenMatches } from './admin-auth';

describe('isAdminHost', () => {
  it.each([
    [undefined, '127.0.0.1', true],
    ['', '127.0.0.1', true],
    ['127.0.0.1:9091', '127.0.0.1', true],
    ['localhost', '127.0.0.1', true],
    ['localhost.', '127.0.0.1', true],
    ['[::1]:9091', '::1', true],
    ['10.1.2.3:9091', '0.0.0.0', true],
    ['admin.internal:9091', 'admin.internal', true],
    ['evil.example', '127.0.0.1', false],
    ['evil.example:9091', '0.0.0.0', false],
    ['localhost.evil.example', '127.0.0.1', false],
    ['127.0.0.1:9091@evil', '127.0.0.1', false],
    ['[::1', '::1', false],
    ['[evil]:80', '::1', false],
  ] as const)('%j on %s -> %s', (host, listen, ok) => {
    expect(isAdminHost(host, listen)).toBe(ok);
  });
});

describe('tokenMatches', () => {
  const want = tokenDigest('the-right-token-0123');
  it.each([
    ['Bearer the-right-token-0123', true],
    ['Bearer  the-right-token-0123 ', true],
    ['Bearer the-right-token-012', false],
    ['Bearer the-right-token-01234', false],
    ['Bearer x', false],
    ['Basic the-right-token-0123', false],
  ])('%j -> %s (any length compares without throwing)', (header, ok) => {
    expect(tokenMatches(header, want)).toBe(ok);
  });
});

describe('GuessLimit', () => {
  it('refuses an address after maxFailures in a window, for a window, then lets it try again', () => {
    let t = 1_000_000;
    const g = new GuessLimit({ maxFailures: 3, windowMs: 60_000, now: () => t });
    expect([g.failed('a'), g.failed('a'), g.retryAfter('a')]).toEqual([false, false, 0]);
    expect(g.failed('a')).toBe(true);
    expect(g.retryAfter('a')).toBe(60);
    expect(g.retryAfter('b')).toBe(0);
    t += 59_001;
    expect(g.retryAfter('a')).toBe(1);
    t += 1_000;
    expect(g.retryAfter('a')).toBe(0);
    expect(g.failed('a')).toBe(false); // a new window
  });

  it('keeps at most maxAddresses addresses', () => {
    const g = new GuessLimit({ maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) g.failed(`10.0.${i >> 8}.${i & 255}`);
    expect(g.size).toBe(100);
  });
});
