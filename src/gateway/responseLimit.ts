/**
 * A provider's answer larger than UPSTREAM_MAX_RESPONSE_BYTES: the call is
 * aborted as soon as the limit is passed, so one provider (or one answer)
 * cannot make the gateway hold an unbounded body in memory.
 */
export class UpstreamResponseTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`upstream response larger than ${limit} bytes`);
    this.name = 'UpstreamResponseTooLarge';
  }
}

export function isResponseTooLarge(err: unknown): err is UpstreamResponseTooLarge {
  return err instanceof UpstreamResponseTooLarge;
}

/** Reads a body whole, failing with UpstreamResponseTooLarge (and destroying the body) past `limit` bytes. */
export async function readCapped(body: AsyncIterable<Uint8Array> & { destroy(err?: Error): void }, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      const err = new UpstreamResponseTooLarge(limit);
      body.destroy();
      throw err;
    }
    parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}
