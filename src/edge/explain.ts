// Explain: for one URL, the verdict an operator needs, from the code the edge itself runs: its key and the
// memcached node the ring picks, what L1 and memcached hold for it now (decoded entry), whether a request
// for it would be looked up (request policy), and with `fetch`, what the origin answers now and every reason
// it would not be stored (store policy). Read-only: nothing is stored, deleted or counted.
import type { IncomingHttpHeaders } from 'node:http';
import { entryEncoding } from '../core/compress';
import { decodeEntry, entryHeader, entryLifetimeSeconds } from '../core/entry';
import { plainTags } from '../core/generations';
import type { RawFormatOptions } from '../core/entry';
import { HOP_BY_HOP } from '../core/headers';
import { cacheKey, httpsVariantKey, normalizeHost, normalizeRequestUri, splitUrl } from '../core/key';
import { keyVariant, matchRule, storePolicyFor } from '../core/rules';
import type { Rule } from '../core/rules';
import { ageSeconds, freshness, notStoredReasons } from '../core/policy';
import type { Headers, StorePolicyOptions } from '../core/policy';
import { isCookieFree, passReasons } from '../core/request-policy';
import type { ResolvedRequestPolicy } from '../core/request-policy';
import { createHashRing } from '../core/ring';
import type { ServerAddress } from '../core/ring';
import { Registry } from 'prom-client';
import { cacheMetrics } from '../core/metrics';
import type { CacheStore, StoredValue } from '../core/store';
import { createMemcachedStore } from '../core/stores/memcached';
import { readVariantIndex, variantKey } from '../core/variants';
import type { ResolvedEdgeOptions } from './options';
import type { Origins } from './origins';

/** What to explain: an absolute URL, and the request a client would send for it (GET, no headers by default). */
export interface ExplainQuery {
  readonly url: string;
  readonly method: string;
  /** Request headers, names lower-case (e.g. cookie, authorization). */
  readonly headers: Readonly<Record<string, string>>;
  /** Ask the origin now (one GET, nothing stored). */
  readonly fetch: boolean;
}

/** A stored entry as explain shows it. */
export interface StoredView {
  readonly format: 'envelope' | 'raw';
  readonly status: number;
  /** Seconds since stored (0 for raw entries, which carry no time). */
  readonly ageSeconds: number;
  /** fresh, stale-while-revalidate, stale-if-error or expired (RFC 9111 §4.2, RFC 5861). */
  readonly state: string;
  /** Freshness left, seconds (negative: stale for that long). */
  readonly ttlLeftSeconds: number;
  readonly ttlSeconds: number;
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
  /** About when memcached drops it (freshness + longer stale window + --keep with a validator), seconds from now. */
  readonly expiresInSeconds: number;
  readonly tags: readonly string[];
  readonly contentType: string | undefined;
  readonly encoding: string;
  /** Bytes of the stored value (what memcached holds) and of the body in it. */
  readonly bytes: number;
  readonly bodyBytes: number;
  /**
   * Variants under this key: 1 for an ordinary page (Accept-Encoding is decoded per client, Cookie pages are
   * the cookie-less variant); for a page with Vary, how many the variant index lists, this view being the
   * variant this request selects.
   */
  readonly variants: number;
  /** The Vary names the variants are keyed by (a page with Vary only). */
  readonly varyOn?: readonly string[];
  /** The secondary key of this request's variant (a page with Vary only). */
  readonly variantKey?: string;
}

export interface OriginView {
  readonly status: number;
  readonly ms: number;
  /** Body bytes as received (counted up to the size limit plus one, then the rest is dropped). */
  readonly bodyBytes: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly wouldStore: boolean;
  /** Every reason it would not be stored (empty when it would). */
  readonly reasons: readonly string[];
}

export interface ExplainReport {
  readonly url: string;
  readonly host: string;
  readonly requestUri: string;
  readonly key: string;
  /** The cache rule that matches (its place in the list), if any. */
  readonly rule?: number;
  /** The memcached node the ring picks (as written in --memcached); null with the embedded store. */
  readonly node: string | null;
  readonly request: { readonly method: string; readonly verdict: 'lookup' | 'pass' | 'refuse'; readonly reasons: readonly string[] };
  /** null: not there; undefined tiers are absent from this deployment. */
  readonly stored: { readonly l1?: StoredView | null; readonly memcached?: StoredView | null | { readonly error: string } };
  readonly origin?: OriginView | { readonly error: string };
  /** One line: what a request for it gets now. */
  readonly verdict: string;
}

export interface FetchedPage {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly bodyBytes: number;
  readonly ms: number;
}

/** Where explain looks: the settings of the edge (or the CLI's flags) and its tiers. */
export interface ExplainSources {
  readonly keyPrefix: string;
  readonly memcached: readonly ServerAddress[];
  readonly raw: RawFormatOptions;
  readonly keepSeconds: number;
  readonly policy: StorePolicyOptions;
  readonly request: ResolvedRequestPolicy;
  readonly maxEntryBytes: number;
  readonly hosts: ReadonlySet<string> | undefined;
  /** The cache rules (first match wins), as the edge applies them in recv; absent: none. */
  readonly rules?: readonly Rule[];
  /** An https URL is keyed apart (behind a trusted TLS proxy, --trust-proxy), as the edge does. */
  readonly httpsKeys?: boolean;
  /** The in-process tier (absent: explain runs outside an edge). */
  readonly l1?: (key: string) => StoredValue | undefined;
  /** memcached (or the embedded store); absent: none. */
  readonly l2?: (key: string) => Promise<StoredValue | undefined>;
  /** One GET to the origin with these headers (flat list); absent: --fetch is not possible here. */
  readonly fetch?: (host: string, requestUri: string, headers: string[]) => Promise<FetchedPage>;
  readonly now?: () => number;
}

/** Response headers shown (the ones store decisions read), so the report stays short. */
const SHOWN_HEADERS = ['cache-control', 'edge-cache-control', 'cdn-cache-control', 'surrogate-control', 'expires', 'age', 'vary', 'set-cookie',
  'content-type', 'content-encoding', 'content-length', 'etag', 'last-modified', 'surrogate-key'];

/**
 * What a tier holds for this request: the entry at the key, or, when that is a variant index (Vary), the
 * variant this request's headers select; null when absent.
 */
async function readTier(
  read: (key: string) => StoredValue | undefined | Promise<StoredValue | undefined>,
  key: string,
  headers: IncomingHttpHeaders,
  src: ExplainSources,
  now: number,
): Promise<StoredView | null> {
  const v = await read(key);
  if (v === undefined) return null;
  const index = readVariantIndex(decodeEntry(v.value, v.flags, src.raw));
  if (index === undefined) return view(v, src, now);
  const vk = variantKey(key, index, headers);
  const variant = await read(vk);
  if (variant === undefined) return null;
  return { ...view(variant, src, now), variants: index.keys.length, varyOn: index.names, variantKey: vk };
}

function view(v: StoredValue, src: ExplainSources, now: number): StoredView {
  const e = decodeEntry(v.value, v.flags, src.raw);
  const age = now - e.storedAt;
  const ttlLeft = e.storedAt === 0 ? e.ttlSeconds : Math.floor((e.ttlSeconds * 1000 - age) / 1000);
  const lifetime = entryLifetimeSeconds(e, src.keepSeconds);
  return {
    format: e.format,
    status: e.status,
    ageSeconds: ageSeconds(e.storedAt, now),
    state: freshness(e, now),
    ttlLeftSeconds: ttlLeft,
    ttlSeconds: e.ttlSeconds,
    staleWhileRevalidateSeconds: e.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: e.staleIfErrorSeconds,
    expiresInSeconds: e.storedAt === 0 ? -1 : Math.max(0, Math.floor((e.storedAt + lifetime * 1000 - now) / 1000)),
    tags: plainTags(e.tags),
    contentType: entryHeader(e, 'content-type'),
    encoding: entryEncoding(e),
    bytes: v.value.length,
    bodyBytes: e.body.length,
    variants: 1,
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The request a client would send, as Node would parse it, and the headers a fill would carry. */
function requestHeaders(q: ExplainQuery, host: string): { parsed: IncomingHttpHeaders; forwarded: string[] } {
  const parsed: IncomingHttpHeaders = { host };
  const forwarded: string[] = ['host', host];
  for (const name of Object.keys(q.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host') continue;
    parsed[lower] = q.headers[name];
    if (!HOP_BY_HOP.has(lower)) forwarded.push(lower, q.headers[name]!);
  }
  return { parsed, forwarded };
}

/** Explains one URL; throws only for a URL that is not absolute http(s). */
export async function explainUrl(q: ExplainQuery, src: ExplainSources): Promise<ExplainReport> {
  const parts = splitUrl(q.url);
  if (parts === undefined) throw new TypeError(`'${q.url}' is not an absolute http(s) URL`);
  const host = normalizeHost(parts.host) ?? parts.host;
  const method = q.method.toUpperCase();
  const { parsed, forwarded } = requestHeaders(q, host);
  // Cache rules as recv applies them: the first match may normalise the URI (what is hashed and what the
  // origin gets), bypass, bring its own request and store policies, and add a device class to the key.
  const rule = src.rules === undefined || src.rules.length === 0 ? undefined : matchRule(src.rules, host, method, parts.requestUri, parsed);
  const requestUri = rule?.normalize === undefined ? parts.requestUri : normalizeRequestUri(parts.requestUri, rule.normalize);
  const secure = src.httpsKeys === true && /^https:/i.test(q.url);
  const plainKey = cacheKey(src.keyPrefix, host, rule === undefined ? requestUri : requestUri + keyVariant(rule, parsed));
  const key = secure ? httpsVariantKey(plainKey) : plainKey;
  const node = src.memcached.length === 0 ? null : src.memcached[createHashRing(src.memcached).nodeFor(key)]!.name;
  const now = (src.now ?? Date.now)();

  let verdict: 'lookup' | 'pass' | 'refuse' = 'lookup';
  let reasons: string[] = passReasons(rule?.request ?? src.request, method, parsed, requestUri, host, secure);
  if (rule?.bypass === true) reasons.unshift(`rule ${rule.index} bypasses`);
  if (src.hosts !== undefined && !src.hosts.has(host)) {
    verdict = 'refuse';
    reasons = ['host not in --hosts (421)'];
  } else if (reasons.length > 0) verdict = 'pass';

  const stored: { l1?: StoredView | null; memcached?: StoredView | null | { error: string } } = {};
  if (src.l1 !== undefined) {
    try {
      stored.l1 = await readTier(src.l1, key, parsed, src, now);
    } catch {
      stored.l1 = null;
    }
  }
  if (src.l2 !== undefined) {
    try {
      stored.memcached = await readTier(src.l2, key, parsed, src, now);
    } catch (err) {
      stored.memcached = { error: errorText(err) };
    }
  }

  let origin: OriginView | { error: string } | undefined;
  if (q.fetch) {
    if (src.fetch === undefined) origin = { error: 'no origin to ask here (give --origin, or explain through --admin)' };
    else {
      try {
        const page = await src.fetch(host, requestUri, forwarded);
        const shown: Record<string, string> = {};
        for (const name of SHOWN_HEADERS) {
          const v = page.headers[name];
          if (v !== undefined) shown[name] = Array.isArray(v) ? v.join(', ') : String(v);
        }
        const notStored = notStoredReasons(
          { method: method === 'HEAD' ? 'GET' : method, url: requestUri, headers: parsed as Headers, cookieFree: isCookieFree(src.request, parsed) },
          { status: page.status, headers: page.headers as Headers, bodyBytes: page.bodyBytes },
          storePolicyFor(rule, src.policy, page.status),
          src.maxEntryBytes,
        );
        origin = { status: page.status, ms: Math.round(page.ms), bodyBytes: page.bodyBytes, headers: shown, wouldStore: notStored.length === 0, reasons: notStored };
      } catch (err) {
        origin = { error: errorText(err) };
      }
    }
  }
  return { url: q.url, host, requestUri, key, ...(rule === undefined ? {} : { rule: rule.index }), node, request: { method, verdict, reasons }, stored, ...(origin === undefined ? {} : { origin }), verdict: summary(verdict, reasons, stored, origin) };
}

function summary(
  verdict: 'lookup' | 'pass' | 'refuse',
  reasons: readonly string[],
  stored: { l1?: StoredView | null; memcached?: StoredView | null | { error: string } },
  origin: OriginView | { error: string } | undefined,
): string {
  if (verdict === 'refuse') return `refused: ${reasons.join(', ')}`;
  if (verdict === 'pass') return `BYPASS: this request is never looked up (${reasons.join(', ')})`;
  const found = stored.l1 ?? (stored.memcached !== undefined && stored.memcached !== null && !('error' in stored.memcached) ? stored.memcached : undefined);
  const where = stored.l1 ? 'L1' : 'memcached';
  let now: string;
  if (found === undefined || found === null) now = 'MISS: not stored now';
  else if (found.state === 'fresh') now = `HIT from ${where} (fresh, ${found.ttlLeftSeconds} s left)`;
  else if (found.state === 'expired') now = `EXPIRED in ${where}: the next request goes to the origin`;
  else now = `stored in ${where}, ${found.state}`;
  if (origin === undefined) return now;
  if ('error' in origin) return `${now}; origin: ${origin.error}`;
  return `${now}; the origin's answer now (${origin.status}) ${origin.wouldStore ? 'would be stored' : `would not be stored: ${origin.reasons.join(', ')}`}`;
}

/** One GET through the edge's origins (balanced, with failover), counting the body up to limit + 1 bytes. */
export function originFetcher(origins: Origins, limit: number): NonNullable<ExplainSources['fetch']> {
  return async function fetchForExplain(_host: string, requestUri: string, headers: string[]): Promise<FetchedPage> {
    const t0 = performance.now();
    const res = await origins.request({ method: 'GET', path: requestUri, headers, body: null, retryable: true });
    let bytes = 0;
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      if (bytes > limit) break;
    }
    if (bytes > limit) res.body.destroy();
    return { status: res.statusCode, headers: res.headers, bodyBytes: bytes, ms: performance.now() - t0 };
  };
}

/** What explain reads in a running edge: its settings, its in-process tier, memcached (a connection of its own), its origins. */
export function edgeExplainSources(opts: ResolvedEdgeOptions, store: CacheStore, origins: Origins): ExplainSources {
  const memcached = opts.store.memcached;
  return {
    keyPrefix: opts.keyPrefix,
    memcached,
    raw: { defaultContentType: opts.defaultContentType, gzipFlag: opts.gzipFlag, ttlSeconds: opts.policy.defaultTtlSeconds },
    keepSeconds: opts.policy.keepSeconds ?? 0,
    policy: opts.policy,
    request: opts.request,
    maxEntryBytes: opts.maxEntryBytes,
    hosts: opts.hosts,
    rules: opts.rules,
    httpsKeys: opts.trustProxy !== undefined,
    // The in-process tier alone (with the embedded store, that is the whole cache).
    l1: (key) => store.getSync(key),
    // memcached read on a connection of explain's own, so the L1 in front of it is neither read nor filled.
    ...(memcached.length === 0 ? {} : { l2: (key: string) => readMemcached(memcached, opts.store.memcachedTimeoutMs, key) }),
    fetch: originFetcher(origins, opts.maxEntryBytes),
  };
}

/** One get on a short-lived memcached store (explain is rare; its reads stay out of the edge's own). */
export async function readMemcached(servers: readonly ServerAddress[], timeoutMs: number, key: string): Promise<StoredValue | undefined> {
  const store = createMemcachedStore({ servers, timeoutMs: Math.max(timeoutMs, 1000), metrics: cacheMetrics(new Registry()) });
  try {
    return await store.get(key);
  } finally {
    await store.close();
  }
}
