// The edge's fill: one origin request for a page to store (neutral headers, read up to maxEntryBytes,
// compressed once, written off the client's path), run by this process's leader under the shared fill
// lock (src/core/fill.ts). What may not be shared comes back as the fetching request's own response.
import { acceptsEncoding } from '../core/accept';
import { compressEntry, entryEncoding, mayCompress, withVaryAcceptEncoding } from '../core/compress';
import { pushCacheHeaders, writeHeadList } from '../core/deliver';
import type { IncomingHttpHeaders } from 'node:http';
import CachePolicy from 'http-cache-semantics';
import { ENTRY_ETAG_WEAKENED, ENTRY_NO_TRANSFORM, entryHeader, hasValidator } from '../core/entry';
import type { CacheEntry } from '../core/entry';
import { endFill, takeFillTurn } from '../core/fill';
import type { FillEnd } from '../core/fill';
import { headerString, storableHeaders } from '../core/headers';
import { decideStore, isResponseReason } from '../core/policy';
import { ruleTags, storePolicyFor, withRuleHeaders } from '../core/rules';
import { pageTags } from '../core/tags';
import type { EdgeContext, FetchOutcome } from './context';
import { originRequestHeaders } from './forward';
import { classifyOriginError } from './origins';
import { storeEntry } from './store';
import { collectUpTo, streamRest } from './stream';
import type { Transaction } from './transaction';

const NOT_WRITTEN: Promise<boolean> = Promise.resolve(false);

/**
 * RFC 9111 §4.3.1: the stale stored page a fill may revalidate instead of fetching whole: an envelope entry
 * (raw ones have no headers to validate with) that has an ETag or Last-Modified.
 */
function revalidatable(entry: CacheEntry | undefined): CacheEntry | undefined {
  return entry !== undefined && entry.format === 'envelope' && entry.storedAt !== 0 && hasValidator(entry.headers) ? entry : undefined;
}

/**
 * RFC 9111 §4.3.1: the stored ETag goes out in If-None-Match and Last-Modified in If-Modified-Since. Written
 * here rather than with the library's revalidationHeaders(): that sends the tag as stored, and a tag the
 * cache itself weakened when it compressed the body (ENTRY_ETAG_WEAKENED) must go back as the origin's
 * strong one, which origins comparing strings would otherwise never match; and it sends none for the
 * statuses it does not know, which `--cache-statuses any` stores.
 */
function addValidators(headers: string[], entry: CacheEntry): void {
  let etag = entryHeader(entry, 'etag');
  if (etag !== undefined && ((entry.flags ?? 0) & ENTRY_ETAG_WEAKENED) !== 0 && etag.startsWith('W/')) etag = etag.slice(2);
  if (etag !== undefined) headers.push('if-none-match', etag);
  const lm = entryHeader(entry, 'last-modified');
  if (lm !== undefined) headers.push('if-modified-since', lm);
}

/** Response headers a 304 never replaces in the stored page (RFC 9111 §3.2): they describe the stored body as stored. */
const KEPT_ON_UPDATE: ReadonlySet<string> = new Set(['content-length', 'content-encoding', 'content-range', 'transfer-encoding', 'vary']);

function headerObject(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    const prev = out[name];
    out[name] = prev === undefined ? flat[i + 1]! : `${prev}, ${flat[i + 1]!}`;
  }
  return out;
}

/**
 * RFC 9111 §4.3.4: the stored page refreshed by a 304, or undefined when the 304 does not describe it (its
 * validators differ: the library's revalidatedPolicy() says whether it matches) or the merged response may
 * no longer be stored; the caller then fetches the page whole. Headers are merged as §3.2 says: each field
 * of the 304 replaces the stored one (the library only replaces fields already stored, §3.2 adds new ones
 * too), except those describing the stored body; freshness is decided again from the merged headers.
 */
function refreshed(ctx: EdgeContext, tx: Transaction, stale: CacheEntry, notModified: IncomingHttpHeaders): CacheEntry | undefined {
  const stored = headerObject(stale.headers);
  const req = { method: 'GET', url: tx.requestUri, headers: {} };
  const old = new CachePolicy(req, { status: stale.status, headers: stored }, { shared: true });
  const update: Record<string, string> = {};
  for (const name of Object.keys(notModified)) {
    const v = headerString(notModified[name]);
    if (v !== undefined) update[name] = v;
  }
  if (!old.revalidatedPolicy(req, { status: 304, headers: update }).matches) return undefined;
  const merged: Record<string, string> = { ...stored };
  const weakened = ((stale.flags ?? 0) & ENTRY_ETAG_WEAKENED) !== 0;
  for (const name of Object.keys(update)) {
    if (KEPT_ON_UPDATE.has(name) || (name === 'etag' && weakened)) continue;
    merged[name] = update[name]!;
  }
  const decision = decideStore(
    { method: 'GET', url: tx.requestUri, headers: tx.req.headers, cookieFree: tx.req.headers.cookie === undefined || !tx.keepCookies },
    { status: stale.status, headers: merged },
    storePolicyFor(tx.rule, ctx.opts.policy, stale.status),
  );
  if (!decision.store) return undefined;
  return {
    status: stale.status,
    headers: withRuleHeaders(tx.rule, storableHeaders(merged, ctx.opts.policy.targetedField)),
    body: stale.body,
    storedAt: tx.now - decision.initialAgeSeconds * 1000,
    ttlSeconds: decision.ttlSeconds + decision.initialAgeSeconds,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds,
    tags: decision.tags.length > 0 ? pageTags(ruleTags(tx.rule, decision.tags, tx.host, tx.requestUri), tx.host, tx.requestUri) : stale.tags,
    format: stale.format,
    flags: decision.flags | ((stale.flags ?? 0) & ENTRY_ETAG_WEAKENED),
  };
}

/**
 * One origin fill: GET (also for a HEAD client, as nginx's proxy_cache_convert_head), neutral headers; a
 * conditional GET when a stale stored page has a validator (RFC 9111 §4.3), unless `conditional` is false
 * (the retry after a 304 that could not be used).
 */
export async function fillFromOrigin(ctx: EdgeContext, tx: Transaction, conditional = true): Promise<FetchOutcome> {
  const t0 = performance.now();
  const stale = conditional ? revalidatable(tx.entry) : undefined;
  const headers = originRequestHeaders(tx, true);
  if (stale !== undefined) addValidators(headers, stale);
  const response = await ctx.origins.request({
    method: 'GET',
    path: tx.requestUri,
    headers,
    body: null,
    retryable: true,
  });
  tx.originMs = performance.now() - t0;
  if (stale !== undefined) {
    if (response.statusCode === 304) {
      await response.body.dump();
      const entry = refreshed(ctx, tx, stale, response.headers);
      if (entry === undefined) {
        ctx.metrics.revalidations.labels('failed').inc();
        ctx.metrics.notStored.labels('not-modified-mismatch').inc();
        return fillFromOrigin(ctx, tx, false);
      }
      ctx.metrics.revalidations.labels('not-modified').inc();
      const written = storeEntry(ctx, tx, entry, response.headers);
      return { kind: 'page', entry, stored: written !== undefined, written: written ?? NOT_WRITTEN, revalidated: true, requestHeaders: tx.req.headers };
    }
    ctx.metrics.revalidations.labels(response.statusCode >= 500 ? 'failed' : 'modified').inc();
  }
  const decision = decideStore(    // Only ignored cookies (never forwarded) or none: the origin rendered the cookie-less variant.
    { method: 'GET', url: tx.requestUri, headers: tx.req.headers, cookieFree: tx.req.headers.cookie === undefined || !tx.keepCookies },
    { status: response.statusCode, headers: response.headers },
    storePolicyFor(tx.rule, ctx.opts.policy, response.statusCode),
  );
  if (!decision.store) {
    ctx.metrics.notStored.labels(decision.reason).inc();
    ctx.stats.topNotStored.record(tx.host + tx.requestUri, decision.reason);
    return { kind: 'own', response, prefix: [], uncacheable: isResponseReason(decision.reason) && response.statusCode < 500 };
  }
  const limit = ctx.opts.maxEntryBytes;
  const declared = Number(response.headers['content-length'] ?? -1);
  if (declared > limit) {
    ctx.metrics.notStored.labels('too-large').inc();
    ctx.stats.topNotStored.record(tx.host + tx.requestUri, 'too-large');
    return { kind: 'own', response, prefix: [], uncacheable: true };
  }
  const storedHeaders = withRuleHeaders(tx.rule, storableHeaders(response.headers, ctx.opts.policy.targetedField));
  const noTransform = (decision.flags & ENTRY_NO_TRANSFORM) !== 0;
  // The fetching client gets the page as it arrives, while it is collected to be stored (nginx's
  // proxy_cache and Varnish's streaming): storing never delays its first byte.
  const stream = streamsToClient(tx, stale, response.headers) ? new MissStream(ctx, tx, response.statusCode, storedHeaders, declared, decision.initialAgeSeconds, noTransform) : undefined;
  let body: Awaited<ReturnType<typeof collectUpTo>>;
  try {
    body = await collectUpTo(response.body, limit, stream?.onChunk);
  } catch (err) {
    // A body cut off mid-way is the origin failing (stale-if-error applies), not a bug here. A client
    // whose head is already out has its response cut (synth destroys it): it sees the failure.
    throw classifyOriginError(err, 'origin body');
  }
  const streaming = stream?.started === true;
  if (!body.complete) {
    // Over the limit: not stored, and the rest of the body streams to this client (never buffered whole).
    ctx.metrics.notStored.labels('too-large').inc();
    ctx.stats.topNotStored.record(tx.host + tx.requestUri, 'too-large');
    if (streaming) {
      // (Only a body without a Content-Length runs over: nothing was held back from it.)
      streamRest(tx.res, response.body);
      return { kind: 'own', response, prefix: [], uncacheable: true, delivered: true };
    }
    return { kind: 'own', response, prefix: body.chunks, uncacheable: true };
  }
  const fetched: CacheEntry = {
    status: response.statusCode,
    headers: storedHeaders,
    body: body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks, body.size),
    // RFC 9111 §4.2.3: dated back by the Age it arrived with and counted from when the request came in
    // (the origin's response time is part of the age); delivered Age and freshness count from this point.
    storedAt: tx.now - decision.initialAgeSeconds * 1000,
    ttlSeconds: decision.ttlSeconds + decision.initialAgeSeconds,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds,
    // The response's and the rule's tags, and the automatic site and path-prefix ones (purge --site / --prefix).
    tags: pageTags(ruleTags(tx.rule, decision.tags, tx.host, tx.requestUri), tx.host, tx.requestUri),
    format: ctx.cache.format,
    flags: decision.flags,
  };
  // Compressed once here, then sent as stored to every client that accepts it; a no-transform response
  // never is (RFC 9111 §5.2.2.6: stored and served exactly as received).
  let entry = noTransform ? fetched : await compressEntry(fetched, ctx.opts.compression, ctx.opts.compressMinBytes);
  if (entry !== fetched) {
    // compressEntry made a strong ETag weak (another representation): remember it, so a revalidation sends
    // the origin's own strong tag back.
    const before = entryHeader(fetched, 'etag');
    if (before !== undefined && !before.startsWith('W/')) entry = { ...entry, flags: decision.flags | ENTRY_ETAG_WEAKENED };
    // This client takes only identity: it gets the body as fetched, not the compressed one inflated again.
    if (!acceptsEncoding(tx.req.headers['accept-encoding'], entryEncoding(entry))) ctx.decoded.seed(entry, fetched.body);
  }
  const written = storeEntry(ctx, tx, entry, response.headers);
  // Its last byte only now, after this turn's memcached writes have gone out (their flush was queued
  // first: setImmediate runs in order): the page is in L1 and its write on the wire, so the request this
  // client sends next finds it on any worker or edge, as it would had the miss not streamed.
  if (streaming) setImmediate(finishStream, stream!);
  return { kind: 'page', entry, stored: written !== undefined, written: written ?? NOT_WRITTEN, requestHeaders: tx.req.headers, delivered: streaming };
}

function finishStream(stream: MissStream): void {
  stream.finish();
}

/**
 * Whether the fetching client takes the page as it streams from the origin: a plain GET (no range and no
 * conditional, which are answered from the stored page) for a page not stored at all, whose coding (if the
 * origin sent one) the client accepts. A background refresh has no client waiting (a stale page is stored).
 */
function streamsToClient(tx: Transaction, stale: CacheEntry | undefined, headers: IncomingHttpHeaders): boolean {
  const h = tx.req.headers;
  if (tx.req.method !== 'GET' || stale !== undefined || tx.entry !== undefined || tx.res.headersSent) return false;
  if (h.range !== undefined || h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined) return false;
  const coding = headerString(headers['content-encoding'])?.trim().toLowerCase();
  return coding === undefined || coding === 'identity' || acceptsEncoding(h['accept-encoding'], coding);
}

/**
 * A miss streamed to its client. Decided at the first chunk of the body: a client that takes the coding
 * the page is stored in, when that chunk is the whole page, gets the stored (compressed) page at once, as
 * a hit would, since there is nothing to wait for; every other client gets the origin's bytes as they
 * arrive (a client that takes gzip then gets the page uncompressed, this once: it is compressed whole
 * when stored, for the clients after it).
 */
class MissStream {
  started = false;
  private decided = false;
  /**
   * The last byte received, held back until the page is stored: a client that has the whole page (its
   * Content-Length reached) may ask again at once, and must find it stored then. A chunked response needs
   * none: its client waits for the last chunk, which end() sends.
   */
  private held: Buffer | undefined = undefined;
  /** Body bytes received so far. */
  private received = 0;
  readonly onChunk: (chunk: Buffer) => void;
  constructor(
    private readonly ctx: EdgeContext,
    private readonly tx: Transaction,
    private readonly status: number,
    private readonly stored: readonly string[],
    private readonly declared: number,
    private readonly age: number,
    private readonly noTransform: boolean,
  ) {
    this.onChunk = (chunk: Buffer): void => {
      if (!this.decided) this.decide(chunk.length);
      if (!this.started || chunk.length === 0) return;
      const res = this.tx.res;
      this.received += chunk.length;
      // Chunks go out whole; the one that completes the declared length keeps its last byte back (the
      // origin's parser ends the body there, so it is the last chunk).
      if (this.declared < 0 || this.received < this.declared) {
        res.write(chunk);
        return;
      }
      this.held = chunk.subarray(chunk.length - 1);
      if (chunk.length > 1) res.write(chunk.subarray(0, chunk.length - 1));
    };
  }

  /** The held byte and the end of the response, once the page is stored. */
  finish(): void {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) this.tx.res.end(held);
    else this.tx.res.end();
  }

  private decide(firstChunkBytes: number): void {
    this.decided = true;
    const { ctx, tx } = this;
    const coding = ctx.opts.compression;
    const compressed = !this.noTransform && mayCompress(this.stored, coding, ctx.opts.compressMinBytes, this.declared >= 0 ? this.declared : undefined);
    if (compressed && firstChunkBytes === this.declared && acceptsEncoding(tx.req.headers['accept-encoding'], coding)) return;
    this.started = this.writeHead(compressed);
  }

  /**
   * The head the stored page will have (as a hit sends it), Vary: Accept-Encoding when it is stored
   * compressed, its Content-Length when the origin declared one, and Age (when it came with one), X-Cache
   * and Cache-Status. False when Node refuses a header: the page is then delivered from its entry, which
   * answers for it.
   */
  private writeHead(compressed: boolean): boolean {
    const h = this.stored.slice();
    if (compressed) withVaryAcceptEncoding(h);
    if (this.declared >= 0 && this.status !== 204) h.push('content-length', String(this.declared));
    pushCacheHeaders(h, this.tx.status, this.age);
    try {
      writeHeadList(this.tx.res, this.status, h);
    } catch {
      return false;
    }
    return true;
  }
}

/**
 * The fill of this process's leader for a key. With a shared store it first takes its turn under the
 * key's fill lock (src/core/fill.ts): another edge or worker's page may arrive meanwhile, else it fetches,
 * holding the lock until the page is in memcached so waiters find it when the lock goes.
 */
export async function fillShared(ctx: EdgeContext, tx: Transaction): Promise<FetchOutcome> {
  const { cache, opts } = ctx;
  // No lock for a client demanding the origin's word: waiting could hand it the page another fill just stored.
  if (!ctx.sharedStore || !opts.coalesce || tx.revalidate) return fillFromOrigin(ctx, tx);
  const turn = await takeFillTurn(cache, tx.key, opts.lockTimeoutMs);
  if (turn.kind === 'found') {
    ctx.metrics.coalesced.inc();
    // Found under this very key: a variant key selects one variant, so whoever joined this key wants it too.
    return { kind: 'page', entry: turn.entry, stored: false, requestHeaders: tx.req.headers };
  }
  let outcome: FetchOutcome;
  try {
    outcome = await fillFromOrigin(ctx, tx);
  } catch (err) {
    endFill(cache, tx.key, turn.locked, 'other');
    throw err;
  }
  const end: FillEnd = outcome.kind === 'own' && outcome.uncacheable ? 'uncacheable' : 'stored';
  if (turn.locked && outcome.kind === 'page' && outcome.stored && outcome.written !== undefined) {
    // The lock is held until the page is in memcached, so waiters find it when the lock goes; the client
    // is not held for that write (on a stalled node it would pay the write's timeout too).
    outcome.written.then(
      () => endFill(cache, tx.key, true, end),
      () => endFill(cache, tx.key, true, end),
    );
  } else {
    endFill(cache, tx.key, turn.locked, end);
  }
  return outcome;
}
