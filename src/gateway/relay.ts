import type { ServerResponse } from 'node:http';

/** Helpers shared by the gateway's relays (Forwarder and the Anthropic handler). */

/** A provider's non-streamed answer larger than this is a 502 unless configured otherwise. */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** One SSE event larger than this cuts the stream unless configured otherwise. */
export const DEFAULT_MAX_STREAM_EVENT_BYTES = 16 * 1024 * 1024;

/** At most `limit` bytes of a body as text; the rest is not read. */
export async function readLimited(body: AsyncIterable<Uint8Array> & { destroy(): void }, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    parts.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8').slice(0, limit);
}

/** fn, called at most once. */
export function memo<T>(fn: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = fn();
      done = true;
    }
    return value;
  };
}

/** Resolves once the response can take more (or is gone). */
export function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
