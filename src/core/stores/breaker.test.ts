import { NodeBreaker } from './breaker';

/** A breaker on a fake clock, with its up gauge's last value. */
function setup(): { b: NodeBreaker; up: () => number; later: (ms: number) => void } {
  let clock = 1_000_000;
  let gauge = -1;
  const b = new NodeBreaker({ timeoutMs: 100, retryAfterMs: 2000, timeoutsToOpen: 3, now: () => clock }, { set: (v) => (gauge = v) });
  return { b, up: () => gauge, later: (ms) => (clock += ms) };
}

describe('NodeBreaker', () => {
  it('starts closed with the up gauge at 1', () => {
    const { b, up } = setup();
    expect(b.admit()).toBe(true);
    expect(up()).toBe(1);
  });

  it('opens at once on a connection error and skips the node until retryAfterMs', () => {
    const { b, up, later } = setup();
    expect(b.failed(false)).toBe('opened');
    expect(up()).toBe(0);
    expect(b.admit()).toBe(false);
    later(1999);
    expect(b.admit()).toBe(false);
  });

  it('opens on timeoutsToOpen timeouts in a row, counting those within timeoutMs / 2 as one stall', () => {
    const { b, later } = setup();
    expect(b.failed(true)).toBe('counted');
    later(10);
    expect(b.failed(true)).toBe('same-stall');
    later(60);
    expect(b.failed(true)).toBe('counted');
    expect(b.admit()).toBe(true);
    later(60);
    expect(b.failed(true)).toBe('opened');
    expect(b.admit()).toBe(false);
  });

  it('a success between timeouts starts the count again', () => {
    const { b, later } = setup();
    b.failed(true);
    later(60);
    b.failed(true);
    b.succeeded();
    later(60);
    expect(b.failed(true)).toBe('counted');
    expect(b.failures).toBe(1);
  });

  it('lets one probe through after retryAfterMs; its success closes the breaker', () => {
    const { b, up, later } = setup();
    b.failed(false);
    later(2000);
    expect(b.admit()).toBe(true);
    expect(b.admit()).toBe(false); // the rest keep skipping while the probe is out
    b.succeeded();
    expect(b.admit()).toBe(true);
    expect(b.retryAt).toBe(0);
    expect(up()).toBe(1);
  });

  it('a probe that times out reopens at once', () => {
    const { b, later } = setup();
    b.failed(false);
    later(2000);
    b.admit();
    expect(b.failed(true)).toBe('opened');
    expect(b.admit()).toBe(false);
  });

  it('a status answer (memcached refused a write) ends a probe without opening or closing', () => {
    const { b, later } = setup();
    b.failed(false);
    later(2000);
    b.admit();
    b.refused();
    expect(b.retryAt).not.toBe(0);
    expect(b.admit()).toBe(true); // the probe slot is free again
  });
});
