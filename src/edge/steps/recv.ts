// recv: validate and normalise the request, then decide lookup (cacheable), pass, or synth (refused).
// Conservative by default, as Varnish: credentials and cookies pass, unknown hosts and foreign
// absolute-form targets are refused (no open proxy).
import { onlyIgnoredCookies } from '../../core/cookies';
import { normalizeHost, splitUrl } from '../../core/key';
import type { StepName, Transaction } from '../transaction';

const SLASH = 0x2f;

function refuse(tx: Transaction, code: number, message: string): StepName {
  tx.synthCode = code;
  tx.synthMessage = message;
  tx.status = 'BYPASS';
  return 'synth';
}

/** 'host' in any case, without building a lower-cased copy. */
function isHost(name: string): boolean {
  return (
    (name.charCodeAt(0) | 0x20) === 0x68 &&
    (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 &&
    (name.charCodeAt(3) | 0x20) === 0x74
  );
}

/**
 * RFC 9112 §3.2: a request with more than one Host is answered 400 (Node keeps the first). A length test
 * before the case-insensitive compare keeps this scan cheap on every request.
 */
function hasTwoHosts(raw: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && isHost(name)) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

export function recv(tx: Transaction): StepName {
  const req = tx.req;
  const opts = tx.ctx.opts;
  const host = normalizeHost(req.headers.host);
  if (host === undefined) return refuse(tx, 400, 'Bad Request: missing or invalid Host header');
  if (hasTwoHosts(req.rawHeaders)) return refuse(tx, 400, 'Bad Request: more than one Host header');
  let target = req.url ?? '';
  if (target.charCodeAt(0) !== SLASH) {
    // RFC 9112 §3.2.2: absolute-form. Accept it only for the Host this request names; anything else
    // would make the edge an open proxy.
    const parts = splitUrl(target);
    if (parts === undefined) return refuse(tx, 400, 'Bad Request: unsupported request target');
    if (parts.host !== host) return refuse(tx, 400, 'Bad Request: absolute-form target for another host is not proxied');
    target = parts.requestUri;
  }
  if (opts.hosts !== undefined && !opts.hosts.has(host)) return refuse(tx, 421, 'Misdirected Request: this edge does not serve that host');
  tx.host = host;
  tx.requestUri = target;

  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD') return 'pass';
  // RFC 9111 §3.5: a shared cache does not reuse responses to requests with credentials; we never store them.
  if (req.headers.authorization !== undefined) return 'pass';
  const cookie = req.headers.cookie;
  if (cookie !== undefined) {
    // A session cookie may change the page: pass, as Varnish's builtin VCL does. Cookies that never
    // change a page (analytics) are dropped from the fill request instead, so the page stays shared.
    if (!onlyIgnoredCookies(cookie, opts.ignoreCookies)) return 'pass';
    tx.keepCookies = false;
  }
  tx.cacheable = true;
  return 'hash';
}
