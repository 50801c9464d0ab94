/** An SSE event (or a line that never ends) longer than the splitter accepts. */
export class SseEventTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`SSE event larger than ${limit} bytes`);
    this.name = 'SseEventTooLarge';
  }
}

/**
 * Splits an SSE byte stream into whole events (each ending in a blank line),
 * so events can be relayed one by one as they arrive, and inspected. Holds at
 * most one partial event in memory, of at most `maxEventBytes` (measured in
 * decoded characters, which never outnumber the bytes): a longer one throws
 * SseEventTooLarge, so a provider sending one endless line cannot exhaust memory.
 */
export class SseSplitter {
  private buffer = '';
  private readonly decoder = new TextDecoder();

  constructor(private readonly maxEventBytes = Infinity) {}

  push(chunk: Uint8Array): string[] {
    // Where a separator could start that the last push did not see: a long event
    // arriving in many chunks is scanned once, not once per chunk.
    let from = Math.max(0, this.buffer.length - 3);
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const events: string[] = [];
    for (;;) {
      const lf = this.buffer.indexOf('\n\n', from);
      const crlf = this.buffer.indexOf('\r\n\r\n', from);
      let end: number;
      if (lf === -1 && crlf === -1) break;
      if (crlf !== -1 && (lf === -1 || crlf < lf)) end = crlf + 4;
      else end = lf + 2;
      if (end > this.maxEventBytes) throw new SseEventTooLarge(this.maxEventBytes);
      events.push(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end);
      from = 0;
    }
    if (this.buffer.length > this.maxEventBytes) throw new SseEventTooLarge(this.maxEventBytes);
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
