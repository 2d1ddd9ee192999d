// pass: everything not looked up (other methods, credentials, session cookies) goes to the origin as is,
// bodies streamed both ways with back-pressure, never stored. Bodiless idempotent requests may be retried
// on another origin; a request with a body never is (it has been consumed).
import { OriginTimeoutError } from '../../core/errors';
import { originRequestHeaders } from '../forward';
import type { StepName, Transaction } from '../transaction';
import { invalidateAfterUnsafe } from './store';
import { streamResponse } from './stream';

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

function hasBody(tx: Transaction): boolean {
  const h = tx.req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

function passFailed(tx: Transaction, err: unknown): StepName {
  tx.synthCode = err instanceof OriginTimeoutError ? 504 : 502;
  tx.synthMessage = err instanceof OriginTimeoutError ? 'Gateway Timeout: the origin did not answer in time' : 'Bad Gateway: the origin could not be reached';
  return 'synth';
}

export function pass(tx: Transaction): Promise<StepName> {
  if (!tx.cacheable) tx.status = 'BYPASS';
  const method = tx.req.method ?? 'GET';
  const body = hasBody(tx);
  const t0 = performance.now();
  return tx.ctx.origins
    .request({
      method,
      path: tx.requestUri,
      headers: originRequestHeaders(tx, false),
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
