// Progress of the long commands (warm, purge, purge --rewarm) on stderr, so stdout keeps only the summary:
// on a TTY one bar redrawn in place (done, failed, rate, ETA) at most every 100 ms; otherwise a plain line
// at each tenth of the way, and only for many URLs (a log file gets a few lines, not one per URL).

/** Where progress goes: a TTY gets the bar, anything else plain lines. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  /** Items finished: ok or failed. */
  tick(ok: boolean, count?: number): void;
  /** Clears the bar (TTY), or writes the last line (plain). */
  finish(): void;
}

/** Fewer items than this get no plain lines (a TTY still gets the bar from 2 on). */
export const PLAIN_MIN_ITEMS = 100;
const REDRAW_MS = 100;

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.ceil(s - m * 60)} s`;
}

/** The status text: `label 120/500 done, 3 failed, 85.2/s, ETA 5 s`. */
export function progressText(label: string, done: number, failed: number, total: number, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const eta = done >= total ? 'done' : rate > 0 ? `ETA ${seconds((total - done) / rate)}` : 'ETA ?';
  return `${label} ${done}/${total} done, ${failed} failed, ${rate.toFixed(1)}/s, ${eta}`;
}

export function createProgress(label: string, total: number, out: ProgressStream = process.stderr, now: () => number = Date.now): Progress {
  const start = now();
  const tty = out.isTTY === true;
  const quiet = tty ? total < 2 : total < PLAIN_MIN_ITEMS;
  const step = Math.max(1, Math.ceil(total / 10));
  let done = 0;
  let failed = 0;
  let drawnAt = 0;
  let nextLine = step;
  let drawn = false;

  function bar(): string {
    const text = progressText(label, done, failed, total, now() - start);
    const width = Math.max(10, Math.min(40, (out.columns ?? 80) - text.length - 4));
    const full = total === 0 ? width : Math.round((done / total) * width);
    return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${text}`;
  }

  return {
    tick(ok: boolean, count = 1): void {
      done += count;
      if (!ok) failed += count;
      if (quiet) return;
      if (tty) {
        const t = now();
        if (t - drawnAt < REDRAW_MS && done < total) return;
        drawnAt = t;
        drawn = true;
        out.write(`\r\x1b[2K${bar()}`);
      } else if (done >= nextLine || done >= total) {
        while (nextLine <= done) nextLine += step;
        out.write(`${progressText(label, done, failed, total, now() - start)}\n`);
      }
    },
    finish(): void {
      if (quiet) return;
      if (tty) {
        if (drawn) out.write('\r\x1b[2K');
      } else if (done < total) {
        out.write(`${progressText(label, done, failed, total, now() - start)}\n`);
      }
    },
  };
}
