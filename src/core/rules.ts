// Cache rules: per-route policy without a programming language, for both doors. Compiled once from the
// config file or the middleware options (matchers, merged policies, tag templates); at request time the
// first rule whose host, path, method, cookie and header conditions all hold is the request's rule.
// A request no rule matches costs one length check (no rules) or the rules' cheap tests, nothing else.
import type { IncomingHttpHeaders } from 'node:http';
import { hasCookie } from './cookies';
import { ConfigError } from './errors';
import { normalizeHost } from './key';
import type { UriNormalization } from './key';
import { boolean, describe, integerIn, nonNegativeInt, plainObject, rejectUnknownKeys, stringList } from './options';
import { ANY_STATUS } from './policy';
import type { StorableStatuses, StorePolicyOptions } from './policy';
import { refineRequestPolicy } from './request-policy';
import type { ResolvedRequestPolicy } from './request-policy';

/** A rule as written (JSON in the config file, or an object in the middleware options). */
export interface RuleOptions {
  /** Host, exact ('example.com') or a wildcard of its subdomains ('*.example.com'). */
  readonly host?: string;
  /** Path prefix ('/blog/'), or a glob over the whole path when it holds '*' (one segment; '**' any depth). */
  readonly path?: string;
  /** Methods this rule applies to ('GET', or a list). */
  readonly method?: string | readonly string[];
  /** Applies only when the request carries this cookie. */
  readonly cookie?: string;
  /** Applies only when the request carries this header. */
  readonly header?: string;
  /** Freshness for responses that state none, seconds. */
  readonly ttl?: number;
  /** Per status ('404') or class ('4xx', '5xx'): freshness when none is stated, and cap on what is stated; 5xx only with explicit freshness; 0: never stored. */
  readonly ttlByStatus?: Readonly<Record<string, number>>;
  readonly staleWhileRevalidate?: number;
  readonly staleIfError?: number;
  /** Never looked up nor stored: straight to the origin. */
  readonly bypass?: boolean;
  readonly bypassCookies?: readonly string[] | 'all';
  readonly ignoreCookies?: readonly string[];
  readonly cacheStatuses?: readonly (number | string)[] | typeof ANY_STATUS;
  /** Tags added to stored pages: text, with {host} and {segment:N} (the Nth path segment) filled in. */
  readonly tags?: readonly string[];
  /** Key normalisation (changes the key nginx computes: nginx-conf refuses it). */
  readonly key?: {
    readonly dropParams?: readonly string[];
    readonly sortParams?: boolean;
    readonly lowercasePath?: boolean;
    /** Adds the device class (mobile, tablet, desktop) to the key and sends it as X-Device-Class instead of the User-Agent. */
    readonly deviceClass?: boolean;
  };
  /** Response headers set on pages stored under this rule (replacing the origin's), e.g. a browser Cache-Control. */
  readonly headers?: Readonly<Record<string, string>>;
}

type TagPart = string | { readonly segment: number } | 'host';

/** A compiled rule: everything decided at load time. */
export interface Rule {
  /** Its place in the list (0-based), for errors, logs and /explain. */
  readonly index: number;
  readonly hostExact: string | undefined;
  /** '*.example.com' -> '.example.com'. */
  readonly hostSuffix: string | undefined;
  readonly pathPrefix: string | undefined;
  readonly pathGlob: RegExp | undefined;
  /** The glob's literal start ('/m/' of '/m/**'): tested first, so most paths never reach the RegExp (nor slice). */
  readonly pathGlobStart: string;
  readonly methods: ReadonlySet<string> | undefined;
  readonly cookie: string | undefined;
  /** Lower-cased header name. */
  readonly header: string | undefined;
  readonly bypass: boolean;
  readonly request: ResolvedRequestPolicy;
  readonly policy: StorePolicyOptions;
  /** ttlByStatus expanded to each status code it names. */
  readonly byStatus: ReadonlyMap<number, StorePolicyOptions>;
  readonly tags: readonly (readonly TagPart[])[];
  readonly normalize: UriNormalization | undefined;
  readonly deviceClass: boolean;
  /** Flat [name, value, ...], lower-case names. */
  readonly headers: readonly string[];
}

/** What a rule refines: the door's own resolved request and store policies. */
export interface RuleBase {
  readonly request: ResolvedRequestPolicy;
  readonly policy: StorePolicyOptions;
}

const RULE_KEYS = [
  'host', 'path', 'method', 'cookie', 'header', 'ttl', 'ttlByStatus', 'staleWhileRevalidate', 'staleIfError', 'bypass',
  'bypassCookies', 'ignoreCookies', 'cacheStatuses', 'tags', 'key', 'headers',
];
const KEY_KEYS = ['dropParams', 'sortParams', 'lowercasePath', 'deviceClass'];
const TEN_YEARS = 10 * 365 * 86400;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z:-]+$/;
const TAG_TEXT = /^[^\s,{}]+$/;
/** Headers a rule may not set: framing and hop-by-hop (Node or the proxy own them), and the cache's own. */
const UNSETTABLE: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'content-encoding', 'set-cookie', 'x-cache', 'cache-status', 'age',
]);

/** The header the device class goes to the origin in (the raw User-Agent does not). */
export const DEVICE_CLASS_HEADER = 'x-device-class';
export type DeviceClass = 'mobile' | 'tablet' | 'desktop';

function fail(path: string, what: string, value: unknown): never {
  throw new ConfigError(`${path} must be ${what}, got ${describe(value)}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** '/shop/*\/cart' -> ^/shop/[^/]*\/cart$; '**' crosses slashes. Built once, here. */
function globToRegExp(glob: string): RegExp {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else {
        out += '[^/]*';
      }
    } else {
      out += escapeRegExp(c);
    }
  }
  return new RegExp(`${out}$`);
}

function compileHost(path: string, value: unknown): { hostExact: string | undefined; hostSuffix: string | undefined } {
  if (value === undefined) return { hostExact: undefined, hostSuffix: undefined };
  if (typeof value !== 'string') fail(path, "a host name or '*.domain'", value);
  const wild = value.startsWith('*.');
  const name = wild ? value.slice(2) : value;
  const n = normalizeHost(name);
  if (n === undefined || n !== name.toLowerCase() || name.includes(':') || name.includes('*')) fail(path, "a host name without port (or '*.domain' for its subdomains)", value);
  return wild ? { hostExact: undefined, hostSuffix: `.${n}` } : { hostExact: n, hostSuffix: undefined };
}

function compilePath(path: string, value: unknown): { pathPrefix: string | undefined; pathGlob: RegExp | undefined; pathGlobStart: string } {
  if (value === undefined) return { pathPrefix: undefined, pathGlob: undefined, pathGlobStart: '' };
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('?') || /\s/.test(value)) {
    fail(path, "a path prefix or glob starting with '/' (no query, no spaces)", value);
  }
  const star = value.indexOf('*');
  return star !== -1
    ? { pathPrefix: undefined, pathGlob: globToRegExp(value), pathGlobStart: value.slice(0, star) }
    : { pathPrefix: value, pathGlob: undefined, pathGlobStart: '' };
}

function compileMethods(path: string, value: unknown): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  const list = stringList(path, value).map((m) => m.toUpperCase());
  for (const m of list) if (!HEADER_NAME.test(m)) fail(path, 'a list of HTTP methods', value);
  if (list.length === 0) fail(path, 'a non-empty list of HTTP methods', value);
  return new Set(list);
}

function seconds(path: string, value: unknown): number {
  return nonNegativeInt(path, value, TEN_YEARS);
}

function compileStatuses(path: string, value: unknown): StorableStatuses {
  if (value === ANY_STATUS) return ANY_STATUS;
  if (!Array.isArray(value) || value.length === 0) fail(path, "a non-empty list of status codes or 'any'", value);
  return new Set((value as unknown[]).map((s) => integerIn(path, typeof s === 'string' ? Number(s) : s, 200, 599)));
}

/** The status codes a ttlByStatus key names: '404' or a class '4xx'. */
function statusCodes(path: string, key: string): number[] {
  if (/^[2-5]xx$/i.test(key)) {
    const base = Number(key[0]) * 100;
    return Array.from({ length: 100 }, (_, i) => base + i);
  }
  if (/^\d{3}$/.test(key)) return [integerIn(path, Number(key), 200, 599)];
  return fail(path, "keyed by a status code ('404') or class ('4xx', '5xx')", key);
}

function compileByStatus(path: string, value: unknown, policy: StorePolicyOptions): ReadonlyMap<number, StorePolicyOptions> {
  const out = new Map<number, StorePolicyOptions>();
  if (value === undefined) return out;
  const obj = plainObject(path, value);
  // Exact codes win over classes, whatever the order they are written in.
  const keys = Object.keys(obj).sort((a, b) => Number(/x/i.test(a)) - Number(/x/i.test(b)));
  for (const k of keys) {
    const ttl = seconds(`${path}.${k}`, obj[k]);
    for (const code of statusCodes(`${path}.${k}`, k)) {
      if (out.has(code)) continue;
      const statuses = policy.statuses === ANY_STATUS ? ANY_STATUS : new Set(policy.statuses);
      if (statuses !== ANY_STATUS) {
        if (ttl === 0) statuses.delete(code);
        else statuses.add(code);
      }
      // 5xx: stored only with explicit freshness (never a default or heuristic lifetime), as RFC 9111 §4.2.2
      // allows no heuristic for them; the value caps what the origin states.
      const serverError = code >= 500;
      out.set(code, {
        ...policy,
        statuses: ttl === 0 && statuses === ANY_STATUS ? new Set<number>() : statuses,
        defaultTtlSeconds: serverError ? 0 : ttl,
        maxHeuristicTtlSeconds: serverError ? 0 : (policy.maxHeuristicTtlSeconds ?? 0),
        maxTtlSeconds: Math.max(1, Math.min(ttl, policy.maxTtlSeconds)),
      });
    }
  }
  return out;
}

function compileTags(path: string, value: unknown): (readonly TagPart[])[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : fail(path, 'a list of tags', value);
  return list.map((t, i) => {
    const p = `${path}[${i}]`;
    if (typeof t !== 'string' || t === '') fail(p, 'a non-empty tag', t);
    const parts: TagPart[] = [];
    const re = /\{([^}]*)\}/g;
    let last = 0;
    for (const m of t.matchAll(re)) {
      if (m.index > last) parts.push(t.slice(last, m.index));
      const name = m[1]!;
      const seg = /^segment:([1-9]\d?)$/.exec(name);
      if (name === 'host') parts.push('host');
      else if (seg !== null) parts.push({ segment: Number(seg[1]) });
      else fail(p, 'a tag with {host} or {segment:N} (N from 1)', t);
      last = m.index + m[0].length;
    }
    if (last < t.length) parts.push(t.slice(last));
    for (const part of parts) if (typeof part === 'string' && part !== 'host' && !TAG_TEXT.test(part)) fail(p, 'a tag without spaces, commas or stray braces', t);
    return parts;
  });
}

function compileKey(path: string, value: unknown): { normalize: UriNormalization | undefined; deviceClass: boolean } {
  if (value === undefined) return { normalize: undefined, deviceClass: false };
  const o = plainObject(path, value);
  rejectUnknownKeys(path, o, KEY_KEYS);
  const drop = o.dropParams === undefined ? [] : stringList(`${path}.dropParams`, o.dropParams);
  for (const d of drop) if (d === '*' || /[=&?#\s]/.test(d)) fail(`${path}.dropParams`, "query parameter names or 'prefix*' patterns", d);
  const sortParams = o.sortParams === undefined ? false : boolean(`${path}.sortParams`, o.sortParams);
  const lowercasePath = o.lowercasePath === undefined ? false : boolean(`${path}.lowercasePath`, o.lowercasePath);
  const deviceClass = o.deviceClass === undefined ? false : boolean(`${path}.deviceClass`, o.deviceClass);
  const normalizes = drop.length > 0 || sortParams || lowercasePath;
  return {
    normalize: normalizes
      ? {
          drop: { names: new Set(drop.filter((d) => !d.endsWith('*'))), prefixes: drop.filter((d) => d.endsWith('*')).map((d) => d.slice(0, -1)) },
          sortParams,
          lowercasePath,
        }
      : undefined,
    deviceClass,
  };
}

function compileHeaders(path: string, value: unknown): string[] {
  if (value === undefined) return [];
  const o = plainObject(path, value);
  const out: string[] = [];
  for (const [name, v] of Object.entries(o)) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) fail(`${path}`, 'an object of HTTP header names', name);
    if (UNSETTABLE.has(lower)) fail(`${path}.${name}`, 'a header the cache does not own (not framing, Set-Cookie or its own)', name);
    if (typeof v !== 'string' || /[\r\n\0]/.test(v)) fail(`${path}.${name}`, 'a header value on one line', v);
    out.push(lower, v);
  }
  return out;
}

function compileRule(path: string, index: number, value: unknown, base: RuleBase): Rule {
  const o = plainObject(path, value);
  if (typeof value !== 'object' || value === null) fail(path, 'an object', value);
  rejectUnknownKeys(path, o, RULE_KEYS);
  const cookie = o.cookie;
  if (cookie !== undefined && (typeof cookie !== 'string' || !COOKIE_NAME.test(cookie))) fail(`${path}.cookie`, 'a cookie name', cookie);
  const header = o.header;
  if (header !== undefined && (typeof header !== 'string' || !HEADER_NAME.test(header))) fail(`${path}.header`, 'an HTTP header name', header);
  const bypass = o.bypass === undefined ? false : boolean(`${path}.bypass`, o.bypass);
  const policy: StorePolicyOptions = {
    ...base.policy,
    ...(o.ttl === undefined ? {} : { defaultTtlSeconds: seconds(`${path}.ttl`, o.ttl) }),
    ...(o.staleWhileRevalidate === undefined ? {} : { defaultStaleWhileRevalidateSeconds: seconds(`${path}.staleWhileRevalidate`, o.staleWhileRevalidate) }),
    ...(o.staleIfError === undefined ? {} : { defaultStaleIfErrorSeconds: seconds(`${path}.staleIfError`, o.staleIfError) }),
    ...(o.cacheStatuses === undefined ? {} : { statuses: compileStatuses(`${path}.cacheStatuses`, o.cacheStatuses) }),
  };
  if (bypass) {
    const cachesSomething = ['ttl', 'ttlByStatus', 'staleWhileRevalidate', 'staleIfError', 'cacheStatuses', 'tags', 'key', 'headers', 'bypassCookies', 'ignoreCookies'].find((k) => o[k] !== undefined);
    if (cachesSomething !== undefined) throw new ConfigError(`${path}.${cachesSomething} has no effect with bypass: true (a bypassed request is never cached); remove one of them`);
  }
  return {
    index,
    ...compileHost(`${path}.host`, o.host),
    ...compilePath(`${path}.path`, o.path),
    methods: compileMethods(`${path}.method`, o.method),
    cookie: cookie as string | undefined,
    header: (header as string | undefined)?.toLowerCase(),
    bypass,
    request: refineRequestPolicy(base.request, path, { bypassCookies: o.bypassCookies, ignoreCookies: o.ignoreCookies }),
    policy,
    byStatus: compileByStatus(`${path}.ttlByStatus`, o.ttlByStatus, policy),
    tags: compileTags(`${path}.tags`, o.tags),
    ...compileKey(`${path}.key`, o.key),
    headers: compileHeaders(`${path}.headers`, o.headers),
  };
}

/**
 * Validates and compiles a rule list (ConfigError naming `rules[i].field` and why). Done once at start and
 * on each reload, through the same resolver; nothing here is redone per request.
 */
export function compileRules(value: unknown, base: RuleBase, path = 'rules'): readonly Rule[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(path, 'a list of rules', value);
  return Object.freeze((value as unknown[]).map((r, i) => compileRule(`${path}[${i}]`, i, r, base)));
}

function pathEnd(target: string): number {
  const q = target.indexOf('?');
  return q === -1 ? target.length : q;
}

function matches(r: Rule, host: string, method: string | undefined, target: string, headers: IncomingHttpHeaders): boolean {
  if (r.hostExact !== undefined && host !== r.hostExact) return false;
  if (r.hostSuffix !== undefined && !host.endsWith(r.hostSuffix)) return false;
  if (r.methods !== undefined && (method === undefined || !r.methods.has(method))) return false;
  if (r.pathPrefix !== undefined && !target.startsWith(r.pathPrefix)) return false;
  if (r.pathGlob !== undefined && (!target.startsWith(r.pathGlobStart) || !r.pathGlob.test(target.slice(0, pathEnd(target))))) return false;
  if (r.header !== undefined && headers[r.header] === undefined) return false;
  if (r.cookie !== undefined && (headers.cookie === undefined || !hasCookie(headers.cookie, r.cookie))) return false;
  return true;
}

/** The first rule whose conditions all hold, or undefined. Call only when there are rules. */
export function matchRule(rules: readonly Rule[], host: string, method: string | undefined, target: string, headers: IncomingHttpHeaders): Rule | undefined {
  for (let i = 0; i < rules.length; i++) if (matches(rules[i]!, host, method, target, headers)) return rules[i];
  return undefined;
}

/** The store policy for a response of this status under this rule (the door's own without one). */
export function storePolicyFor(rule: Rule | undefined, fallback: StorePolicyOptions, status: number): StorePolicyOptions {
  if (rule === undefined) return fallback;
  return rule.byStatus.get(status) ?? rule.policy;
}

/** The Nth segment of a path ('/blog/2024/x' -> 1: 'blog'), or '' past the end. */
function segment(requestUri: string, n: number): string {
  const end = pathEnd(requestUri);
  let start = 1;
  for (let i = 1; i < n; i++) {
    const slash = requestUri.indexOf('/', start);
    if (slash === -1 || slash >= end) return '';
    start = slash + 1;
  }
  const slash = requestUri.indexOf('/', start);
  return requestUri.slice(start, slash === -1 || slash > end ? end : slash);
}

/** The tags a stored page gets: the response's own, then the rule's (templates filled in; an empty one is left out). */
export function ruleTags(rule: Rule | undefined, own: readonly string[], host: string, requestUri: string): readonly string[] {
  if (rule === undefined || rule.tags.length === 0) return own;
  const out = own.slice();
  for (const parts of rule.tags) {
    let tag = '';
    let empty = false;
    for (const p of parts) {
      const v = typeof p === 'string' ? (p === 'host' ? host : p) : segment(requestUri, p.segment);
      if (v === '') empty = true;
      tag += v;
    }
    if (!empty && !/[\s,]/.test(tag) && !out.includes(tag)) out.push(tag);
  }
  return out;
}

/** The stored headers with the rule's set in place of the origin's of the same names. */
export function withRuleHeaders(rule: Rule | undefined, headers: string[]): string[] {
  if (rule === undefined || rule.headers.length === 0) return headers;
  const set = rule.headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    let replaced = false;
    for (let j = 0; j < set.length; j += 2) if (headers[i]!.toLowerCase() === set[j]) replaced = true;
    if (!replaced) out.push(headers[i]!, headers[i + 1]!);
  }
  for (let j = 0; j < set.length; j++) out.push(set[j]!);
  return out;
}

// The device classifier, documented in the README: Sec-CH-UA-Mobile ?1 is mobile; otherwise the
// User-Agent: a tablet (iPad, Android without "Mobile", Kindle/Silk, "Tablet") is tablet, a phone ("Mobi",
// iPhone, iPod, Android ... Mobile, Windows Phone, BlackBerry, Opera Mini) is mobile, anything else desktop.
const TABLET = /iPad|Tablet|Kindle|Silk|PlayBook|Android(?!.*Mobile)/i;
const MOBILE = /Mobi|iPhone|iPod|Windows Phone|BlackBerry|BB10|Opera Mini/i;

/** mobile, tablet or desktop, from the client hint or the User-Agent. */
export function deviceClass(headers: IncomingHttpHeaders): DeviceClass {
  const hint = headers['sec-ch-ua-mobile'];
  if (hint === '?1') return 'mobile';
  const ua = headers['user-agent'] ?? '';
  if (TABLET.test(ua)) return 'tablet';
  if (hint !== '?0' && MOBILE.test(ua)) return 'mobile';
  return 'desktop';
}

/**
 * What a rule adds to the hashed text after the request_uri: '' or '#device=<class>'. A request_uri never
 * holds '#', so no plain URI shares the key of a device variant.
 */
export function keyVariant(rule: Rule | undefined, headers: IncomingHttpHeaders): string {
  if (rule === undefined || !rule.deviceClass) return '';
  const c = deviceClass(headers);
  return c === 'mobile' ? '#device=mobile' : c === 'tablet' ? '#device=tablet' : '#device=desktop';
}

/** Why nginx cannot serve the same cache under these rules (its key is md5($host$request_uri)), or undefined. */
export function nginxIncompatibility(rules: readonly Rule[]): string | undefined {
  for (const r of rules) {
    if (r.normalize !== undefined) return `rules[${r.index}].key normalises the request URI (dropped or sorted parameters, lower-cased path), which nginx's md5($host$request_uri) key cannot reproduce`;
    if (r.deviceClass) return `rules[${r.index}].key.deviceClass adds a device class to the key, which nginx's md5($host$request_uri) key cannot reproduce`;
  }
  return undefined;
}
