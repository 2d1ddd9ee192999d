import { LeastConnections } from './balance';

describe('LeastConnections', () => {
  it('spreads a burst evenly, equal members taking turns', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.add('b');
    b.add('c');
    const got = Array.from({ length: 7 }, () => b.pick());
    expect(got).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    expect(b.counts()).toEqual([3, 2, 2]);
  });

  it('sends new connections to the member whose connections closed', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.add('b');
    for (let i = 0; i < 4; i++) b.pick();
    b.release('a');
    b.release('a');
    // Round robin would alternate here and leave a with 1 and b with 3.
    expect([b.pick(), b.pick()]).toEqual(['a', 'a']);
    expect(b.counts()).toEqual([2, 2]);
  });

  it('forgets a removed member, and a re-added one starts from zero', () => {
    const b = new LeastConnections<string>();
    b.add('a');
    b.add('b');
    b.pick();
    b.pick();
    b.remove('a');
    expect([b.pick(), b.pick()]).toEqual(['b', 'b']);
    b.add('a');
    expect(b.pick()).toBe('a');
    expect(b.counts()).toEqual([3, 1]);
  });

  it('picks nothing with no members, and a release never goes below zero', () => {
    const b = new LeastConnections<number>();
    expect(b.pick()).toBeUndefined();
    b.add(1);
    b.release(1);
    b.release(2);
    expect(b.counts()).toEqual([0]);
    b.add(1);
    expect(b.counts()).toEqual([0]);
  });
});
