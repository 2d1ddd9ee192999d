import { createProgress, progressText } from './progress';

function stream(isTTY: boolean): { isTTY: boolean; columns: number; text: string; write(t: string): void } {
  return { isTTY, columns: 100, text: '', write(t: string) { this.text += t; } };
}

describe('progress', () => {
  it('states done, failed, rate and ETA', () => {
    expect(progressText('warm', 50, 2, 200, 10_000)).toBe('warm 50/200 done, 2 failed, 5.0/s, ETA 30 s');
    expect(progressText('warm', 200, 0, 200, 10_000)).toBe('warm 200/200 done, 0 failed, 20.0/s, done');
  });

  it('on a TTY redraws one bar in place at most every 100 ms, and clears it at the end', () => {
    let t = 0;
    const out = stream(true);
    const p = createProgress('purge', 4, out, () => t);
    t = 200;
    p.tick(true);
    t = 250;
    p.tick(false); // within 100 ms of the last draw: not drawn
    t = 400;
    p.tick(true);
    const frames = out.text.split('\r\x1b[2K').filter((f) => f !== '');
    expect(frames).toEqual([expect.stringMatching(/^\[#{10}-{30}\] purge 1\/4 done, 0 failed, 5\.0\/s, ETA 1 s$/), expect.stringMatching(/^\[#{30}-{10}\] purge 3\/4 done, 1 failed, 7\.5\/s/)]);
    p.tick(true);
    p.finish();
    expect(out.text.endsWith('\r\x1b[2K')).toBe(true);
    expect(out.text).toContain('purge 4/4 done, 1 failed, 10.0/s, done');
  });

  it('elsewhere writes a plain line at each tenth, only for many items', () => {
    const out = stream(false);
    const p = createProgress('warm', 200, out, () => 1000);
    for (let i = 0; i < 200; i++) p.tick(i % 50 !== 0);
    p.finish();
    const lines = out.text.trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[9]).toMatch(/^warm 200\/200 done, 4 failed/);
    const few = stream(false);
    const q = createProgress('warm', 5, few);
    for (let i = 0; i < 5; i++) q.tick(true);
    q.finish();
    expect(few.text).toBe('');
  });
});
