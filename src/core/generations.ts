// Generation counters, so a purge by tag, site, prefix or everything holds whatever memcached evicted: a
// version per tag (the automatic site and prefix tags included: per host) and a global one, kept in the
// store; each stored page carries the versions it was stored under (a stamp, the last of its tags), and a
// page whose stamp differs from the versions now is a miss. A purge sets new versions; tag indexes then only
// serve deleting (and re-warming) at once. Versions are read from the store at most once per versionTtlMs
// per process (the --l1-ttl: as long as an L1 copy of a page may go unchecked), so an L1 hit reads them
// from this process's copy and never waits on memcached.
import { createHash, randomBytes } from 'node:crypto';
import type { CacheEntry } from './entry';
import { storedValue } from './store';
import type { CacheStore, StoredValue } from './store';

/** The stamp: the last tag, '\u0001v ' then the global and each tag's version, space-separated. */
const STAMP = '\u0001v ';

/** The store key of a tag's version, or of the global one (tag undefined): md5 of a text no page key has. */
export function versionKey(keyPrefix: string, tag: string | undefined): string {
  return createHash('md5').update(tag === undefined ? `${keyPrefix}\0gen\0` : `${keyPrefix}\0gen\0tag\0${tag}`).digest('hex');
}

/** Whether a tag is a generation stamp (not a tag: never indexed, never shown as one). */
export function isStamp(tag: string): boolean {
  return tag.startsWith(STAMP);
}

/** The entry's tags without its stamp. */
export function plainTags(tags: readonly string[]): readonly string[] {
  const last = tags[tags.length - 1];
  return last !== undefined && isStamp(last) ? tags.slice(0, -1) : tags;
}

/** A new version: unique enough that two purges never set the same one (compared for equality only, never order). */
function freshVersion(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

interface Stamp {
  readonly keys: readonly string[];
  readonly values: readonly string[];
  /** Found current with the versions as they were at `epoch`, valid until the first of them expired here. */
  checkedEpoch: number;
  validUntil: number;
}

const MAX_CACHED = 10_000;
/** Versions a soft purge retired that still mean "stale, serve while refreshing" (older ones are misses). */
const MAX_RETIRED = 4;

/** A version memcached could not be asked for (down): checks fail open meanwhile. Never stored. */
const UNKNOWN = '\0unknown';

/** A page against the versions now: current, soft-purged (serve stale while one refresh runs), or purged. */
export type Currency = 'current' | 'stale' | 'gone';

/**
 * A stored version value: the current version, then the versions soft purges retired, '|'-separated
 * ('k3|k2|k1'). How a stamped version `v` fares against it.
 */
function against(value: string, v: string): Currency {
  if (value === v || value === UNKNOWN) return 'current';
  const bar = value.indexOf('|');
  if (bar === -1) return 'gone';
  if (bar === v.length && value.startsWith(v)) return 'current';
  return value.slice(bar + 1).split('|').includes(v) ? 'stale' : 'gone';
}

function currentPart(value: string): string {
  const bar = value.indexOf('|');
  return bar === -1 ? value : value.slice(0, bar);
}

function noop(): void {}

export interface Generations {
  /** The entry with a stamp of the versions this process knows (an earlier stamp replaced); versions unknown here are created. Never waits. */
  stamp(entry: CacheEntry): CacheEntry;
  /** The entry's stamp against this process's copy of the versions; undefined when a version must be read from the store first. Unstamped: current. */
  currentSync(entry: CacheEntry, now: number): Currency | undefined;
  /** The entry's stamp against the versions, reading those this process has no fresh copy of (in parallel: one round trip). */
  current(entry: CacheEntry, now: number): Promise<Currency>;
  /**
   * New versions for these tags (or the global one, for 'all'): every page stored under the old ones is a
   * miss from now on; with soft, it is stale instead (served while one refresh runs) until MAX_RETIRED more
   * soft purges of the tag.
   */
  bump(tags: readonly string[] | 'all', soft?: boolean): Promise<void>;
}

/** What generations need of a store: the page store itself with memcached, a Map of their own without. */
type VersionStore = Pick<CacheStore, 'kind' | 'getSync' | 'get' | 'add' | 'set' | 'evictLocal' | 'suspect'>;

/** Most versions the in-process table holds; past it the oldest are dropped (their pages become misses). */
const MAX_LOCAL_VERSIONS = 200_000;

/**
 * Versions for the embedded store, in a table of their own: in the page LRU they would be evicted by a flood
 * of pages (lru-cache does not refresh an entry when read), and every page stamped with a lost version
 * would turn into a miss, over and over. The embedded store is this process's alone, so is this table.
 */
function inProcessVersions(): VersionStore {
  const table = new Map<string, StoredValue>();
  function put(key: string, value: Buffer): void {
    if (!table.has(key) && table.size >= MAX_LOCAL_VERSIONS) table.delete(table.keys().next().value!);
    table.set(key, storedValue(value, 0));
  }
  return {
    kind: 'memory',
    getSync: (key) => table.get(key),
    get: (key) => Promise.resolve(table.get(key)),
    add(key, value) {
      if (table.has(key)) return Promise.resolve(false);
      put(key, value);
      return Promise.resolve(true);
    },
    set(key, value) {
      put(key, value);
      return Promise.resolve(true);
    },
    evictLocal() {},
  };
}

export function createGenerations(pages: CacheStore, keyPrefix: string, versionTtlMs: number): Generations {
  const store: VersionStore = pages.kind === 'memory' ? inProcessVersions() : pages;
  // Versions as this process last read or wrote them, until when they may be used without asking again.
  let cached = new Map<string, { value: string; until: number }>();
  // Moves whenever this process learns or sets any version, so a stamp found current before is checked again.
  let epoch = 0;
  // Parsed once per decoded entry (the in-process tier keeps the entry object, so a hot page parses once).
  const stamps = new WeakMap<CacheEntry, Stamp | null>();
  const keyOfTag = new Map<string, string>();
  const globalKey = versionKey(keyPrefix, undefined);

  function tagKey(tag: string): string {
    let k = keyOfTag.get(tag);
    if (k === undefined) {
      if (keyOfTag.size >= MAX_CACHED) keyOfTag.clear();
      k = versionKey(keyPrefix, tag);
      keyOfTag.set(tag, k);
    }
    return k;
  }

  function remember(key: string, value: string, now: number): void {
    epoch++;
    if (cached.size >= MAX_CACHED) cached = new Map();
    cached.set(key, { value, until: now + versionTtlMs });
  }

  function forget(key: string, value: string): void {
    if (cached.get(key)?.value === value) {
      epoch++;
      cached.delete(key);
    }
  }

  function stampOf(entry: CacheEntry): Stamp | null {
    let s = stamps.get(entry);
    if (s !== undefined) return s;
    const tags = entry.tags;
    const last = tags[tags.length - 1];
    s = null;
    if (last !== undefined && isStamp(last)) {
      const values = last.slice(STAMP.length).split(' ');
      const keys = [globalKey];
      for (let i = 0; i < tags.length - 1; i++) keys.push(tagKey(tags[i]!));
      // A stamp that does not fit its tags (written by something else) never matches: a miss, never a stale page.
      s = { keys, values: values.length === keys.length ? values : keys.map(() => ''), checkedEpoch: -1, validUntil: 0 };
    }
    stamps.set(entry, s);
    return s;
  }

  /** The version now, from the store (and remembered); '' when there is none (absent never matches a stamp). */
  async function read(key: string, now: number): Promise<string> {
    // Past the in-process tier: its copy could be older than versionTtlMs allows.
    store.evictLocal(key);
    const v = await store.get(key);
    const known = cached.get(key)?.value;
    if (v === undefined && store.suspect?.(key) === true) {
      // memcached is down, not empty: the version is unknown, and checks fail open (what this process knew,
      // else UNKNOWN, which every stamp matches), so the L1 goes on shielding the origin through the outage
      // (a purge cannot be recorded meanwhile anyway). Asked again after versionTtlMs.
      const value = known === undefined || known === '' ? UNKNOWN : known;
      remember(key, value, now);
      return value;
    }
    if (v === undefined && known !== undefined && known !== '' && known !== UNKNOWN) {
      // memcached lost a version this process knows (a restart emptied it): it is written back, so pages
      // stored here since with it stay current. Were it evicted alone after another process's purge, pages
      // stamped before that purge would match again: version items are tiny and read by every process once
      // per versionTtlMs, so memcached evicts them after the pages they guard.
      store.add(key, Buffer.from(known, 'latin1'), 0, 0).catch(noop);
      remember(key, known, now);
      return known;
    }
    const value = v === undefined ? '' : v.value.toString('latin1');
    remember(key, value, now);
    return value;
  }

  /**
   * The version a page stored now is stamped with, without waiting on the store, so a store is never delayed
   * (the next request right after a miss finds the page): the version this process knows, even past its
   * lifetime (a stamp older than the version now only makes the page a miss, never a stale hit); for a tag
   * unknown here, a new version, written with add. When the add finds another (another process made the
   * tag's version first), that one is read and learnt, and the pages stamped with ours are misses
   * elsewhere until stored again (at most once per tag per process). A page is never stamped with "no
   * version": if memcached later evicted a version a purge set, such a page would match again.
   */
  function versionForStamp(key: string, now: number): string {
    const c = cached.get(key);
    if (c !== undefined && c.value !== '' && c.value !== UNKNOWN) return currentPart(c.value);
    const fresh = freshVersion();
    remember(key, fresh, now);
    store.add(key, Buffer.from(fresh, 'latin1'), 0, 0).then(
      // Taken: learn the one another process made. Not asked (memcached down): forget ours, never stored.
      function added(result: boolean | undefined): Promise<unknown> | undefined {
        if (result === false) return read(key, Date.now());
        if (result === undefined) forget(key, fresh);
        return undefined;
      },
      noop,
    ).catch(noop);
    return fresh;
  }

  return {
    stamp(entry: CacheEntry): CacheEntry {
      const tags = plainTags(entry.tags);
      const now = Date.now();
      let stamp = `${STAMP}${versionForStamp(globalKey, now)}`;
      for (const tag of tags) stamp += ` ${versionForStamp(tagKey(tag), now)}`;
      return { ...entry, tags: [...tags, stamp] };
    },

    currentSync(entry: CacheEntry, now: number): Currency | undefined {
      const s = stampOf(entry);
      if (s === null) return 'current';
      // The hot-page case: nothing learnt since this stamp was last found current, and no copy expired.
      if (s.checkedEpoch === epoch && now < s.validUntil) return 'current';
      const keys = s.keys;
      const at = epoch;
      let until = Number.MAX_SAFE_INTEGER;
      let result: Currency = 'current';
      for (let i = 0; i < keys.length; i++) {
        const c = cached.get(keys[i]!);
        let value: string;
        if (c === undefined || c.until <= now) {
          // The embedded store is the truth and answers synchronously; memcached must be asked.
          if (store.kind !== 'memory') return undefined;
          const v = store.getSync(keys[i]!);
          value = v === undefined ? '' : v.value.toString('latin1');
          remember(keys[i]!, value, now);
          until = Math.min(until, now + versionTtlMs);
        } else {
          value = c.value;
          until = Math.min(until, c.until);
        }
        const r = value === s.values[i] ? 'current' : against(value, s.values[i]!);
        if (r === 'gone') return 'gone';
        if (r === 'stale') result = 'stale';
      }
      // Memoised only when current and no version was read meanwhile (the embedded store's reads move the epoch).
      if (result === 'current') {
        s.checkedEpoch = at === epoch ? epoch : -1;
        s.validUntil = until;
      }
      return result;
    },

    async current(entry: CacheEntry, now: number): Promise<Currency> {
      const s = stampOf(entry);
      if (s === null) return 'current';
      const values = await Promise.all(
        s.keys.map((k) => {
          const c = cached.get(k);
          return c !== undefined && c.until > now ? c.value : read(k, now);
        }),
      );
      let result: Currency = 'current';
      for (let i = 0; i < values.length; i++) {
        const r = against(values[i]!, s.values[i]!);
        if (r === 'gone') return 'gone';
        if (r === 'stale') result = 'stale';
      }
      return result;
    },

    async bump(tags: readonly string[] | 'all', soft = false): Promise<void> {
      const keys = tags === 'all' ? [globalKey] : tags.map(tagKey);
      const now = Date.now();
      await Promise.all(
        keys.map(async (k) => {
          let value = freshVersion();
          if (soft) {
            // The version it replaces (and those earlier soft purges retired) now mean "stale".
            const before = await read(k, now);
            if (before !== '') value = [value, ...before.split('|')].slice(0, 1 + MAX_RETIRED).join('|');
          }
          remember(k, value, now);
          await store.set(k, Buffer.from(value, 'latin1'), 0, 0);
        }),
      );
    },
  };
}
