// Header shaping between client, edge and origin: hop-by-hop removed both ways (RFC 9110 §7.6.1),
// X-Forwarded-* set by the edge and never trusted from the client, and for cache fills the request
// made neutral (no conditionals, ranges, ignored cookies or Accept-Encoding) so the stored page suits everyone.
import type { IncomingHttpHeaders } from 'node:http';
import { connectionTokens, HOP_BY_HOP, STORED_BY_ORIGIN, SURROGATE_KEY } from '../core/headers';
import { CACHE_STATUS, X_CACHE } from '../core/status';
import type { Transaction } from './transaction';

const FORWARDED: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'via']);
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
]);
/** Response headers the edge removes: its own, the tags, and the origin middleware's marks. */
const STRIPPED_RESPONSE: ReadonlySet<string> = new Set([...HOP_BY_HOP, SURROGATE_KEY, STORED_BY_ORIGIN, X_CACHE, CACHE_STATUS]);
const VIA = '1.1 edge-page-cache';

/** The request headers sent to the origin, as a flat list (rawHeaders keeps order, case and repeats). */
export function originRequestHeaders(tx: Transaction, fill: boolean): string[] {
  const raw = tx.req.rawHeaders;
  const extra = connectionTokens(tx.req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || FORWARDED.has(lower) || extra?.has(lower)) continue;
    if (fill && NOT_FOR_FILL.has(lower)) continue;
    if (lower === 'cookie' && !tx.keepCookies) continue;
    out.push(name, raw[i + 1]!);
  }
  const remote = tx.req.socket.remoteAddress ?? '';
  out.push('x-forwarded-for', remote, 'x-forwarded-proto', 'http', 'x-forwarded-host', tx.req.headers.host ?? '', 'via', VIA);
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
