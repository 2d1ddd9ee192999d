// Header shaping between client, edge and origin: hop-by-hop removed both ways (RFC 9110 §7.6.1),
// Host and X-Forwarded-* set by the edge and never taken from the client, and for cache fills the request
// made neutral (no conditionals, ranges, ignored cookies, Accept-Encoding, or the override headers some
// frameworks honour) so the stored page is what every client of that key should get.
import type { IncomingHttpHeaders } from 'node:http';
import proxyaddr from 'proxy-addr';
import { BadRequestError } from '../core/errors';
import { connectionTokens, EDGE_VIA, HOP_BY_HOP, STORED_BY_ORIGIN, SURROGATE_KEY, TARGETED_FIELDS } from '../core/headers';
import { UNKEYED_OVERRIDES } from '../core/request-policy';
import { DEVICE_CLASS_HEADER, deviceClass } from '../core/rules';
import { CACHE_STATUS, X_CACHE } from '../core/status';
import type { Transaction } from './transaction';

/** Set by the edge itself (Host as the key's $host; X-Forwarded-*), so never copied from the client. */
const SET_BY_EDGE: ReadonlySet<string> = new Set(['host', 'forwarded', 'via']);
/** Dropped on fills: the unkeyed overrides frameworks render from (forwarding one would let one client poison a shared page). */
const OVERRIDES: ReadonlySet<string> = new Set(UNKEYED_OVERRIDES);
/** Request headers dropped when fetching a page to store: the stored answer must not depend on them. */
const NOT_FOR_FILL: ReadonlySet<string> = new Set([
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
  'accept-encoding',
  'cache-control',
  'pragma',
  // Node answered any 100-continue already; undici refuses to send Expect.
  'expect',
]);
/** Response headers the edge removes: its own, the tags, and the origin middleware's marks. */
const STRIPPED_RESPONSE: ReadonlySet<string> = new Set([...HOP_BY_HOP, SURROGATE_KEY, STORED_BY_ORIGIN, X_CACHE, CACHE_STATUS, ...TARGETED_FIELDS]);

/**
 * X-Forwarded-For for the origin: the peer alone, or with --trust-proxy the client chain as far as trusted
 * hops vouch for it (proxy-addr's walk from the peer back: every trusted hop and the first untrusted one,
 * which is the client), oldest first as the header lists them.
 */
function forwardedFor(tx: Transaction): string {
  const trust = tx.ctx.opts.trustProxy;
  const peer = tx.req.socket.remoteAddress ?? '';
  if (trust === undefined || tx.req.headers['x-forwarded-for'] === undefined) return peer;
  return proxyaddr.all(tx.req, trust).reverse().join(', ');
}

/**
 * The request headers sent to the origin, as a flat list (rawHeaders keeps order, case and repeats).
 * Host goes out as the normalised $host the page is keyed by (nginx's `proxy_set_header Host $host`), so
 * no Host spelling (a port, upper case, a trailing dot) can make the origin render something else for the
 * same key; a Connection header cannot remove it either.
 */
export function originRequestHeaders(tx: Transaction, fill: boolean): string[] {
  const raw = tx.req.rawHeaders;
  const extra = connectionTokens(tx.req.headers.connection);
  const out: string[] = ['host', tx.host];
  let hosts = 0;
  // A device-class rule keys the page by class: the origin gets the class, never the raw User-Agent or client hints.
  const byDevice = tx.rule !== undefined && tx.rule.deviceClass;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host') hosts++;
    if (HOP_BY_HOP.has(lower) || SET_BY_EDGE.has(lower) || lower.startsWith('x-forwarded-') || extra?.has(lower)) continue;
    if (lower === 'expect') continue;
    if (fill && (NOT_FOR_FILL.has(lower) || OVERRIDES.has(lower))) continue;
    if (lower === 'cookie' && !tx.keepCookies) continue;
    if (byDevice && (lower === 'user-agent' || lower === DEVICE_CLASS_HEADER || lower.startsWith('sec-ch-ua'))) continue;
    out.push(name, raw[i + 1]!);
  }
  if (byDevice) out.push(DEVICE_CLASS_HEADER, deviceClass(tx.req.headers));
  // RFC 9112 §3.2: a request with more than one Host is answered 400.
  if (hosts > 1) throw new BadRequestError('more than one Host header');
  out.push('x-forwarded-for', forwardedFor(tx), 'x-forwarded-proto', tx.secure ? 'https' : 'http', 'x-forwarded-host', tx.host, 'via', EDGE_VIA);
  return out;
}

/** The origin's response headers as a flat list for the client, without hop-by-hop and edge-internal ones. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): string[] {
  const extra = connectionTokens(headers.connection);
  const out: string[] = [];
  for (const name of Object.keys(headers)) {
    if (STRIPPED_RESPONSE.has(name) || extra?.has(name)) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) out.push(name, item);
    else out.push(name, v);
  }
  return out;
}
