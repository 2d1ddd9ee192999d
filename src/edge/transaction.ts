// The per-request state: one object of fixed shape, every field set in the constructor.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheEntry } from '../core/entry';
import type { Rule } from '../core/rules';
import type { CacheStatus } from '../core/status';
import type { EdgeContext } from './context';

export type StepName = 'recv' | 'hash' | 'lookup' | 'pass' | 'fetch' | 'deliver' | 'synth' | 'done';

export class Transaction {
  readonly ctx: EdgeContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The clock, read once per request (ms since the epoch). */
  readonly now: number;
  /** Normalised host ($host). */
  host: string;
  /** The raw request target's path and query ($request_uri). */
  requestUri: string;
  key: string;
  /** When `key` is a Vary variant's secondary key (variants.ts): the page's primary key, which holds the index. */
  variantOf: string | undefined;
  /** The cache rule this request matched (recv), or undefined. */
  rule: Rule | undefined;
  /** What the rule adds to the hashed text after requestUri ('' or '#device=mobile'). */
  keyVariant: string;
  /** Sent as https by a trusted proxy in front (--trust-proxy): keyed and forwarded as https. */
  secure: boolean;
  /** The client's own Cache-Control demands the origin's word (honoured no-cache / max-age): no coalescing. */
  revalidate: boolean;
  /** Looked up (GET/HEAD, no credentials) or passed. */
  cacheable: boolean;
  /** Forward the Cookie header? False when every cookie is on the ignore list. */
  keepCookies: boolean;
  /** A stored entry found by lookup (fresh or stale). */
  entry: CacheEntry | undefined;
  status: CacheStatus;
  /** Status and message of a response we generate ourselves. */
  synthCode: number;
  synthMessage: string;
  /** For the access log. */
  originMs: number;

  constructor(ctx: EdgeContext, req: IncomingMessage, res: ServerResponse, now: number) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.now = now;
    this.host = '';
    this.requestUri = '';
    this.key = '';
    this.variantOf = undefined;
    this.secure = false;
    this.rule = undefined;
    this.keyVariant = '';
    this.revalidate = false;
    this.cacheable = false;
    this.keepCookies = true;
    this.entry = undefined;
    this.status = 'MISS';
    this.synthCode = 0;
    this.synthMessage = '';
    this.originMs = 0;
  }
}
