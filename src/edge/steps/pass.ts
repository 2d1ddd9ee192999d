// pass: everything not looked up (other methods, credentials, session cookies) goes to the origin as is,
// bodies streamed both ways with back-pressure, never stored. Bodiless idempotent requests may be retried
// on another origin; a request with a body never is (it has been consumed).
import { ClientAbortError, ClientTimeoutError } from '../../core/errors';
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

/**
 * Ties a pass's origin request to its client: aborted when the client goes away before its response is
 * done (nothing else would stop it), and, for a request with a body, when the whole body has not arrived
 * within --client-body-timeout of its head (a 10 bytes/s upload must not hold an origin connection).
 * Per pass, never on the hit path.
 */
class ClientGuard {
  readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tx: Transaction,
    withBody: boolean,
  ) {
    tx.res.once('close', this.onClose);
    if (withBody) {
      this.timer = setTimeout(this.onBodyTimeout, tx.ctx.opts.clientBodyTimeoutMs);
      tx.req.once('end', this.onBodyDone);
    }
  }

  private readonly onClose = (): void => {
    this.onBodyDone();
    if (!this.tx.res.writableFinished) this.controller.abort(new ClientAbortError('client went away'));
  };

  private readonly onBodyDone = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  };

  private readonly onBodyTimeout = (): void => {
    this.timer = undefined;
    this.controller.abort(new ClientTimeoutError(`request body not received within ${this.tx.ctx.opts.clientBodyTimeoutMs} ms`));
  };
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
  const guard = new ClientGuard(tx, body);
  return tx.ctx.origins
    .request({
      method,
      path: tx.requestUri,
      headers,
      body: body ? tx.req : null,
      retryable: !body && IDEMPOTENT.has(method),
      signal: guard.controller.signal,
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
