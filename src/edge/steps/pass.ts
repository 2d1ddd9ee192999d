// pass: everything not looked up (other methods, credentials, session cookies) goes to the origin as is,
// bodies streamed both ways with back-pressure, never stored. Bodiless idempotent requests may be retried
// on another origin; a request with a body never is (it has been consumed).
import { originRequestHeaders } from '../forward';
import type { StepName, Transaction } from '../transaction';
import { invalidateAfterUnsafe } from '../store';
import { streamResponse } from '../stream';
import { originFailed } from './synth';

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

function hasBody(tx: Transaction): boolean {
  const h = tx.req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

function passFailed(tx: Transaction, err: unknown): StepName {
  return originFailed(tx, err);
}

export function pass(tx: Transaction): StepName | Promise<StepName> {
  if (!tx.cacheable) tx.status = 'BYPASS';
  const method = tx.req.method ?? 'GET';
  const body = hasBody(tx);
  const t0 = performance.now();
  let headers: string[];
  try {
    headers = originRequestHeaders(tx, false);
  } catch (err) {
    return originFailed(tx, err);
  }
  return tx.ctx.origins
    .request({
      method,
      path: tx.requestUri,
      headers,
      body: body ? tx.req : null,
      retryable: !body && IDEMPOTENT.has(method),
    })
    .then(
      (response): StepName => {
        tx.originMs = performance.now() - t0;
        invalidateAfterUnsafe(tx, response.statusCode, response.headers);
        streamResponse(tx, response, []);
        return 'done';
      },
      (err: unknown) => passFailed(tx, err),
    );
}
