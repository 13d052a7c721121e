import type { IncomingMessage } from 'node:http';

export interface UnreadBodyLimits {
  /** Read at most this much more of a refused body; a client declaring more is not waited for. */
  maxBytes: number;
  maxMs: number;
}

/**
 * Reads and throws away what the client is still sending of a request answered early (a body
 * over the limit, an unsupported type). Fastify answers those before reading the body and closes
 * the connection; closing a socket with unread data makes the kernel send a reset, so a client
 * still uploading sees EPIPE or ECONNRESET instead of the answer. Read to the end first, within
 * the limits: past them the answer goes out anyway and the client may see the reset.
 */
export function discardUnreadBody(
  request: IncomingMessage,
  limits: UnreadBodyLimits,
): Promise<void> {
  if (request.complete || request.destroyed) return Promise.resolve();
  const declared = Number(request.headers['content-length']);
  if (declared > limits.maxBytes) return Promise.resolve();
  return new Promise((resolve) => {
    let discarded = 0;
    const timer = setTimeout(done, limits.maxMs);
    function onData(chunk: Buffer): void {
      discarded += chunk.length;
      if (discarded > limits.maxBytes) done();
    }
    function done(): void {
      clearTimeout(timer);
      request.off('data', onData);
      request.off('end', done);
      request.off('close', done);
      request.off('error', done);
      resolve();
    }
    request.on('data', onData);
    request.once('end', done);
    request.once('close', done);
    request.once('error', done);
    request.resume();
  });
}
