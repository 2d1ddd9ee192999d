// hash: the contract key for this request, md5(keyPrefix + $host + $request_uri).
import type { StepName, Transaction } from '../transaction';

export function hash(tx: Transaction): StepName {
  tx.key = tx.ctx.cache.keyFor(tx.host, tx.requestUri);
  return 'lookup';
}
