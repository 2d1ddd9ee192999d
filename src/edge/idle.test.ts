import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { sweepIdleConnections } from './idle';

class FakeSocket extends EventEmitter {
  bytesRead = 100;
  bytesWritten = 0;
  writableLength = 101; // so the bytes that moved come to -1: a negative count is a real reading too
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('sweepIdleConnections', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('closes a connection only after idleMs with no byte moving, counted from the first sweep that saw it', () => {
    let clock = 1_000_000;
    const sweeps = (n: number): void => void jest.advanceTimersByTime(10 * n); // one sweep per idleMs / 4
    const server = new EventEmitter();
    const sweeper = sweepIdleConnections(server as unknown as http.Server, { idleMs: 40, keepAliveMs: 1000 }, () => clock);
    try {
      const socket = new FakeSocket();
      server.emit('connection', socket);
      sweeps(3); // a few sweeps at the same instant: seen, not idle yet
      expect(socket.destroyed).toBe(false);
      clock += 30;
      socket.bytesRead += 10; // moved
      sweeps(2);
      clock += 30; // 30 ms since it moved
      sweeps(2);
      expect(socket.destroyed).toBe(false);
      clock += 20; // 50 ms since it moved
      sweeps(2);
      expect(socket.destroyed).toBe(true);
    } finally {
      sweeper.stop();
    }
  });

  it('closes a connection between requests after keepAliveMs, but not a fresh one nor one with a response in progress', () => {
    let clock = 1_000_000;
    const server = new EventEmitter();
    const sweeper = sweepIdleConnections(server as unknown as http.Server, { idleMs: 10_000, keepAliveMs: 40 }, () => clock);
    try {
      const kept = Object.assign(new FakeSocket(), { bytesWritten: 500, _httpMessage: null });
      const fresh = new FakeSocket();
      const responding = Object.assign(new FakeSocket(), { bytesWritten: 500, _httpMessage: { writableFinished: false } });
      for (const s of [kept, fresh, responding]) server.emit('connection', s);
      jest.advanceTimersByTime(10); // first sight of each
      clock += 30;
      jest.advanceTimersByTime(10);
      expect(kept.destroyed).toBe(false);
      clock += 20; // 50 ms quiet
      jest.advanceTimersByTime(10);
      expect([kept.destroyed, fresh.destroyed, responding.destroyed]).toEqual([true, false, false]);
      clock += 10_000; // the idle timeout closes the others
      jest.advanceTimersByTime(10);
      expect([fresh.destroyed, responding.destroyed]).toEqual([true, true]);
    } finally {
      sweeper.stop();
    }
  });

  it('gives a connection between requests keepAliveMs even when that is longer than idleMs (behind a load balancer)', () => {
    let clock = 1_000_000;
    const server = new EventEmitter();
    const sweeper = sweepIdleConnections(server as unknown as http.Server, { idleMs: 40, keepAliveMs: 400 }, () => clock);
    try {
      const kept = Object.assign(new FakeSocket(), { bytesWritten: 500, _httpMessage: null });
      const stalled = Object.assign(new FakeSocket(), { bytesWritten: 500, _httpMessage: { writableFinished: false } });
      for (const s of [kept, stalled]) server.emit('connection', s);
      jest.advanceTimersByTime(10);
      clock += 50;
      jest.advanceTimersByTime(10);
      expect([kept.destroyed, stalled.destroyed]).toEqual([false, true]);
      clock += 360; // 410 ms quiet
      jest.advanceTimersByTime(10);
      expect(kept.destroyed).toBe(true);
    } finally {
      sweeper.stop();
    }
  });
});
