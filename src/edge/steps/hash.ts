// hash: the contract key for this request, md5(keyPrefix + $host + $request_uri) (its https variant for
// requests a trusted proxy says came over https).
import type { StepName, Transaction } from '../transaction';

export function hash(tx: Transaction): StepName {
  // A rule's device class goes after the request_uri ('#device=...', which no request_uri holds).
  const uri = tx.keyVariant === '' ? tx.requestUri : tx.requestUri + tx.keyVariant;
  // A page rendered for https (behind a trusted TLS proxy, --trust-proxy) is kept apart from the http one:
  // an http:// redirect or canonical link is never served to an https client.
  tx.key = tx.secure ? tx.ctx.cache.secureKeyFor(tx.host, uri) : tx.ctx.cache.keyFor(tx.host, uri);
  return 'lookup';
}
