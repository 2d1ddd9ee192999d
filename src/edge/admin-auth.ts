// Who may use the admin port: the Host names it answers to (DNS rebinding), the bearer-token check (which
// reveals neither the token nor its length), and the per-address limit on wrong tokens (guessing).
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';

/**
 * A Host the admin port answers: none (HTTP/1.0 health checkers send none), an IP literal, `localhost`, or
 * the admin listen address itself. Any other name is refused: a page in a browser on this machine whose
 * DNS name was rebound to 127.0.0.1 sends its own name, so it cannot read the admin pages. A port is allowed.
 */
export function isAdminHost(host: string | undefined, listenHost: string): boolean {
  if (host === undefined || host === '') return true;
  let name = host.toLowerCase();
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    if (end < 0) return false;
    const rest = name.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return false;
    return isIP(name.slice(1, end)) === 6;
  }
  const colon = name.indexOf(':');
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(name.slice(colon + 1))) return false;
    name = name.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name === 'localhost' || isIP(name) === 4 || name === listenHost.toLowerCase();
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Compares an Authorization header with the token through fixed-length digests, so neither the time nor
 * an early length check tells a guesser how long the token is.
 */
export function tokenMatches(header: string | undefined, tokenDigest: Buffer): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice(7).trim()), tokenDigest);
}

export function tokenDigest(token: string): Buffer {
  return digest(token);
}

export interface GuessLimitOptions {
  /** Wrong tokens from one address within windowMs before it is refused (10). */
  readonly maxFailures?: number;
  /** The window, and how long an address that went over it is refused, in ms (60000). */
  readonly windowMs?: number;
  /** Addresses remembered at most (10000): the table is bounded, the least recent go first. */
  readonly maxAddresses?: number;
  readonly now?: () => number;
}

interface Tally {
  failures: number;
  since: number;
  blockedUntil: number;
}

/** Wrong-token counts per client address: past maxFailures in a window, that address waits. */
export class GuessLimit {
  private readonly table: LRUCache<string, Tally>;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(options: GuessLimitOptions = {}) {
    this.maxFailures = options.maxFailures ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.table = new LRUCache<string, Tally>({ max: options.maxAddresses ?? 10_000 });
  }

  /** Seconds `address` must wait before it may present a token again (0: it may now). */
  retryAfter(address: string): number {
    const t = this.table.get(address);
    if (t === undefined) return 0;
    const wait = t.blockedUntil - this.now();
    return wait > 0 ? Math.ceil(wait / 1000) : 0;
  }

  /** A wrong token from `address`; true when that made it go over the limit. */
  failed(address: string): boolean {
    const now = this.now();
    let t = this.table.get(address);
    if (t === undefined || now - t.since >= this.windowMs) {
      t = { failures: 0, since: now, blockedUntil: 0 };
      this.table.set(address, t);
    }
    t.failures++;
    if (t.failures < this.maxFailures) return false;
    t.blockedUntil = now + this.windowMs;
    return true;
  }

  get size(): number {
    return this.table.size;
  }
}

/**
 * Per-site purge tokens (--site-token example.com=TOKEN): a tenant's token purges only its own host. Kept
 * as SHA-256 digests; a presented token is hashed once and looked up, so neither timing nor length says
 * anything about the tokens (the digest of a guess is not under the guesser's control).
 */
export class SiteTokens {
  private readonly byDigest: Map<string, string>;

  /** `tokens`: host -> token. */
  constructor(tokens: ReadonlyMap<string, string> = new Map()) {
    this.byDigest = new Map();
    for (const [host, token] of tokens) this.byDigest.set(digest(token).toString('hex'), host);
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** The host whose token the Authorization header carries, or undefined. */
  siteFor(header: string | undefined): string | undefined {
    if (header === undefined || !header.startsWith('Bearer ') || this.byDigest.size === 0) return undefined;
    return this.byDigest.get(digest(header.slice(7).trim()).toString('hex'));
  }
}
