// The one request policy of both front doors: which requests are looked up and which pass (method,
// credentials, cookies, bypassed paths, unkeyed headers), and which URIs an unsafe request invalidates.
// Pure and allocation-free on the request path; host validation and framing stay with the HTTP server.
import type { IncomingHttpHeaders } from 'node:http';
import { DEFAULT_IGNORED_COOKIES, hasAnyCookie, ignoredCookies, onlyIgnoredCookies } from './cookies';
import type { IgnoredCookies } from './cookies';
import { ConfigError } from './errors';
import { normalizeHost, splitUrl } from './key';
import { describe, stringList } from './options';

/** Methods the cache can answer; everything else always goes to the origin (RFC 9111 §3: only GET is stored). */
export type CacheableMethod = 'GET' | 'HEAD';

/** The request-policy options, as both doors take them (the edge exposes ignoreCookies only). */
export interface RequestPolicyOptions {
  readonly methods?: readonly CacheableMethod[];
  readonly bypassCookies?: readonly string[] | 'all';
  readonly ignoreCookies?: readonly string[];
  readonly bypassPaths?: readonly (string | RegExp)[];
}

export interface ResolvedRequestPolicy {
  readonly cacheGet: boolean;
  readonly cacheHead: boolean;
  /** Every cookie not in ignoreCookies makes a request private ('all'); else only those in bypassCookies. */
  readonly bypassAnyCookie: boolean;
  readonly bypassCookies: readonly string[];
  readonly ignoreCookies: IgnoredCookies;
  readonly bypassPathPrefixes: readonly string[];
  readonly bypassPathPatterns: readonly RegExp[];
  /**
   * What to do with headers a renderer may read but the key does not hold (UNKEYED_OVERRIDES and the
   * forwarding headers). 'strip': the door removes or sets them itself on what the origin sees (the edge
   * builds the origin request). 'bypass': the renderer sees the request as it came (the middleware runs
   * inside the app), so a request carrying them other than the request itself implies is not cached.
   */
  readonly unkeyedHeaders: 'strip' | 'bypass';
}

/** Why a request is not looked up; the same words in both doors. */
export type PassReason = 'method' | 'authorization' | 'body' | 'cookie' | 'path' | 'unkeyed-header';
export type RequestVerdict = 'lookup' | PassReason;

/**
 * Request headers frameworks read to change the URL, method or host they render for (Symfony, Laravel,
 * Spring, IIS rewrite, Express method-override): never part of the key, so never trusted for a shared page.
 */
export const UNKEYED_OVERRIDES: readonly string[] = [
  'x-original-url',
  'x-rewrite-url',
  'x-http-method',
  'x-http-method-override',
  'x-method-override',
  'x-host',
];

/**
 * Forwarding headers an app reads with Express's `trust proxy` (req.hostname, req.protocol, ports and
 * prefixes in redirects and canonical links). An edge in front always sends some, with the values the
 * request itself implies; any other value could store an `http://` redirect or another host's links.
 */
export const FORWARDING_HEADERS: readonly string[] = ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'forwarded'];

function first(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0];
}

function sameText(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/** The port the request itself implies: Host's own, else the scheme's default. */
function impliedPort(hostHeader: string | undefined, secure: boolean): string {
  if (hostHeader !== undefined) {
    const close = hostHeader.lastIndexOf(']');
    const colon = hostHeader.lastIndexOf(':');
    if (colon > close && colon < hostHeader.length - 1) return hostHeader.slice(colon + 1);
  }
  return secure ? '443' : '80';
}

/** RFC 7239 Forwarded: every host= must be this host and every proto= this scheme (for= and by= are addresses). */
function forwardedAgrees(value: string, host: string, proto: string): boolean {
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1) continue;
      const name = pair.slice(0, eq).trim().toLowerCase();
      let v = pair.slice(eq + 1).trim();
      if (v.length >= 2 && v.charCodeAt(0) === 0x22 && v.charCodeAt(v.length - 1) === 0x22) v = v.slice(1, -1);
      if (name === 'host' && normalizeHost(v) !== host) return false;
      if (name === 'proto' && !sameText(v, proto)) return false;
    }
  }
  return true;
}

/**
 * True when the request carries an unkeyed override, or a forwarding header whose value differs from what
 * the request itself implies (its Host, the connection's scheme, Host's port, no prefix). Looks only at
 * headers that are present, so a request with none of them costs a few property reads.
 */
export function hasUnkeyedOverride(headers: IncomingHttpHeaders, host: string, secure: boolean): boolean {
  for (let i = 0; i < UNKEYED_OVERRIDES.length; i++) if (headers[UNKEYED_OVERRIDES[i]!] !== undefined) return true;
  const xfh = first(headers['x-forwarded-host']);
  if (xfh !== undefined && normalizeHost(xfh) !== host) return true;
  const proto = secure ? 'https' : 'http';
  const xfp = first(headers['x-forwarded-proto']);
  if (xfp !== undefined && !sameText(xfp.trim(), proto)) return true;
  const xfport = first(headers['x-forwarded-port']);
  if (xfport !== undefined && xfport.trim() !== impliedPort(headers.host, secure)) return true;
  const prefix = first(headers['x-forwarded-prefix']);
  if (prefix !== undefined && prefix !== '' && prefix !== '/') return true;
  const fwd = first(headers['forwarded']);
  return fwd !== undefined && !forwardedAgrees(fwd, host, proto);
}

function isBypassedPath(policy: ResolvedRequestPolicy, target: string): boolean {
  const prefixes = policy.bypassPathPrefixes;
  for (let i = 0; i < prefixes.length; i++) if (target.startsWith(prefixes[i]!)) return true;
  const patterns = policy.bypassPathPatterns;
  for (let i = 0; i < patterns.length; i++) if (patterns[i]!.test(target)) return true;
  return false;
}

/**
 * Lookup or pass, conservatively (as Varnish's builtin VCL), for a request whose Host is valid:
 * - RFC 9111 §3: only GET (and HEAD, answered from a stored GET) are looked up;
 * - RFC 9111 §3.5: a request with Authorization is never served from nor stored in the shared cache;
 * - a GET or HEAD with a body (a "fat GET", RFC 9110 §9.3.1: a body has no defined meaning there, yet some
 *   frameworks read it) may render something the key does not say: passed whole, never stored;
 * - a cookie that may be a session (any not ignored, or one of bypassCookies) makes the page private;
 * - bypassed paths; and, where the renderer sees the request as it came, unkeyed overrides.
 * A request whose cookies are all ignored is looked up; the door must then not let them reach a fill.
 */
export function decideRequest(policy: ResolvedRequestPolicy, method: string | undefined, headers: IncomingHttpHeaders, target: string, host: string, secure: boolean): RequestVerdict {
  if (method === 'GET' ? !policy.cacheGet : method !== 'HEAD' || !policy.cacheHead) return 'method';
  if (headers.authorization !== undefined) return 'authorization';
  if (headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')) return 'body';
  const cookie = headers.cookie;
  if (cookie !== undefined && (policy.bypassAnyCookie ? !onlyIgnoredCookies(cookie, policy.ignoreCookies) : hasAnyCookie(cookie, policy.bypassCookies))) {
    return 'cookie';
  }
  if (policy.unkeyedHeaders === 'bypass' && hasUnkeyedOverride(headers, host, secure)) return 'unkeyed-header';
  if (isBypassedPath(policy, target)) return 'path';
  return 'lookup';
}

/**
 * Every reason decideRequest would pass this request, in its order (it stops at the first): what
 * `edge-page-cache explain` shows. Empty: looked up. Not for the request path (it allocates).
 */
export function passReasons(policy: ResolvedRequestPolicy, method: string | undefined, headers: IncomingHttpHeaders, target: string, host: string, secure: boolean): PassReason[] {
  const all: PassReason[] = [];
  if (method === 'GET' ? !policy.cacheGet : method !== 'HEAD' || !policy.cacheHead) all.push('method');
  if (headers.authorization !== undefined) all.push('authorization');
  if (headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')) all.push('body');
  const cookie = headers.cookie;
  if (cookie !== undefined && (policy.bypassAnyCookie ? !onlyIgnoredCookies(cookie, policy.ignoreCookies) : hasAnyCookie(cookie, policy.bypassCookies))) all.push('cookie');
  if (policy.unkeyedHeaders === 'bypass' && hasUnkeyedOverride(headers, host, secure)) all.push('unkeyed-header');
  if (isBypassedPath(policy, target)) all.push('path');
  return all;
}

/** No cookie of this request reaches the page: none, or only ones on the ignore list (analytics). */
export function isCookieFree(policy: ResolvedRequestPolicy, headers: IncomingHttpHeaders): boolean {
  const cookie = headers.cookie;
  return cookie === undefined || onlyIgnoredCookies(cookie, policy.ignoreCookies);
}

/** RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are safe; every other method (POST, PUT, PROPFIND...) is not. */
export function isUnsafeMethod(method: string | undefined): boolean {
  return method !== undefined && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && method !== 'TRACE';
}

/** A Location / Content-Location value as a request_uri of this host, or undefined (RFC 9111 §4.4: same host only). */
function sameHostUri(host: string, value: string | readonly string[] | undefined): string | undefined {
  const v = first(value);
  if (v === undefined || v === '') return undefined;
  if (v.charCodeAt(0) === 0x2f && v.charCodeAt(1) !== 0x2f) return v;
  const parts = splitUrl(v);
  return parts !== undefined && parts.host === host ? parts.requestUri : undefined;
}

/**
 * RFC 9111 §4.4: a non-error response (2xx, 3xx) to an unsafe method invalidates its target URI and the
 * Location and Content-Location URIs when they name the same host. The request_uris to drop; none otherwise.
 */
export function invalidatedUris(method: string | undefined, status: number, host: string, requestUri: string, location: string | readonly string[] | undefined, contentLocation: string | readonly string[] | undefined): string[] {
  if (!isUnsafeMethod(method) || status < 200 || status >= 400) return [];
  const uris = [requestUri];
  const loc = sameHostUri(host, location);
  if (loc !== undefined && loc !== requestUri) uris.push(loc);
  const cloc = sameHostUri(host, contentLocation);
  if (cloc !== undefined && cloc !== requestUri && cloc !== loc) uris.push(cloc);
  return uris;
}

/** RFC 6265 §4.1.1 cookie-name is an RFC 7230 token; checked once here so request-time matching can stay a plain scan. */
// ':' is outside the RFC token set but real session cookies use it (cookie-session's 'express:sess').
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z:-]+$/;

function resolveMethods(value: unknown): { cacheGet: boolean; cacheHead: boolean } {
  if (value === undefined) return { cacheGet: true, cacheHead: true };
  const list = stringList('methods', value).map((m) => m.toUpperCase());
  for (const m of list) {
    if (m !== 'GET' && m !== 'HEAD') {
      throw new ConfigError(`methods must list only 'GET' and 'HEAD' (other methods are never cached), got ${describe(value)}`);
    }
  }
  return { cacheGet: list.includes('GET'), cacheHead: list.includes('HEAD') };
}

function resolveCookies(value: unknown): { bypassAnyCookie: boolean; bypassCookies: readonly string[] } {
  if (value === undefined || value === 'all') return { bypassAnyCookie: true, bypassCookies: [] };
  if (!Array.isArray(value)) throw new ConfigError(`bypassCookies must be a list of cookie names or 'all', got ${describe(value)}`);
  const names = stringList('bypassCookies', value);
  for (const name of names) {
    if (!TOKEN.test(name)) throw new ConfigError(`bypassCookies must hold cookie names (RFC 6265 tokens), got ${describe(name)}`);
  }
  return { bypassAnyCookie: false, bypassCookies: Object.freeze(names) };
}

function resolvePaths(value: unknown): { bypassPathPrefixes: readonly string[]; bypassPathPatterns: readonly RegExp[] } {
  if (value === undefined) return { bypassPathPrefixes: [], bypassPathPatterns: [] };
  if (!Array.isArray(value)) throw new ConfigError(`bypassPaths must be a list of path prefixes or RegExps, got ${describe(value)}`);
  const prefixes: string[] = [];
  const patterns: RegExp[] = [];
  for (const item of value as readonly unknown[]) {
    if (item instanceof RegExp) {
      // A copy without g/y: those flags make test() stateful (lastIndex), so the same URL would match every other time.
      patterns.push(new RegExp(item.source, item.flags.replace(/[gy]/g, '')));
    } else if (typeof item === 'string' && item.startsWith('/')) {
      prefixes.push(item);
    } else {
      throw new ConfigError(`bypassPaths items must be path prefixes starting with '/' or RegExps, got ${describe(item)}`);
    }
  }
  return { bypassPathPrefixes: Object.freeze(prefixes), bypassPathPatterns: Object.freeze(patterns) };
}

/** Validates the request-policy options (ConfigError naming the option) and fills in the shared defaults. */
export function resolveRequestPolicy(o: RequestPolicyOptions, unkeyedHeaders: ResolvedRequestPolicy['unkeyedHeaders']): ResolvedRequestPolicy {
  return Object.freeze({
    ...resolveMethods(o.methods),
    ...resolveCookies(o.bypassCookies),
    ignoreCookies: ignoredCookies(o.ignoreCookies === undefined ? DEFAULT_IGNORED_COOKIES : stringList('ignoreCookies', o.ignoreCookies)),
    ...resolvePaths(o.bypassPaths),
    unkeyedHeaders,
  });
}

/**
 * A rule's request policy: the door's own with the rule's bypassCookies / ignoreCookies in place of the
 * door's (each validated as the door's options are; ConfigError messages carry `path`).
 */
export function refineRequestPolicy(base: ResolvedRequestPolicy, path: string, o: { bypassCookies?: unknown; ignoreCookies?: unknown }): ResolvedRequestPolicy {
  try {
    return Object.freeze({
      ...base,
      ...(o.bypassCookies === undefined ? {} : resolveCookies(o.bypassCookies)),
      ...(o.ignoreCookies === undefined ? {} : { ignoreCookies: ignoredCookies(stringList('ignoreCookies', o.ignoreCookies)) }),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${path}.${err.message}`);
    throw err;
  }
}
