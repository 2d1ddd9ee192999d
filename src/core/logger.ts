// pino factory: one root logger per process, child loggers per component (never per request).
import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

let root: Logger | undefined;

/** The process logger; level from EDGE_LOG_LEVEL (default 'info', 'silent' under jest unless set). */
export function rootLogger(): Logger {
  if (root === undefined) {
    const level = process.env.EDGE_LOG_LEVEL ?? (process.env.JEST_WORKER_ID !== undefined ? 'silent' : 'info');
    const pretty = prettyStream();
    root = pretty === undefined ? pino({ name: 'edge-page-cache', level }) : pino({ name: 'edge-page-cache', level }, pretty);
  }
  return root;
}

/**
 * On a terminal (npm start), one readable line per entry through pino-pretty, written synchronously in this
 * process (no transport thread); anywhere else, or when pino-pretty is not installed (it is a devDependency:
 * a production install logs JSON), pino's own JSON lines.
 */
function prettyStream(): DestinationStream | undefined {
  if (process.stdout.isTTY !== true || process.env.JEST_WORKER_ID !== undefined) return undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
    return pretty({ sync: true, colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
  } catch {
    return undefined;
  }
}

export function componentLogger(component: string): Logger {
  return rootLogger().child({ component });
}

/**
 * The access log: asked for with --access-log, so it writes at info whatever EDGE_LOG_LEVEL says about the
 * other logs (an operator who quiets warnings still gets the lines they turned on).
 */
export function accessLogger(): Logger {
  return rootLogger().child({ component: 'access' }, { level: 'info' });
}

/**
 * Logs at most once per interval per logger and reason, counting what it dropped, so a dead memcached
 * under load writes a few lines a second, not thousands.
 */
export class RateLimitedLog {
  private last = 0;
  private dropped = 0;
  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  warn(obj: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.dropped++;
      return;
    }
    this.last = now;
    const dropped = this.dropped;
    this.dropped = 0;
    this.log.warn(dropped > 0 ? { ...obj, suppressed: dropped } : obj, msg);
  }
}
