// The contract cache key: md5hex(keyPrefix + host + requestUri), byte for byte what nginx computes from
// `set_md5 $memcached_key "$host$request_uri"`. Host normalisation mirrors nginx's ngx_http_validate_host.
import { hash } from 'node:crypto';

const DOT = 0x2e;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const PERCENT = 0x25;
const SLASH = 0x2f;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const UPPER_A = 0x41;
const UPPER_Z = 0x5a;

/** What a byte may be in a Host: bit 1 a reg-name byte (RFC 3986 unreserved and sub-delims), bit 2 a hex digit. */
const REG_NAME = 1;
const HEX = 2;
const HOST_BYTES = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=") HOST_BYTES[ch.charCodeAt(0)] = REG_NAME;
for (const ch of '0123456789abcdefABCDEF') HOST_BYTES[ch.charCodeAt(0)] = REG_NAME | HEX;

function isHex(ch: number): boolean {
  return ch < 128 && (HOST_BYTES[ch]! & HEX) !== 0;
}

/**
 * Normalises a Host header the way nginx fills `$host`: lower-cased, port stripped, one trailing dot
 * dropped, IPv6 literals kept with their brackets. Returns undefined (the request gets 400 and is never
 * keyed) for anything RFC 3986 does not allow as `host [ ":" port ]`, which is stricter than nginx: empty,
 * `..`, a byte outside reg-name (userinfo's `@`, a path separator, whitespace, control or non-ASCII bytes),
 * a bad `%` escape, an IP literal with other than hex digits, `:` and `.`, or a port that is not 1-65535
 * (an empty port, `host:`, is allowed as RFC 3986 allows it).
 * A charCode scan over a table, not a regex: this runs on every request.
 */
export function normalizeHost(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const len = raw.length;
  let dotPos = -2;
  let hostLen = len;
  /** Where ':' port starts (len: no port). */
  let portAt = len;
  let upper = false;
  let i = 0;
  if (len > 0 && raw.charCodeAt(0) === LBRACKET) {
    // IP-literal: hex digits, ':' and '.' up to ']', then the end or ':' port.
    for (i = 1; i < len; i++) {
      const ch = raw.charCodeAt(i);
      if (ch === RBRACKET) break;
      if (ch !== COLON && ch !== DOT && !isHex(ch)) return undefined;
      if (ch >= UPPER_A && ch <= UPPER_Z) upper = true;
    }
    if (i >= len || i === 1) return undefined; // unterminated, or empty
    hostLen = i + 1;
    portAt = hostLen;
    if (portAt < len && raw.charCodeAt(portAt) !== COLON) return undefined;
  } else {
    for (; i < len; i++) {
      const ch = raw.charCodeAt(i);
      if (ch === COLON) {
        hostLen = portAt = i;
        break;
      }
      if (ch === DOT) {
        if (dotPos === i - 1) return undefined;
        dotPos = i;
      } else if (ch === PERCENT) {
        if (!isHex(raw.charCodeAt(i + 1)) || !isHex(raw.charCodeAt(i + 2))) return undefined;
      } else if (ch >= 128 || (HOST_BYTES[ch]! & REG_NAME) === 0) {
        return undefined;
      } else if (ch >= UPPER_A && ch <= UPPER_Z) {
        upper = true;
      }
    }
    if (dotPos === hostLen - 1) hostLen--;
  }
  if (portAt < len) {
    // ':' port: digits only, 1-65535 (or none at all).
    const digits = len - portAt - 1;
    if (digits > 5) return undefined;
    let port = 0;
    for (let j = portAt + 1; j < len; j++) {
      const ch = raw.charCodeAt(j);
      if (ch < DIGIT_0 || ch > DIGIT_9) return undefined;
      port = port * 10 + (ch - DIGIT_0);
    }
    if (digits > 0 && (port === 0 || port > 65535)) return undefined;
  }
  if (hostLen <= 0) return undefined;
  const host = hostLen === len ? raw : raw.slice(0, hostLen);
  return upper ? host.toLowerCase() : host;
}

/**
 * The key of the page rendered for `https` (behind a trusted TLS-terminating proxy), derived from the
 * contract key of the same URL: md5('https\0' + key). The plain key stays nginx's (nginx behind TLS
 * termination renders for http), and a purge of a URL reaches both from the one key it computes.
 */
export function httpsVariantKey(key: string): string {
  return hash('md5', `https\0${key}`, 'hex');
}

/** md5 hex of prefix + host + requestUri; host must already be normalised, requestUri raw as received. */
export function cacheKey(keyPrefix: string, host: string, requestUri: string): string {
  return hash('md5', keyPrefix + host + requestUri, 'hex');
}

/**
 * cacheKey with a bounded memo of recent inputs: a hot page's hits skip the md5 (a string Map lookup is a
 * fraction of its cost). The memo is by host, then by request_uri, so a lookup never builds (and flattens)
 * the joined string; it is dropped whole when it holds maxEntries keys, so random URLs cannot grow it.
 */
const MEMO_INPUT_MAX = 512;

export function createKeyFunction(
  keyPrefix: string,
  maxEntries = 10_000,
  /** Applied to the contract key before it is memoised (httpsVariantKey: the https page's key). */
  derive?: (key: string) => string,
): (host: string, requestUri: string) => string {
  let byHost = new Map<string, Map<string, string>>();
  let size = 0;
  function compute(host: string, requestUri: string): string {
    const key = hash('md5', keyPrefix + host + requestUri, 'hex');
    return derive === undefined ? key : derive(key);
  }
  return function keyFor(host: string, requestUri: string): string {
    // Only short inputs are kept, so the memo stays small (maxEntries x MEMO_INPUT_MAX) whatever URLs come.
    if (host.length + requestUri.length > MEMO_INPUT_MAX) return compute(host, requestUri);
    let uris = byHost.get(host);
    let key = uris?.get(requestUri);
    if (key !== undefined) return key;
    key = compute(host, requestUri);
    if (size >= maxEntries) {
      byHost = new Map();
      uris = undefined;
      size = 0;
    }
    if (uris === undefined) {
      uris = new Map();
      byHost.set(host, uris);
    }
    uris.set(requestUri, key);
    size++;
    return key;
  };
}

/**
 * The key for a full URL (for purge and warm): host from the URL's authority as written (lower-cased,
 * port dropped), request_uri as path plus query exactly as given in the string, not re-encoded.
 */
export function keyForUrl(keyPrefix: string, url: string): string | undefined {
  const parts = splitUrl(url);
  if (parts === undefined) return undefined;
  return cacheKey(keyPrefix, parts.host, parts.requestUri);
}

const SCHEME = /^https?:\/\//i;

/** Splits an absolute http(s) URL into nginx's $host and $request_uri without re-encoding anything. */
export function splitUrl(url: string): { host: string; requestUri: string } | undefined {
  const m = SCHEME.exec(url);
  if (!m) return undefined;
  const rest = url.slice(m[0].length);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === SLASH || c === 0x3f /* ? */ || c === 0x23 /* # */) {
      end = i;
      break;
    }
  }
  const authority = rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  const host = normalizeHost(at >= 0 ? authority.slice(at + 1) : authority);
  if (host === undefined) return undefined;
  let requestUri = rest.slice(end);
  const hashAt = requestUri.indexOf('#');
  if (hashAt >= 0) requestUri = requestUri.slice(0, hashAt);
  if (requestUri === '' || requestUri.charCodeAt(0) === 0x3f) requestUri = '/' + requestUri;
  return { host, requestUri };
}

/** Query parameters a rule drops from the key: exact names, and 'prefix*' patterns (`utm_*`). */
export interface DroppedParams {
  readonly names: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

/** How a rule rewrites a request_uri before it is hashed and sent to the origin (opt-in: nginx cannot do it). */
export interface UriNormalization {
  readonly drop: DroppedParams;
  readonly sortParams: boolean;
  readonly lowercasePath: boolean;
}

function paramName(pair: string): string {
  const eq = pair.indexOf('=');
  return eq === -1 ? pair : pair.slice(0, eq);
}

function byName(a: string, b: string): number {
  const x = paramName(a);
  const y = paramName(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function dropped(drop: DroppedParams, pair: string): boolean {
  const eq = pair.indexOf('=');
  // A listed parameter with an empty value is kept: `?ref=` can mean something to the page.
  if (eq === -1 || eq === pair.length - 1) return false;
  const name = pair.slice(0, eq);
  if (drop.names.has(name)) return true;
  for (let i = 0; i < drop.prefixes.length; i++) if (name.startsWith(drop.prefixes[i]!)) return true;
  return false;
}

/**
 * The request_uri a normalising rule keys and fetches: listed parameters with a value dropped, the rest in
 * byte order of their names if sortParams (a stable sort: repeated names keep their order, `a=2&a=1` stays),
 * the path lower-cased if lowercasePath. Nothing is decoded or re-encoded; a query left empty is removed.
 */
export function normalizeRequestUri(requestUri: string, n: UriNormalization): string {
  const q = requestUri.indexOf('?');
  let path = q === -1 ? requestUri : requestUri.slice(0, q);
  if (n.lowercasePath) path = path.toLowerCase();
  if (q === -1) return path;
  let pairs = requestUri.slice(q + 1).split('&').filter((p) => p !== '' && !dropped(n.drop, p));
  if (n.sortParams) pairs = pairs.sort(byName);
  return pairs.length === 0 ? path : `${path}?${pairs.join('&')}`;
}
