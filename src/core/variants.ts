// Vary variants (RFC 9111 §4.1): a page whose response varies on request headers (beyond Accept-Encoding,
// which the cache normalises itself by storing one coding and decoding, and Cookie, which the cookie rules
// cover) is stored once per combination of those headers' values, each under a secondary key, and the page's
// own (primary) key holds a small variant index: the Vary names, a generation, and the variant keys stored
// so far (at most MAX_VARIANTS). A lookup that finds the index computes the request's secondary key and looks
// that up. The generation is new whenever the index is created anew (first store, after a purge or an
// eviction of the index, or when the Vary names change), so variants stored under an earlier index are never
// reached again, whatever memcached still holds.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ENTRY_VARIANT_INDEX } from './entry';
import type { CacheEntry, EntryFormat } from './entry';

/** Most variants one page keeps; past it a new combination is fetched for its client but not stored. */
export const MAX_VARIANTS = 32;

/** Headers whose values compare case-insensitively (RFC 9110 §12.5: their tokens are case-insensitive). */
const CASE_INSENSITIVE: ReadonlySet<string> = new Set(['accept', 'accept-language', 'accept-charset', 'accept-encoding', 'sec-ch-ua-mobile', 'save-data']);

export interface VariantIndex {
  /** The Vary names, lower-case, sorted, without accept-encoding and cookie. */
  readonly names: readonly string[];
  readonly generation: string;
  /** Secondary keys stored so far. */
  readonly keys: readonly string[];
}

/**
 * The names a response's Vary keys variants by: every name but accept-encoding and cookie, lower-case,
 * sorted, without repeats; undefined when there is none (or for `*`, which is never stored).
 */
export function variantNames(vary: string | readonly string[] | undefined): string[] | undefined {
  if (vary === undefined) return undefined;
  const joined = typeof vary === 'string' ? vary : vary.join(',');
  let out: string[] | undefined;
  for (const part of joined.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '' || name === 'accept-encoding' || name === 'cookie') continue;
    if (name === '*') return undefined;
    if (out === undefined) out = [];
    if (!out.includes(name)) out.push(name);
  }
  return out?.sort();
}

/** A stored entry's variant names (from its Vary lines), or undefined. */
export function entryVariantNames(entry: CacheEntry): string[] | undefined {
  const h = entry.headers;
  let vary: string[] | undefined;
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'vary') (vary ??= []).push(h[i + 1]!);
  return variantNames(vary);
}

/**
 * A request header's value as variants compare it (RFC 9111 §4.1: "normalizing both header values in a way
 * that is known to have identical semantics"): list members trimmed and joined with ',', case folded where
 * the header's tokens are case-insensitive; absent and empty are the same.
 */
const AROUND_SEMICOLON = /\s*;\s*/g;
const WHITESPACE_RUN = /\s+/g;

export function normalizedValue(name: string, value: string | readonly string[] | undefined): string {
  if (value === undefined) return '';
  const joined = typeof value === 'string' ? value : value.join(',');
  const members = joined
    .split(',')
    .map((m) => m.trim().replace(AROUND_SEMICOLON, ';').replace(WHITESPACE_RUN, ' '))
    .filter((m) => m !== '');
  const text = members.join(',');
  return CASE_INSENSITIVE.has(name) ? text.toLowerCase() : text;
}

/** The secondary key of the variant a request selects: md5 of the page key, the generation and each name's value. */
export function variantKey(key: string, index: Pick<VariantIndex, 'names' | 'generation'>, headers: IncomingHttpHeaders): string {
  const h = createHash('md5').update(key).update('\0vary\0').update(index.generation);
  for (const name of index.names) h.update('\0').update(name).update('\0').update(normalizedValue(name, headers[name]));
  return h.digest('hex');
}

const PARSED = new WeakMap<CacheEntry, VariantIndex>();

/** Whether an entry is a variant index (one flags read: the hit path asks this of every entry). */
export function isVariantIndex(entry: CacheEntry): boolean {
  return ((entry.flags ?? 0) & ENTRY_VARIANT_INDEX) !== 0;
}

/** The variant index an entry holds, or undefined for an ordinary page. Parsed once per decoded entry. */
export function readVariantIndex(entry: CacheEntry): VariantIndex | undefined {
  if (!isVariantIndex(entry)) return undefined;
  let index = PARSED.get(entry);
  if (index === undefined) {
    const [generation = '', names = '', ...keys] = entry.body.toString('latin1').split('\n');
    index = { generation, names: names === '' ? [] : names.split(','), keys: keys.filter((k) => k !== '') };
    PARSED.set(entry, index);
  }
  return index;
}

/** A new index for these names (a fresh generation), with no variant yet. */
export function newVariantIndex(names: readonly string[]): VariantIndex {
  return { names, generation: randomBytes(6).toString('hex'), keys: [] };
}

/**
 * The index as an entry for the page's primary key: it lives as long as the longest-lived variant stored
 * under it (`lifetimeSeconds`), and is never delivered (lookups read it, then the variant).
 */
export function variantIndexEntry(index: VariantIndex, lifetimeSeconds: number, now: number, format: EntryFormat): CacheEntry {
  return {
    status: 200,
    headers: ['vary', index.names.join(', ')],
    body: Buffer.from([index.generation, index.names.join(','), ...index.keys].join('\n'), 'latin1'),
    storedAt: now,
    ttlSeconds: Math.max(1, lifetimeSeconds),
    staleWhileRevalidateSeconds: 0,
    staleIfErrorSeconds: 0,
    tags: [],
    format,
    flags: ENTRY_VARIANT_INDEX,
  };
}

/**
 * Whether a page fetched for one request's headers (`from`) is the variant another request (`to`) selects:
 * always for a page that does not vary; else when every Vary name's normalised value is the same.
 */
export function sameVariant(entry: CacheEntry, from: IncomingHttpHeaders | undefined, to: IncomingHttpHeaders): boolean {
  const names = entryVariantNames(entry);
  if (names === undefined) return true;
  if (from === undefined) return false;
  return names.every((n) => normalizedValue(n, from[n]) === normalizedValue(n, to[n]));
}

/** Whether two name lists are the same (both sorted). */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
