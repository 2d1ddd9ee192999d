// The contract cache key: md5hex(keyPrefix + host + requestUri), byte for byte what nginx computes from
// `set_md5 $memcached_key "$host$request_uri"`. Host normalisation mirrors nginx's ngx_http_validate_host.
import { hash } from 'node:crypto';

const DOT = 0x2e;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const UPPER_A = 0x41;
const UPPER_Z = 0x5a;

/**
 * Normalises a Host header the way nginx fills `$host`: lower-cased, port stripped, one trailing dot
 * dropped, IPv6 literals kept with their brackets. Returns undefined for a host nginx would answer with
 * 400 (empty, `..`, a path separator, whitespace or control bytes), so it is never used as a key.
 * A charCode scan, not a regex: this runs on every request.
 */
export function normalizeHost(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const len = raw.length;
  let dotPos = -2;
  let hostLen = len;
  let state = 0; // 0 usual, 1 inside [literal], 2 rest (port)
  let upper = false;
  for (let i = 0; i < len; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === DOT) {
      if (dotPos === i - 1) return undefined;
      dotPos = i;
    } else if (ch === COLON) {
      if (state === 0) {
        hostLen = i;
        state = 2;
      }
    } else if (ch === LBRACKET) {
      if (i === 0) state = 1;
    } else if (ch === RBRACKET) {
      if (state === 1) {
        hostLen = i + 1;
        state = 2;
      }
    } else if (ch === SLASH || ch === BACKSLASH || ch <= 0x20 || ch >= 0x7f) {
      return undefined;
    } else if (ch >= UPPER_A && ch <= UPPER_Z) {
      upper = true;
    }
  }
  if (state === 1) return undefined; // an unterminated IPv6 literal
  if (dotPos === hostLen - 1) hostLen--;
  if (hostLen <= 0) return undefined;
  const host = hostLen === len ? raw : raw.slice(0, hostLen);
  return upper ? host.toLowerCase() : host;
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

export function createKeyFunction(keyPrefix: string, maxEntries = 10_000): (host: string, requestUri: string) => string {
  let byHost = new Map<string, Map<string, string>>();
  let size = 0;
  return function keyFor(host: string, requestUri: string): string {
    // Only short inputs are kept, so the memo stays small (maxEntries x MEMO_INPUT_MAX) whatever URLs come.
    if (host.length + requestUri.length > MEMO_INPUT_MAX) return hash('md5', keyPrefix + host + requestUri, 'hex');
    let uris = byHost.get(host);
    let key = uris?.get(requestUri);
    if (key !== undefined) return key;
    key = hash('md5', keyPrefix + host + requestUri, 'hex');
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
