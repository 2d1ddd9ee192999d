// synth: responses the edge makes itself (400, 421, 502, 504, 500): short text, never cached.
import { BadRequestError, ClientAbortError, ClientTimeoutError, OriginBusyError, OriginTimeoutError } from '../../core/errors';
import { CACHE_STATUS, CACHE_STATUS_HEADER, X_CACHE } from '../../core/status';
import type { StepName, Transaction } from '../transaction';

/** Headers every synthetic page carries (helmet's defaults that matter for a text page). */
const SECURITY_HEADERS = ['x-content-type-options', 'nosniff', 'x-frame-options', 'SAMEORIGIN', 'referrer-policy', 'no-referrer'];

export function synth(tx: Transaction): StepName {
  const res = tx.res;
  if (res.headersSent) {
    // Nothing can be reported once the head is out: cut the connection so the client sees a failure.
    res.destroy();
    return 'done';
  }
  const body = Buffer.from(`${tx.synthCode} ${tx.synthMessage}\n`);
  const headers = [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(body.length),
    'cache-control', 'no-store',
    X_CACHE, tx.status,
    CACHE_STATUS, CACHE_STATUS_HEADER[tx.status],
    ...SECURITY_HEADERS,
  ];
  if (tx.synthCode === 400 || tx.synthCode === 421 || tx.synthCode === 408) headers.push('connection', 'close');
  if (tx.synthCode === 503) headers.push('retry-after', '1');
  res.writeHead(tx.synthCode, headers);
  if (tx.req.method === 'HEAD') res.end();
  else res.end(body);
  return 'done';
}

/**
 * What an origin request's failure becomes: 400 for a request we cannot forward, nothing for a client
 * that went away, 408 for a body sent too slowly, 503 when the origin's queue is full, 504 for a timeout
 * (nginx's word for it), 502 for the rest.
 */
export function originFailed(tx: Transaction, err: unknown): StepName {
  if (err instanceof ClientAbortError) {
    tx.res.destroy();
    return 'done';
  }
  if (err instanceof ClientTimeoutError) {
    tx.synthCode = 408;
    tx.synthMessage = 'Request Timeout: the request body did not arrive in time';
    tx.status = 'BYPASS';
    return 'synth';
  }
  if (err instanceof OriginBusyError) {
    tx.synthCode = 503;
    tx.synthMessage = 'Service Unavailable: the origin is busy, retry shortly';
    return 'synth';
  }
  if (err instanceof BadRequestError) {
    tx.synthCode = 400;
    tx.synthMessage = 'Bad Request: the request cannot be forwarded as it is';
    tx.status = 'BYPASS';
    return 'synth';
  }
  const timeout = err instanceof OriginTimeoutError;
  tx.synthCode = timeout ? 504 : 502;
  tx.synthMessage = timeout ? 'Gateway Timeout: the origin did not answer in time' : 'Bad Gateway: the origin could not be reached';
  return 'synth';
}
