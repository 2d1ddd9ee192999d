// synth: responses the edge makes itself (400, 421, 502, 504, 500): short text, never cached.
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
  if (tx.synthCode === 400 || tx.synthCode === 421) headers.push('connection', 'close');
  res.writeHead(tx.synthCode, headers);
  if (tx.req.method === 'HEAD') res.end();
  else res.end(body);
  return 'done';
}
