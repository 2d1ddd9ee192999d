// Typed errors with stable codes. Branch on `code` or `instanceof`, never on message text.

export type EdgeCacheErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_STORE'
  | 'ERR_STORE_TIMEOUT'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_ENTRY_DECODE'
  | 'ERR_ORIGIN'
  | 'ERR_ORIGIN_TIMEOUT'
  | 'ERR_ORIGIN_UNAVAILABLE'
  | 'ERR_ORIGIN_BUSY'
  | 'ERR_CLIENT_ABORT'
  | 'ERR_CLIENT_TIMEOUT'
  | 'ERR_BAD_REQUEST';

export class EdgeCacheError extends Error {
  readonly code: EdgeCacheErrorCode;
  constructor(code: EdgeCacheErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad option, flag or environment variable; the message names it, what was expected and what was given. */
export class ConfigError extends EdgeCacheError {
  constructor(message: string) {
    super('ERR_CONFIG', message);
  }
}

export class StoreError extends EdgeCacheError {
  constructor(message: string, options?: { cause?: unknown }, code: EdgeCacheErrorCode = 'ERR_STORE') {
    super(code, message, options);
  }
}

export class StoreTimeoutError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'ERR_STORE_TIMEOUT');
  }
}

export class StoreUnavailableError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'ERR_STORE_UNAVAILABLE');
  }
}

export class EntryDecodeError extends EdgeCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ENTRY_DECODE', message, options);
  }
}

export class OriginError extends EdgeCacheError {
  constructor(message: string, options?: { cause?: unknown }, code: EdgeCacheErrorCode = 'ERR_ORIGIN') {
    super(code, message, options);
  }
}

/** The origin did not answer in time: the edge answers 504 (or stale). */
export class OriginTimeoutError extends OriginError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'ERR_ORIGIN_TIMEOUT');
  }
}

/** The origin could not be reached or broke the connection: the edge answers 502 (or stale). */
export class OriginUnavailableError extends OriginError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'ERR_ORIGIN_UNAVAILABLE');
  }
}

/** Every connection to the origin is busy and its queue is full (--origin-max-queue): the edge answers 503 (or stale). */
export class OriginBusyError extends OriginError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'ERR_ORIGIN_BUSY');
  }
}

/** The client sent its request body too slowly (--client-body-timeout): the edge answers 408. */
export class ClientTimeoutError extends EdgeCacheError {
  constructor(message: string) {
    super('ERR_CLIENT_TIMEOUT', message);
  }
}

/** The client's request cannot be forwarded as it is (duplicate Host, a header undici refuses): a 400. */
export class BadRequestError extends EdgeCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BAD_REQUEST', message, options);
  }
}

export class ClientAbortError extends EdgeCacheError {
  constructor(message: string) {
    super('ERR_CLIENT_ABORT', message);
  }
}

/** Wraps an unknown thrown value into an Error without losing it. */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
