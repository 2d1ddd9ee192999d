// Header names and the rules for which response headers are stored, forwarded or stripped.

/** RFC 9110 §7.6.1: connection-specific headers, never forwarded or stored. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The Via the edge adds to what it sends an origin (RFC 9110 §7.6.3); the middleware recognises an edge's fill by it. */
export const EDGE_VIA = '1.1 edge-page-cache';

/** Tags for purge (Fastly/Varnish convention); the cache reads and removes it. */
export const SURROGATE_KEY = 'surrogate-key';
/**
 * Set by the middleware on responses it stores itself, so an edge in front does not write the same page
 * again. The edge strips it before delivering.
 */
export const STORED_BY_ORIGIN = 'x-edge-page-cache-stored';

/** The targeted cache-control fields the cache obeys and removes (the edge's own name is configurable: the default here). */
export const TARGETED_FIELDS: readonly string[] = ['cdn-cache-control', 'surrogate-control', 'edge-cache-control'];

/** Response headers that are never stored in an entry: per-connection, per-delivery, or private. */
const NOT_STORED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  'content-length', // set from the stored body on delivery
  'age', // computed on delivery
  'set-cookie', // never shared (responses with it are not stored at all)
  'x-cache',
  'cache-status',
  SURROGATE_KEY,
  STORED_BY_ORIGIN,
  // RFC 9213 targeted fields (and Surrogate-Control) are for this cache: obeyed at store time, never delivered.
  ...TARGETED_FIELDS,
]);

type HeaderValue = string | number | readonly string[] | undefined;

/** Names listed in a Connection header, lower-case: those are hop-by-hop too (RFC 9110 §7.6.1). */
export function connectionTokens(value: HeaderValue): Set<string> | undefined {
  if (value === undefined) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : String(value);
  const out = new Set<string>();
  for (const part of joined.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') out.add(t);
  }
  return out.size > 0 ? out : undefined;
}

/**
 * Headers a Connection header may not name (RFC 9110 §7.6.1: "a proxy ... MUST NOT" drop what the message
 * needs end to end): removing Host would change what the page is rendered for, removing Content-Length or
 * Transfer-Encoding would change where the message ends (a smuggling shape). Varnish answers such a
 * request 400, and so does the edge (recv).
 */
const NOT_HOP_BY_HOP: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding']);

/**
 * The first header a request's Connection names that cannot be hop-by-hop, or undefined. The common values
 * (`keep-alive`, `close`) are answered without splitting, so this costs nothing on most requests.
 */
export function connectionNamesEndToEnd(value: HeaderValue): string | undefined {
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  const tokens = connectionTokens(value);
  if (tokens === undefined) return undefined;
  for (const t of tokens) if (NOT_HOP_BY_HOP.has(t)) return t;
  return undefined;
}

/**
 * The flat [name, value, ...] list worth storing from a response's headers (names lower-case). A stored
 * body with a Content-Encoding always carries Vary: Accept-Encoding, since the cache serves it to clients
 * that accept the coding and decodes it for the others.
 */
export function storableHeaders(headers: Readonly<Record<string, HeaderValue>>, targetedField?: string): string[] {
  const extra = connectionTokens(headers['connection']);
  const out: string[] = [];
  let encoded = false;
  let varyAt = -1;
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (NOT_STORED.has(lower) || extra?.has(lower) || lower === targetedField) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (lower === 'content-encoding') encoded = true;
    if (lower === 'vary' && varyAt === -1) varyAt = out.length;
    // Vary is a list: one entry for all its lines, so whoever reads the entry's Vary sees every name.
    if (Array.isArray(value) && lower === 'vary') out.push(lower, (value as readonly string[]).join(', '));
    else if (Array.isArray(value)) for (const v of value as readonly string[]) out.push(lower, v);
    else out.push(lower, String(value));
  }
  if (encoded) {
    if (varyAt === -1) out.push('vary', 'Accept-Encoding');
    else if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(out[varyAt + 1]!)) out[varyAt + 1] = `${out[varyAt + 1]}, Accept-Encoding`;
  }
  return out;
}

/** A header as one string (lists joined with ', '), for parsing. */
export function headerString(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** Space- or comma-separated tags from a Surrogate-Key header, at most `max`, each at most 256 bytes. */
export function parseTags(value: HeaderValue, max = 64): string[] {
  const s = headerString(value);
  if (s === undefined) return [];
  const out: string[] = [];
  for (const t of s.split(/[\s,]+/)) {
    if (t === '' || t.length > 256 || out.includes(t)) continue;
    out.push(t);
    if (out.length >= max) break;
  }
  return out;
}

/** Parses a Cache-Control value into directives (lower-case names; value string or true). */
export function parseCacheControl(value: HeaderValue): Map<string, string | true> {
  const out = new Map<string, string | true>();
  const s = headerString(value);
  if (s === undefined) return out;
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    if (eq === -1) out.set(name, true);
    else out.set(name, part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

/** A delta-seconds directive value (RFC 9111 §1.2.2), or undefined if absent or malformed. */
export function deltaSeconds(cc: Map<string, string | true>, name: string): number | undefined {
  const v = cc.get(name);
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return undefined;
  return Math.min(Number(v), 2 ** 31 - 1);
}
