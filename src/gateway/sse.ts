/**
 * Splits an SSE byte stream into whole events (each ending in a blank line),
 * so events can be relayed one by one as they arrive, and inspected. Holds at
 * most one partial event in memory.
 */
export class SseSplitter {
  private buffer = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array): string[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const events: string[] = [];
    for (;;) {
      const lf = this.buffer.indexOf('\n\n');
      const crlf = this.buffer.indexOf('\r\n\r\n');
      let end: number;
      if (lf === -1 && crlf === -1) break;
      if (crlf !== -1 && (lf === -1 || crlf < lf)) end = crlf + 4;
      else end = lf + 2;
      events.push(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end);
    }
    return events;
  }

  /** Whatever is left when the stream ends (an event without its closing blank line). */
  rest(): string {
    const r = this.buffer + this.decoder.decode();
    this.buffer = '';
    return r;
  }
}

/** The joined `data:` lines of an event, and its `event:` name. */
export function parseEvent(event: string): { name: string | null; data: string | null } {
  let name: string | null = null;
  const data: string[] = [];
  for (const raw of event.split(/\r?\n/)) {
    if (raw.startsWith('data:')) data.push(raw.slice(raw.startsWith('data: ') ? 6 : 5));
    else if (raw.startsWith('event:')) name = raw.slice(6).trim();
  }
  return { name, data: data.length ? data.join('\n') : null };
}
