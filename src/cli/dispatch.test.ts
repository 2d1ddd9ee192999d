import { ConnectionDispatcher } from './dispatch';
import type { ConnectionHandle, ConnMessage } from './dispatch';

class FakeHandle implements ConnectionHandle {
  closed = false;
  constructor(readonly name: string) {}
  close(): void {
    this.closed = true;
  }
}

interface Sent {
  worker: string;
  id: number;
  handle: FakeHandle;
  callback: (err: Error | null) => void;
}

/** A dispatcher whose sends are recorded, and a way to feed it accepted connections. */
function setup(ackTimeoutMs = 5000): { d: ConnectionDispatcher<string>; sent: Sent[]; connect(name: string): FakeHandle } {
  const sent: Sent[] = [];
  const d = new ConnectionDispatcher<string>({
    ackTimeoutMs,
    send(worker, message: ConnMessage, handle, callback) {
      sent.push({ worker, id: message.id, handle: handle as FakeHandle, callback });
    },
  });
  let onconnection: ((err: number, handle?: ConnectionHandle) => void) | undefined;
  const listening = {
    set onconnection(fn: (err: number, handle?: ConnectionHandle) => void) {
      onconnection = fn;
    },
  };
  d.attach({ _handle: listening } as never);
  return {
    d,
    sent,
    connect(name: string): FakeHandle {
      const h = new FakeHandle(name);
      onconnection!(0, h);
      return h;
    },
  };
}

describe('ConnectionDispatcher', () => {
  afterEach(() => jest.useRealTimers());

  it('closes its copy once a worker takes a connection, and offers a refused one to another worker', () => {
    const { d, sent, connect } = setup();
    d.ready('w1');
    d.ready('w2');
    const h = connect('c1');
    expect(sent.map((s) => s.worker)).toEqual(['w1']);
    d.retire('w1'); // draining: it refuses what it was offered
    d.answer('w1', sent[0]!.id, false);
    expect(h.closed).toBe(false);
    expect(sent.map((s) => s.worker)).toEqual(['w1', 'w2']);
    d.answer('w2', sent[1]!.id, true);
    expect(h.closed).toBe(true);
    expect(d.counts()).toEqual([1]);
    d.gone('w2');
    expect(d.counts()).toEqual([0]);
    d.stop();
  });

  it('holds connections while no worker can take one, and hands them out as answers come', () => {
    const { d, sent, connect } = setup();
    d.ready('w1');
    for (let i = 0; i < 4; i++) connect(`c${i}`);
    // Two unanswered handoffs at most: the others wait here.
    expect(sent).toHaveLength(2);
    d.answer('w1', sent[0]!.id, true);
    expect(sent).toHaveLength(3);
    d.ready('w2');
    expect(sent.map((s) => s.worker)).toEqual(['w1', 'w1', 'w1', 'w2']);
    d.stop();
  });

  it('offers the unanswered handoffs of a worker that went away, or could not be sent to, to another worker', () => {
    const { d, sent, connect } = setup();
    d.ready('w1');
    d.ready('w2');
    const a = connect('a');
    const b = connect('b');
    expect(sent.map((s) => s.worker)).toEqual(['w1', 'w2']);
    d.lost('w1');
    expect(a.closed).toBe(false);
    expect(sent[2]).toMatchObject({ worker: 'w2', handle: a });
    // w2's channel turns out closed: b never left, so it goes to the next worker.
    d.ready('w3');
    sent[1]!.callback(new Error('channel closed'));
    expect(b.closed).toBe(false);
    expect(sent[3]).toMatchObject({ worker: 'w3', handle: b });
    d.stop();
  });

  it('closes a handoff unanswered for the timeout once sent, picks that worker last, and counts a late answer', () => {
    jest.useFakeTimers();
    const { d, sent, connect } = setup(1000);
    d.ready('w1');
    const h = connect('c');
    // Still in Node's queue for the channel: never closed (that would jam the channel).
    jest.advanceTimersByTime(3000);
    expect(h.closed).toBe(false);
    sent[0]!.callback(null);
    jest.advanceTimersByTime(1200);
    expect(h.closed).toBe(true);
    expect(d.counts()).toEqual([0]);
    // w1 holds fewer connections than w2 will, but it left a handoff unanswered: w2 gets the next ones.
    d.ready('w2');
    connect('d');
    connect('e');
    expect(sent.slice(1).map((s) => s.worker)).toEqual(['w2', 'w2']);
    // Only when w2 can take none does w1 get one.
    connect('f');
    expect(sent[3]!.worker).toBe('w1');
    d.answer('w1', sent[0]!.id, true);
    expect(d.counts()).toEqual([2, 2]);
    d.stop();
  });

  it('closes a connection no worker could take within the timeout', () => {
    jest.useFakeTimers();
    const { d, sent, connect } = setup(1000);
    d.ready('w1');
    connect('a');
    connect('b');
    const c = connect('c'); // w1 has two handoffs unanswered: c waits here
    expect(sent).toHaveLength(2);
    jest.advanceTimersByTime(1200);
    expect(c.closed).toBe(true);
    d.answer('w1', sent[0]!.id, true);
    expect(sent).toHaveLength(2);
    d.stop();
  });

  it('closes connections after stop, and a connection refused by every worker it was offered to', () => {
    const { d, sent, connect } = setup();
    d.ready('w1');
    const h = connect('c');
    for (let i = 0; i < 3 && !h.closed; i++) d.answer('w1', sent[i]!.id, false);
    expect(sent).toHaveLength(3);
    expect(h.closed).toBe(true);
    d.stop();
    expect(connect('late').closed).toBe(true);
  });
});
