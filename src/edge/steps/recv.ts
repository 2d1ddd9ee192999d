// recv: validate and normalise the request (unknown hosts and foreign absolute-form targets are refused:
// no open proxy), then the shared request policy decides lookup or pass (src/core/request-policy.ts).
import { connectionNamesEndToEnd } from '../../core/headers';
import { decideRequest } from '../../core/request-policy';
import { normalizeHost, normalizeRequestUri, splitUrl } from '../../core/key';
import { keyVariant, matchRule } from '../../core/rules';
import type { IncomingMessage } from 'node:http';
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

/**
 * Whether a trusted proxy in front says the client spoke https: X-Forwarded-Proto (its first value, as
 * Express reads it) is believed only from a peer --trust-proxy names.
 */
function forwardedHttps(req: IncomingMessage, trusted: (addr: string, i: number) => boolean): boolean {
  const xfp = req.headers['x-forwarded-proto'];
  if (xfp === undefined || !trusted(req.socket.remoteAddress ?? '', 0)) return false;
  const v = Array.isArray(xfp) ? xfp[0]! : xfp;
  const comma = v.indexOf(',');
  return (comma < 0 ? v : v.slice(0, comma)).trim().toLowerCase() === 'https';
}

export function recv(tx: Transaction): StepName {
  const req = tx.req;
  const opts = tx.ctx.opts;
  const host = normalizeHost(req.headers.host);
  if (host === undefined) return refuse(tx, 400, 'Bad Request: missing or invalid Host header');
  if (hasTwoHosts(req.rawHeaders)) return refuse(tx, 400, 'Bad Request: more than one Host header');
  const named = connectionNamesEndToEnd(req.headers.connection);
  if (named !== undefined) return refuse(tx, 400, `Bad Request: Connection may not name ${named}`);
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
  if (opts.trustProxy !== undefined) tx.secure = forwardedHttps(req, opts.trustProxy);
  let request = opts.request;
  // Cache rules (src/core/rules.ts): one length check when there are none.
  if (opts.rules.length > 0) {
    const rule = matchRule(opts.rules, host, req.method, target, req.headers);
    if (rule !== undefined) {
      tx.rule = rule;
      // The normalised URI is what is hashed and what the origin gets (fetch and pass send tx.requestUri).
      if (rule.normalize !== undefined) target = normalizeRequestUri(target, rule.normalize);
      tx.requestUri = target;
      if (rule.bypass) return 'pass';
      request = rule.request;
      tx.keyVariant = keyVariant(rule, req.headers);
    }
  }
  tx.requestUri = target;

  // The edge serves plain HTTP (TLS ends in front of it); unkeyed headers are stripped from fills (forward.ts).
  if (decideRequest(request, req.method, req.headers, target, host, tx.secure) !== 'lookup') return 'pass';
  // Cookies that never change a page (analytics) are dropped from the fill request, so the page stays shared.
  if (req.headers.cookie !== undefined) tx.keepCookies = false;
  tx.cacheable = true;
  return 'hash';
}
