// The origins behind the edge: one undici Pool each (keep-alive, connect/header/body timeouts), picked
// round-robin among those up. A failing origin is marked down after originMaxFails consecutive failures
// for originFailTimeoutMs (passive health, as nginx's max_fails/fail_timeout), optionally probed actively.
// Requests without a body are retried on another origin after a connection error or timeout.
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { BadRequestError, ClientAbortError, OriginBusyError, OriginTimeoutError, OriginUnavailableError, toError } from '../core/errors';
import type { OriginError } from '../core/errors';
import { componentLogger, RateLimitedLog } from '../core/logger';
import type { CacheMetrics } from '../core/metrics';
import type { ResolvedEdgeOptions, ResolvedOrigin } from './options';

export interface OriginState {
  readonly origin: ResolvedOrigin;
  readonly pool: Pool;
  failures: number;
  downUntil: number;
  requests: number;
  errors: number;
}

export interface OriginHealth {
  readonly url: string;
  readonly up: boolean;
  readonly failures: number;
  readonly requests: number;
  readonly errors: number;
}

export interface OriginRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  /** A streamed request body (pass); such requests are never retried. */
  readonly body: Readable | null;
  /** Whether another origin may be tried after a connection error or timeout. */
  readonly retryable: boolean;
  /** Aborts the origin request (the client went away, or sent its body too slowly): not the origin's fault. */
  readonly signal?: AbortSignal;
}

export interface Origins {
  request(req: OriginRequest): Promise<Dispatcher.ResponseData>;
  health(): readonly OriginHealth[];
  close(): Promise<void>;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
/** undici refusing the request itself: the client's doing, not the origin's. */
const REQUEST_CODES: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/** Wraps an undici or socket error once, keeping it as cause: timeouts become 504, the rest 502. */
export function classifyOriginError(err: unknown, url: string): OriginError {
  const e = toError(err);
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return new OriginTimeoutError(`origin ${url} timed out (${code})`, { cause: e });
  return new OriginUnavailableError(`origin ${url} failed: ${typeof code === 'string' ? code : e.message}`, { cause: e });
}

function clientGone(body: Readable | null): boolean {
  if (body === null) return false;
  const socket = (body as { socket?: { destroyed?: boolean } }).socket;
  return socket?.destroyed === true;
}

/** An origin response whose body cannot be delimited: a 502 that does not count against the origin's health. */
class UnframedResponseError extends OriginUnavailableError {}

/** Whether a response's Transfer-Encoding is `chunked` alone, the one coding a proxy must understand (RFC 9112 §7). */
function chunkedOnly(te: string | string[]): boolean {
  const v = (Array.isArray(te) ? te.join(',') : te).trim().toLowerCase();
  return v === 'chunked';
}

export function createOrigins(opts: ResolvedEdgeOptions, metrics: CacheMetrics, now: () => number = Date.now): Origins {
  const log = new RateLimitedLog(componentLogger('origin'));
  const states: OriginState[] = opts.origins.map((origin) => ({
    origin,
    pool: new Pool(origin.base, {
      connections: opts.originConnections,
      connectTimeout: opts.originConnectTimeoutMs,
      headersTimeout: opts.originTimeoutMs,
      bodyTimeout: opts.originBodyTimeoutMs,
      keepAliveTimeout: 4000,
      pipelining: 1,
    }),
    failures: 0,
    downUntil: 0,
    requests: 0,
    errors: 0,
  }));
  let next = 0;
  const okCounter = metrics.originRequests.labels('ok');
  const errCounter = metrics.originRequests.labels('error');
  const okSeconds = metrics.originSeconds.labels('ok');
  const errSeconds = metrics.originSeconds.labels('error');

  /** Round-robin over origins that are up; when all are down, the one whose down time ends first. */
  function pick(tried: readonly OriginState[]): OriginState | undefined {
    const t = now();
    for (let i = 0; i < states.length; i++) {
      const s = states[(next + i) % states.length]!;
      if (s.downUntil <= t && !tried.includes(s)) {
        next = (next + i + 1) % states.length;
        return s;
      }
    }
    let best: OriginState | undefined;
    for (const s of states) if (!tried.includes(s) && (best === undefined || s.downUntil < best.downUntil)) best = s;
    return best;
  }

  function succeeded(s: OriginState): void {
    s.failures = 0;
    s.downUntil = 0;
  }

  function failedOnce(s: OriginState, err: OriginError): void {
    s.errors++;
    s.failures++;
    if (s.failures >= opts.originMaxFails) s.downUntil = now() + opts.originFailTimeoutMs;
    log.warn({ origin: s.origin.base, err: err.message, failures: s.failures }, 'origin request failed');
  }

  /**
   * RFC 9112 §6.1: a transfer coding the edge does not understand cannot be decoded, so the body's end and
   * bytes are unknown: a 502, never relayed or stored. (The origin answers; its health stands.)
   */
  function framed(s: OriginState, res: Dispatcher.ResponseData): Dispatcher.ResponseData {
    const te = res.headers['transfer-encoding'];
    if (te === undefined || chunkedOnly(te)) return res;
    res.body.destroy();
    log.warn({ origin: s.origin.base, te }, 'origin response cannot be framed');
    throw new UnframedResponseError(`origin ${s.origin.base} sent Transfer-Encoding: ${String(te)}`);
  }

  let probeTimer: NodeJS.Timeout | undefined;
  if (opts.originHealthPath !== undefined) {
    const path = opts.originHealthPath;
    probeTimer = setInterval(function probeOrigins() {
      for (const s of states) {
        s.pool
          .request({ method: 'GET', path, headersTimeout: opts.originConnectTimeoutMs })
          .then(async function probed(r) {
            await r.body.dump();
            if (r.statusCode < 500) succeeded(s);
            else failedOnce(s, new OriginUnavailableError(`health probe answered ${r.statusCode}`));
          })
          .catch(function probeFailed(err: unknown) {
            failedOnce(s, classifyOriginError(err, s.origin.base));
          });
      }
    }, opts.originHealthIntervalMs);
    probeTimer.unref();
  }

  return {
    async request(req: OriginRequest): Promise<Dispatcher.ResponseData> {
      const tried: OriginState[] = [];
      const attempts = req.retryable ? states.length : 1;
      // Retries share one deadline (nginx's proxy_next_upstream_timeout): a client waits about one
      // --origin-timeout for the response head, however many origins are tried.
      const deadline = now() + opts.originTimeoutMs;
      let last: OriginError | undefined;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const left = deadline - now();
        if (attempt > 0 && left < 1) break;
        const s = pick(tried);
        if (s === undefined) break;
        tried.push(s);
        if (s.pool.stats.pending >= opts.originMaxQueue) {
          // Every connection busy and the queue full: shed load instead of queueing without bound. Not a
          // failure of the origin (it is answering), so its health is untouched; another origin may have room.
          last = new OriginBusyError(`origin ${s.origin.base}: ${opts.originMaxQueue} requests already wait for a connection`);
          log.warn({ origin: s.origin.base, queued: opts.originMaxQueue }, 'origin queue full');
          continue;
        }
        s.requests++;
        const t0 = performance.now();
        try {
          const res = await s.pool.request({
            method: req.method as Dispatcher.HttpMethod,
            path: req.path,
            headers: req.headers,
            body: req.body,
            headersTimeout: Math.max(1, left),
            signal: req.signal,
          });
          succeeded(s);
          okCounter.inc();
          okSeconds.observe((performance.now() - t0) / 1000);
          return framed(s, res);
        } catch (err) {
          if (err instanceof UnframedResponseError) throw err;
          const code = (err as { code?: unknown }).code;
          if (typeof code === 'string' && REQUEST_CODES.has(code)) throw new BadRequestError(`request refused: ${code}`, { cause: err });
          // The client went away (or was too slow) and the request was aborted, or the client went away while
          // sending its body: the origin did nothing wrong, so its health is untouched. (The body stream itself
          // is destroyed by undici on any failure; the client's socket is not.)
          if (req.signal?.aborted === true) throw req.signal.reason instanceof Error ? req.signal.reason : new ClientAbortError('client went away');
          if (clientGone(req.body)) throw new ClientAbortError('client aborted its request body');
          last = classifyOriginError(err, s.origin.base);
          errCounter.inc();
          errSeconds.observe((performance.now() - t0) / 1000);
          failedOnce(s, last);
        }
      }
      throw last ?? new OriginUnavailableError('no origin available');
    },
    health(): readonly OriginHealth[] {
      const t = now();
      return states.map((s) => ({
        url: s.origin.base,
        up: s.downUntil <= t,
        failures: s.failures,
        requests: s.requests,
        errors: s.errors,
      }));
    },
    async close(): Promise<void> {
      if (probeTimer) clearInterval(probeTimer);
      await Promise.all(states.map((s) => s.pool.close()));
    },
  };
}
