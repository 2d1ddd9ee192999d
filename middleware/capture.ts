// Store-on-miss capture: wraps res.writeHead/res.write/res.end of one response (a miss only, never a hit)
// and records the status, headers and body exactly as they pass this layer. What to keep is the sink's call.
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** Why a captured response produced no body to store. */
export type CaptureSkipReason = 'not-wanted' | 'too-large' | 'aborted';

/**
 * Decides and receives. One sink per middleware (built in the factory); per-request state lives on the
 * capture, so the sink's methods are not closures over the request.
 */
export interface CaptureSink<T> {
  /** Headers are about to go out: status and headers as they are at this layer. True to buffer the body. */
  onHead(capture: ResponseCapture<T>): boolean;
  /** The response finished and the whole body is here (only after onHead said true, within the limit). */
  onBody(capture: ResponseCapture<T>, body: Buffer): void;
  /** The response ended with nothing to store; called exactly once instead of onBody. */
  onSkip(capture: ResponseCapture<T>, reason: CaptureSkipReason): void;
}

/**
 * The per-miss record, fixed shape. Headers are snapshotted when writeHead passes through this layer,
 * and the body is the bytes that pass through the same layer, so the two always describe the same
 * representation: with compression() mounted after the cache they are the compressed bytes and their
 * Content-Encoding; with compression() mounted before it they are the identity bytes, without the
 * Content-Encoding that compression adds below us (and adds again when a hit is delivered through it).
 */
export class ResponseCapture<T> {
  status = 0;
  headers: OutgoingHttpHeaders = {};
  private chunks: Buffer[] = [];
  private bytes = 0;
  private buffering = true;
  private headSeen = false;
  private settled = false;
  private tooLarge = false;

  constructor(
    readonly res: ServerResponse,
    readonly data: T,
    private readonly sink: CaptureSink<T>,
    private readonly maxBytes: number,
  ) {}

  head(statusCode: number): void {
    if (this.headSeen) return;
    this.headSeen = true;
    this.status = statusCode;
    this.headers = this.res.getHeaders();
    this.buffering = this.sink.onHead(this);
    if (!this.buffering) this.settle('not-wanted');
  }

  add(chunk: unknown, encoding: unknown): void {
    if (!this.buffering) return;
    let buf: Buffer;
    if (typeof chunk === 'string') {
      buf = Buffer.from(chunk, typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
    } else if (Buffer.isBuffer(chunk)) {
      // Kept by reference, not copied: Node holds the same Buffer until it is on the wire.
      buf = chunk;
    } else if (chunk instanceof Uint8Array) {
      buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      return;
    }
    if (buf.length === 0) return;
    this.bytes += buf.length;
    if (this.bytes > this.maxBytes) {
      // We buffer at most maxBytes, then stop storing; the response still streams to the client. Settled
      // now, not at finish, so requests waiting on this render go their own way at once.
      this.tooLarge = true;
      this.settle('too-large');
      return;
    }
    this.chunks.push(buf);
  }

  finish(): void {
    if (this.settled) return;
    if (!this.headSeen) {
      // end() without a body on a response whose headers were flushed by something we did not see.
      this.settle('not-wanted');
      return;
    }
    if (this.tooLarge) {
      this.settle('too-large');
      return;
    }
    this.settled = true;
    const body = Buffer.concat(this.chunks, this.bytes);
    this.chunks = [];
    this.sink.onBody(this, body);
  }

  abort(): void {
    if (!this.settled) this.settle('aborted');
  }

  private settle(reason: CaptureSkipReason): void {
    if (this.settled) return;
    this.settled = true;
    this.buffering = false;
    this.chunks = [];
    this.sink.onSkip(this, reason);
  }
}

type HeadersArg = OutgoingHttpHeaders | readonly OutgoingHttpHeader[] | undefined;

/**
 * Headers given to writeHead are applied with setHeader first (as on-headers, used by compression, does),
 * so the snapshot sees them; Node's writeHead would merge them the same way.
 */
function applyHeaders(res: ServerResponse, headers: HeadersArg): void {
  if (headers === undefined || headers === null) return;
  if (Array.isArray(headers)) {
    const list = headers as readonly OutgoingHttpHeader[];
    if (list.length > 0 && Array.isArray(list[0])) {
      for (const pair of list as unknown as readonly (readonly [string, OutgoingHttpHeader])[]) res.setHeader(pair[0], pair[1]);
      return;
    }
    // Flat [name, value, ...]: later values for the same name are kept as duplicates, like Node does.
    for (let i = 0; i < list.length; i += 2) res.removeHeader(String(list[i]));
    for (let i = 0; i < list.length; i += 2) res.appendHeader(String(list[i]), list[i + 1] as string | readonly string[]);
    return;
  }
  const obj = headers as OutgoingHttpHeaders;
  for (const name of Object.keys(obj)) {
    const value = obj[name];
    if (value !== undefined) res.setHeader(name, value);
  }
}

/**
 * Wraps the response's writeHead, write and end for one miss; the 'finish' and 'close' listeners end it.
 * The wrappers are the one place a per-request function is allowed (STYLE.md section 7): misses only.
 */
export function captureResponse<T>(res: ServerResponse, data: T, sink: CaptureSink<T>, maxBytes: number): ResponseCapture<T> {
  const capture = new ResponseCapture(res, data, sink, maxBytes);
  const writeHead = res.writeHead;
  const write = res.write;
  const end = res.end;

  function capturedWriteHead(this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (!res.headersSent) {
      // writeHead(statusCode[, statusMessage][, headers])
      const second = args[1];
      const headers = (typeof second === 'string' ? args[2] : second) as HeadersArg;
      args.length = typeof second === 'string' ? 2 : 1;
      applyHeaders(res, headers);
      capture.head(Number(args[0]));
    }
    return Reflect.apply(writeHead, this, args) as ServerResponse;
  }
  function capturedWrite(this: ServerResponse, ...args: unknown[]): boolean {
    // Node sends headers on the first write through writeHead, which is capturedWriteHead (a method lookup on res).
    capture.add(args[0], args[1]);
    return Reflect.apply(write, this, args) as boolean;
  }
  function capturedEnd(this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (typeof args[0] !== 'function') capture.add(args[0], args[1]);
    return Reflect.apply(end, this, args) as ServerResponse;
  }
  function onFinish(): void {
    capture.finish();
  }
  function onClose(): void {
    capture.abort();
  }

  res.writeHead = capturedWriteHead as ServerResponse['writeHead'];
  res.write = capturedWrite as ServerResponse['write'];
  res.end = capturedEnd as ServerResponse['end'];
  res.once('finish', onFinish);
  res.once('close', onClose);
  return capture;
}
