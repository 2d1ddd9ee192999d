// Decoded copies of small compressed pages, for the clients that take only identity (curl, health checks,
// API clients, many bots, autocannon and wrk themselves): the page is inflated once and the copy served
// to every such client after, with a Content-Length, instead of inflating it again on every hit. Bounded
// in bytes (an LRU over the entries, counted with their overhead), keyed by the entry object the L1 shares
// among its hits, so a copy is never served for another version of the page and goes when its entry does.
import { LRUCache } from 'lru-cache';
import zlib from 'node:zlib';
import type { CacheEntry } from './entry';

/** Largest compressed body copied (larger ones stream through zlib as before: inflating them at once would block). */
const MAX_COMPRESSED_BYTES = 256 * 1024;
/** Largest decoded copy kept; a body that inflates past it is streamed (and a compressed bomb costs nothing here). */
const MAX_DECODED_BYTES = 2 * 1024 * 1024;
/** What a copy costs beyond its body (the entry object and its header list), counted against the bound. */
const COPY_OVERHEAD = 1024;

function inflate(coding: string, body: Buffer): Buffer | undefined {
  try {
    if (coding === 'gzip' || coding === 'x-gzip') return zlib.gunzipSync(body, { maxOutputLength: MAX_DECODED_BYTES });
    if (coding === 'br') return zlib.brotliDecompressSync(body, { maxOutputLength: MAX_DECODED_BYTES });
    if (coding === 'deflate') return zlib.inflateSync(body, { maxOutputLength: MAX_DECODED_BYTES });
  } catch {
    // Corrupt, or larger than the bound: the streaming path decides (and deletes a corrupt entry).
  }
  return undefined;
}

/** A compressed entry's headers for its decoded copy: without Content-Encoding, and without the ETag, which named the encoded bytes. */
function identityHeaders(src: readonly string[]): string[] {
  const headers: string[] = [];
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!;
    if (name === 'content-encoding' || name === 'etag') continue;
    headers.push(name, src[i + 1]!);
  }
  return headers;
}

export class DecodedCopies {
  private readonly lru: LRUCache<CacheEntry, CacheEntry> | undefined;

  /** `maxBytes` 0: no copies (every identity hit inflates as it streams). */
  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<CacheEntry, CacheEntry>({ maxSize: maxBytes, sizeCalculation: (copy) => copy.body.length + COPY_OVERHEAD })
        : undefined;
  }

  /**
   * The identity copy of `entry` (stored with `coding`): its headers without Content-Encoding and ETag (the
   * tag named the encoded bytes), its body inflated. Undefined when copies are off, the body is too large
   * or does not inflate: the caller streams it instead.
   */
  get(entry: CacheEntry, coding: string): CacheEntry | undefined {
    const lru = this.lru;
    if (lru === undefined) return undefined;
    const copy = lru.get(entry);
    if (copy !== undefined) return copy;
    if (entry.body.length > MAX_COMPRESSED_BYTES) return undefined;
    const body = inflate(coding, entry.body);
    if (body === undefined) return undefined;
    const made: CacheEntry = { ...entry, headers: identityHeaders(entry.headers), body };
    lru.set(entry, made);
    return made;
  }

  /**
   * Keeps `body`, the page as the origin sent it, as the identity copy of `entry` (the same page compressed
   * by the fill): a fill for a client that takes only identity then delivers without inflating what it has
   * just deflated.
   */
  seed(entry: CacheEntry, body: Buffer): void {
    const lru = this.lru;
    if (lru === undefined || body.length > MAX_DECODED_BYTES) return;
    lru.set(entry, { ...entry, headers: identityHeaders(entry.headers), body });
  }
}

/**
 * A door's decoded copies: a quarter of its in-process memory (the L1, or the embedded store) on top of it;
 * none with L1 off (memcached only), where an entry lives for one request and a copy would outlive its use.
 */
export function decodedCopiesFor(memoryBytes: number): DecodedCopies {
  return new DecodedCopies(memoryBytes > 0 ? Math.floor(memoryBytes / 4) : 0);
}
