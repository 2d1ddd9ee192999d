// Tag indexes: the page keys stored with each tag, kept in the store beside the pages (in chunks, since an
// index can outgrow one memcached item), and purge by tag. The pages themselves are cache.ts's.
import { createHash } from 'node:crypto';
import { ConfigError } from './errors';
import { normalizeHost } from './key';
import type { CacheMetrics } from './metrics';
import type { CacheStore } from './store';

/**
 * The memcached key of chunk `chunk` of a tag's index (chunk 0 keeps the original single-index key): md5 of a
 * text no page key can have (a host never holds \0).
 */
export function tagIndexKey(keyPrefix: string, tag: string, chunk = 0): string {
  return createHash('md5').update(chunk === 0 ? `${keyPrefix}\0tag\0${tag}` : `${keyPrefix}\0tag\0${tag}\0${chunk}`).digest('hex');
}

/** Where the number of a tag's current index chunk is kept. */
export function tagHeadKey(keyPrefix: string, tag: string): string {
  return createHash('md5').update(`${keyPrefix}\0taghead\0${tag}`).digest('hex');
}

/** Tags whose current chunk number this process remembers (dropped whole when full). */
const HEADS_MAX = 10_000;

export interface TagIndex {
  /** Adds a stored page's key to the index of each of its tags. */
  index(key: string, tags: readonly string[]): Promise<void>;
  /**
   * Deletes every page stored with one of these tags, and the tags' indexes; returns the page keys deleted.
   * With `soft`, each page is handed to it instead (marked stale) and the indexes stay, so a later hard purge
   * still finds a page whose refresh has not run yet.
   */
  purge(tags: readonly string[], soft?: (key: string) => Promise<unknown>): Promise<string[]>;
}

export function createTagIndex(store: CacheStore, keyPrefix: string, metrics: CacheMetrics): TagIndex {
  // A tag's page keys, space-separated, are appended to chunk h of the tag's index; when the store refuses
  // a chunk (memcached's item size), writers move to chunk h+1 and record h+1 at the tag's head key.
  // Purge reads chunks 0..h and any present past h. Indexes never expire (memcached may evict them under memory pressure, which
  // then loses that tag's purge: size memcached so it does not evict).
  // Every store appends its key again (a purge made by another process cannot be seen from here, so no
  // in-process shortcut may skip it); duplicates cost a few bytes and are dropped when a purge reads them.
  let heads = new Map<string, number>();
  function rememberHead(tag: string, head: number): void {
    if (heads.size >= HEADS_MAX) heads = new Map();
    heads.set(tag, head);
  }

  async function storedHead(tag: string): Promise<number> {
    const hk = tagHeadKey(keyPrefix, tag);
    store.evictLocal(hk);
    const v = await store.get(hk);
    const n = v === undefined ? 0 : Number(v.value.toString('latin1'));
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  }

  async function headOf(tag: string): Promise<number> {
    return heads.get(tag) ?? (await storedHead(tag));
  }

  return {
    async index(key: string, tags: readonly string[]): Promise<void> {
      const member = Buffer.from(`${key} `);
      for (const tag of tags) {
        let head = await headOf(tag);
        for (let tries = 0; tries < 4; tries++) {
          const chunk = tagIndexKey(keyPrefix, tag, head);
          // append keeps the chunk's own expiry; add creates it (never expiring) the first time.
          if ((await store.append(chunk, member)) || (await store.add(chunk, member, 0, 0)) === true) {
            rememberHead(tag, head);
            break;
          }
          // The chunk exists but took no more (full), or a race: move on to the next chunk, never behind
          // one another process already moved to. Only a head that memcached holds is trusted: a purge
          // reads chunks up to it.
          const next = Math.max(head + 1, await storedHead(tag));
          if (!(await store.set(tagHeadKey(keyPrefix, tag), Buffer.from(String(next)), 0, 0))) {
            heads.delete(tag);
            break;
          }
          head = next;
          rememberHead(tag, head);
        }
      }
    },

    async purge(tags: readonly string[], soft?: (key: string) => Promise<unknown>): Promise<string[]> {
      const out: string[] = [];
      for (const tag of tags) {
        heads.delete(tag);
        const head = await storedHead(tag);
        const keys = new Set<string>();
        // Chunks 0..head, and on past the head while chunks are there: writers racing to move the head can
        // leave it behind a chunk already in use (a plain set, last writer wins), and a purge must not miss it.
        for (let chunk = 0; ; chunk++) {
          const ik = tagIndexKey(keyPrefix, tag, chunk);
          store.evictLocal(ik);
          const index = await store.get(ik);
          if (index === undefined) {
            if (chunk >= head) break;
            continue;
          }
          if (soft === undefined) await store.delete(ik);
          for (const k of index.value.toString('latin1').split(' ')) if (k.length === 32) keys.add(k);
        }
        for (const key of keys) {
          if (soft === undefined) await store.delete(key);
          else await soft(key);
          metrics.purged.labels('tag').inc();
          out.push(key);
        }
      }
      return out;
    },
  };
}

// Automatic tags, so a whole site or everything under a path can be purged without listing memcached keys:
// every stored page is tagged with its host and with each directory above it, up to PREFIX_TAG_DEPTH deep.
// The 'epc:' names cannot come from Surrogate-Key by accident only if sites avoid that prefix (documented).

/** Directories below the root that get a prefix tag: /a/, /a/b/, /a/b/c/. Deeper prefixes are refused by purge. */
export const PREFIX_TAG_DEPTH = 3;

export function siteTag(host: string): string {
  return `epc:site:${host}`;
}

/** `dir` is a path ending in '/', below the root ('/blog/'). */
export function prefixTag(host: string, dir: string): string {
  return `epc:prefix:${host}${dir}`;
}

/** Whether a tag is one the page's response or a rule gave, not an automatic site or prefix one. */
export function isExplicitTag(tag: string): boolean {
  return !tag.startsWith('epc:site:') && !tag.startsWith('epc:prefix:');
}

/** The automatic tags of a page: its site and the directories above it (at most PREFIX_TAG_DEPTH). */
export function autoTags(host: string, requestUri: string): string[] {
  const out = [siteTag(host)];
  const q = requestUri.indexOf('?');
  const end = q === -1 ? requestUri.length : q;
  let slash = requestUri.indexOf('/', 1);
  for (let depth = 1; depth <= PREFIX_TAG_DEPTH && slash !== -1 && slash < end; depth++) {
    out.push(prefixTag(host, requestUri.slice(0, slash + 1)));
    slash = requestUri.indexOf('/', slash + 1);
  }
  return out;
}

/** A page's stored tags: its own (response and rule) and the automatic ones. */
export function pageTags(own: readonly string[], host: string, requestUri: string): string[] {
  const out = own.slice();
  for (const t of autoTags(host, requestUri)) if (!out.includes(t)) out.push(t);
  return out;
}

/**
 * The tag a prefix purge uses, for `https://example.com/blog/`: the site's tag for the root, the prefix's
 * below it. Throws a message saying why for anything else (not a URL, no trailing '/', a query, too deep).
 */
export function prefixPurgeTag(url: string): string {
  const m = /^https?:\/\/([^/?#]+)(\/[^?#]*)$/i.exec(url);
  const host = m === null ? undefined : normalizeHost(m[1]!.slice(m[1]!.lastIndexOf('@') + 1));
  if (m === null || host === undefined) throw new ConfigError(`prefix '${url}' must be an absolute http(s) URL with a path and no query, such as https://example.com/blog/`);
  const dir = m[2]!;
  if (!dir.endsWith('/')) throw new ConfigError(`prefix '${url}' must end with '/' (a directory: pages are tagged with the directories above them)`);
  if (dir === '/') return siteTag(host);
  const depth = dir.split('/').length - 2;
  if (depth > PREFIX_TAG_DEPTH) throw new ConfigError(`prefix '${url}' is ${depth} directories deep; pages are tagged ${PREFIX_TAG_DEPTH} deep at most: purge a shorter prefix`);
  return prefixTag(host, dir);
}

/** The tag a site purge uses, for `example.com`. */
export function sitePurgeTag(site: string): string {
  const host = normalizeHost(site);
  if (host === undefined || host !== site.toLowerCase() || site.includes(':')) throw new ConfigError(`site '${site}' must be a host name such as example.com (no scheme, port or path)`);
  return siteTag(host);
}
