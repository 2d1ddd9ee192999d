// Streaming an origin response to the client with back-pressure (stream.pipeline), for pass, for pages
// that are not shared, and for pages too large to store. Bodies are never buffered whole here.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CACHE_STATUS, CACHE_STATUS_HEADER, X_CACHE } from '../core/status';
import { clientResponseHeaders } from './forward';
import type { Transaction } from './transaction';

/**
 * Buffers a body up to `limit` bytes. Past the limit it stops reading and hands back what it has. With
 * `onChunk`, each chunk is also handed on as it arrives (a fill streaming to its client while it stores).
 */
export function collectUpTo(body: Readable, limit: number, onChunk?: (chunk: Buffer) => void): Promise<{ complete: boolean; chunks: Buffer[]; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    function cleanup(): void {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    }
    function onData(chunk: Buffer): void {
      chunks.push(chunk);
      size += chunk.length;
      onChunk?.(chunk);
      if (size > limit) {
        body.pause();
        cleanup();
        resolve({ complete: false, chunks, size });
      }
    }
    function onEnd(): void {
      cleanup();
      resolve({ complete: true, chunks, size });
    }
    function onError(err: Error): void {
      cleanup();
      reject(err);
    }
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

function streamDone(err: NodeJS.ErrnoException | null): void {
  // pipeline has already destroyed both sides; a client that went away is not an error worth more.
  void err;
}

/** The rest of an origin body whose head and first bytes this client already has. */
export function streamRest(res: Writable, body: Readable): void {
  pipeline(body, res, streamDone);
}

/** Writes the origin's head and streams its body (after `prefix`, bytes already read) to the client. */
export function streamResponse(tx: Transaction, response: Dispatcher.ResponseData, prefix: readonly Buffer[]): void {
  const res = tx.res;
  const headers = clientResponseHeaders(response.headers);
  headers.push(X_CACHE, tx.status, CACHE_STATUS, CACHE_STATUS_HEADER[tx.status]);
  res.writeHead(response.statusCode, headers);
  if (tx.req.method === 'HEAD') {
    response.body.dump().catch(streamDone);
    res.end();
    return;
  }
  for (const chunk of prefix) res.write(chunk);
  streamRest(res, response.body);
}
