import { LeastConnections } from './balance';

/** Picks and has the member answer at once that it took the connection. */
function take<T>(b: LeastConnections<T>): T | undefined {
  const m = b.pick();
  if (m !== undefined) b.settled(m, true);
  return m;
}

describe('LeastConnections', () => {
  it('spreads a burst evenly, equal members taking turns', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.add('b');
    b.add('c');
    expect(Array.from({ length: 7 }, () => take(b))).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    expect(b.counts()).toEqual([3, 2, 2]);
  });

  it('sends new connections to the member whose connections closed', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.add('b');
    for (let i = 0; i < 4; i++) take(b);
    b.release('a');
    b.release('a');
    // Round robin would alternate here and leave a with 1 and b with 3.
    expect([take(b), take(b)]).toEqual(['a', 'a']);
    expect(b.counts()).toEqual([2, 2]);
  });

  it('passes over a member with maxPending handoffs unanswered, and none can take one when all have', () => {
    const b = new LeastConnections<string>(2);
    b.add('a');
    b.add('b');
    expect([b.pick(), b.pick(), b.pick(), b.pick()]).toEqual(['a', 'b', 'a', 'b']);
    expect(b.available()).toBe(false);
    expect(b.pick()).toBeUndefined();
    // b answers both: it takes the next ones although it holds as many connections as a.
    b.settled('b', true);
    b.settled('b', false);
    expect(b.available()).toBe(true);
    expect(b.counts()).toEqual([2, 1]);
    expect([b.pick(), b.pick(), b.pick()]).toEqual(['b', 'b', undefined]);
  });

  it('counts a late answer for a handoff given up on', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.pick();
    b.settled('a', false); // given up on
    expect(b.counts()).toEqual([0]);
    b.opened('a'); // the worker did take it
    expect(b.counts()).toEqual([1]);
  });

  it('forgets a removed member, and a re-added one starts from zero', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.add('b');
    take(b);
    take(b);
    b.remove('a');
    expect([take(b), take(b)]).toEqual(['b', 'b']);
    b.add('a');
    expect(take(b)).toBe('a');
    expect(b.counts()).toEqual([3, 1]);
  });

  it('picks nothing with no members, and counts never go below zero', () => {
    const b = new LeastConnections<number>();
    expect(b.pick()).toBeUndefined();
    expect(b.available()).toBe(false);
    b.add(1);
    b.release(1);
    b.settled(1, false);
    b.release(2);
    expect(b.counts()).toEqual([0]);
    b.add(1);
    expect(b.counts()).toEqual([0]);
  });
});
