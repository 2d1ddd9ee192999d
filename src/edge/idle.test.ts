import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { sweepIdleConnections } from './idle';
import type { IdleSweeper, SweepLimits } from './idle';

class FakeSocket extends EventEmitter {
  bytesRead = 100;
  bytesWritten = 0;
  writableLength = 101; // so the bytes that moved come to -1: a negative count is a real reading too
  destroyed = false;
  /** Node's ServerResponse in progress on the socket: null between requests, absent before the first. */
  _httpMessage?: { writableFinished: boolean } | null;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

/** A connection that has had a response: between requests, or (`responding`) in the middle of one. */
function answered(responding = false): FakeSocket {
  return Object.assign(new FakeSocket(), { bytesWritten: 500, _httpMessage: responding ? { writableFinished: false } : null });
}

/**
 * Runs `body` with a sweeper on a fake server and clock; `later(ms)` moves the clock on and runs one sweep
 * (sweeps come every min(idleMs, keepAliveMs) / 4 = 10 ms here).
 */
function withSweeper(limits: SweepLimits, body: (connect: (s: FakeSocket) => FakeSocket, later: (ms: number) => void) => void): void {
  let clock = 1_000_000;
  const server = new EventEmitter();
  const sweeper: IdleSweeper = sweepIdleConnections(server as unknown as http.Server, limits, () => clock);
  try {
    body(
      (s) => (server.emit('connection', s), s),
      (ms) => {
        clock += ms;
        jest.advanceTimersByTime(10);
      },
    );
  } finally {
    sweeper.stop();
  }
}

describe('sweepIdleConnections', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('closes a connection only after idleMs with no byte moving, counted from the first sweep that saw it', () => {
    withSweeper({ idleMs: 40, keepAliveMs: 1000 }, (connect, later) => {
      const socket = connect(new FakeSocket());
      for (let i = 0; i < 3; i++) later(0); // a few sweeps at the same instant: seen, not idle yet
      expect(socket.destroyed).toBe(false);
      socket.bytesRead += 10; // moved
      later(30);
      later(30); // 30 ms since it moved
      expect(socket.destroyed).toBe(false);
      later(20); // 50 ms since it moved
      expect(socket.destroyed).toBe(true);
    });
  });

  it('closes a connection between requests after keepAliveMs, but not a fresh one nor one with a response in progress', () => {
    withSweeper({ idleMs: 10_000, keepAliveMs: 40 }, (connect, later) => {
      const [kept, fresh, responding] = [connect(answered()), connect(new FakeSocket()), connect(answered(true))];
      later(0); // first sight of each
      later(30);
      expect(kept.destroyed).toBe(false);
      later(20); // 50 ms quiet
      expect([kept.destroyed, fresh.destroyed, responding.destroyed]).toEqual([true, false, false]);
      later(10_000); // the idle timeout closes the others
      expect([fresh.destroyed, responding.destroyed]).toEqual([true, true]);
    });
  });

  it('gives a connection between requests keepAliveMs even when that is longer than idleMs (behind a load balancer)', () => {
    withSweeper({ idleMs: 40, keepAliveMs: 400 }, (connect, later) => {
      const [kept, stalled] = [connect(answered()), connect(answered(true))];
      later(0);
      later(50);
      expect([kept.destroyed, stalled.destroyed]).toEqual([false, true]);
      later(360); // 410 ms quiet
      expect(kept.destroyed).toBe(true);
    });
  });
});
