/**
 * A fake Anthropic provider: a real HTTP server on 127.0.0.1 speaking the
 * Messages API (JSON and SSE, count_tokens, errors in Anthropic's shape,
 * overloaded 529, slow and dropped streams), beside fakeUpstream.ts's OpenAI
 * one. A test points a provider of kind 'anthropic' at `url` and scripts what
 * it does next. Only node:http: what the gateway sees are real sockets.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenTracking, waiterOn } from './servers';

export interface AnthropicBehavior {
  kind: 'ok' | 'error' | 'overloaded' | 'slow' | 'drop-before-headers' | 'drop-mid-stream' | 'hang';
  /** 'error': status (default 500) and Anthropic error type (default api_error). */
  status?: number;
  errorType?: string;
  /** 'error': put the request's text into error.message (privacy tests check it is never stored). */
  echoPromptInError?: boolean;
  headerDelayMs?: number;
  chunkDelayMs?: number;
  /** Text deltas in a stream (default 4). */
  chunks?: number;
  /** 'drop-mid-stream': cut after this many text deltas (default 2). */
  dropAfterChunks?: number;
  content?: string;
  /** Answer with a tool_use block (after the text, if any) and stop_reason tool_use. */
  toolUse?: { id?: string; name: string; input: unknown };
  /** Uncached input tokens (Anthropic's input_tokens, default 20). */
  inputTokens?: number;
  cacheReadTokens?: number;
  cacheWrite5mTokens?: number;
  cacheWrite1hTokens?: number;
  outputTokens?: number; // default 9
  stopReason?: string;
  /** message_delta's usage carries output_tokens only (older API versions); default: the full cumulative usage. */
  deltaOutputOnly?: boolean;
}

export interface RecordedAnthropicRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  aborted: boolean;
}

export interface FakeAnthropic {
  /** Base URL as a provider's base_url, ending in /v1. */
  url: string;
  requests: RecordedAnthropicRequest[];
  setDefault(b: AnthropicBehavior): void;
  enqueue(...b: AnthropicBehavior[]): void;
  waitForAborted(count: number): Promise<void>;
  waitForRequests(count: number): Promise<void>;
  inFlight(): number;
  close(): Promise<void>;
}

const error = (type: string, message: string) => ({ type: 'error', error: { type, message } });

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': 'req_fake' });
  res.end(text);
}

function textOf(v: any): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(textOf).join('\n');
  if (v && typeof v === 'object') {
    if (typeof v.text === 'string') return v.text;
    if (v.content !== undefined) return textOf(v.content);
    if (v.input !== undefined) return JSON.stringify(v.input);
  }
  return '';
}

export function usageOf(b: AnthropicBehavior) {
  const w5 = b.cacheWrite5mTokens ?? 0;
  const w1 = b.cacheWrite1hTokens ?? 0;
  return {
    input_tokens: b.inputTokens ?? 20,
    cache_creation_input_tokens: w5 + w1,
    cache_read_input_tokens: b.cacheReadTokens ?? 0,
    cache_creation: { ephemeral_5m_input_tokens: w5, ephemeral_1h_input_tokens: w1 },
    output_tokens: b.outputTokens ?? 9,
    service_tier: 'standard',
  };
}

function split(text: string, n: number): string[] {
  const chars = Array.from(text);
  const count = Math.max(1, n);
  return Array.from({ length: count }, (_, i) => chars.slice(Math.floor((i * chars.length) / count), Math.floor(((i + 1) * chars.length) / count)).join(''));
}

const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

export async function startFakeAnthropic(opts: { apiKey?: string } = {}): Promise<FakeAnthropic> {
  const requests: RecordedAnthropicRequest[] = [];
  const queue: AnthropicBehavior[] = [];
  let fallback: AnthropicBehavior = { kind: 'ok' };
  let counter = 0;
  let closing = false;
  let received = 0;
  let active = 0;
  const sockets = new Set<Socket>();
  const events = new EventEmitter();
  const waitUntil = waiterOn(events);

  async function handle(req: IncomingMessage, res: ServerResponse, rec: RecordedAnthropicRequest, state: { closed: boolean; dropped: boolean }) {
    const bufs: Buffer[] = [];
    try {
      for await (const chunk of req) bufs.push(chunk as Buffer);
    } catch {
      return;
    }
    const raw = Buffer.concat(bufs).toString('utf8');
    try {
      rec.body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      rec.body = raw;
    }
    received++;
    events.emit('request');
    if (opts.apiKey !== undefined && req.headers['x-api-key'] !== opts.apiKey) return json(res, 401, error('authentication_error', 'invalid x-api-key'));
    if (!req.headers['anthropic-version']) return json(res, 400, error('invalid_request_error', 'anthropic-version: header is required'));
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const body = rec.body;
    if (req.method === 'POST' && pathname === '/v1/messages/count_tokens') {
      return json(res, 200, { input_tokens: Math.max(1, Math.ceil(textOf([body?.system, body?.messages, body?.tools]).length / 4)) });
    }
    if (req.method !== 'POST' || pathname !== '/v1/messages') return json(res, 404, error('not_found_error', 'Not found'));
    if (typeof body !== 'object' || typeof body?.max_tokens !== 'number') return json(res, 400, error('invalid_request_error', 'max_tokens: Field required'));

    const b = { ...(queue.shift() ?? fallback) };
    const n = ++counter;
    const drop = () => {
      state.dropped = true;
      req.socket.destroy();
    };
    const delay = (ms: number) =>
      new Promise<boolean>((resolve) => {
        if (state.closed || ms <= 0) return resolve(!state.closed);
        const timer = setTimeout(() => {
          res.off('close', onClose);
          resolve(true);
        }, ms);
        const onClose = () => {
          clearTimeout(timer);
          resolve(false);
        };
        res.once('close', onClose);
      });
    switch (b.kind) {
      case 'hang':
        return;
      case 'drop-before-headers':
        return drop();
      case 'overloaded':
        return json(res, 529, error('overloaded_error', 'Overloaded'));
      case 'error': {
        const message = b.echoPromptInError ? textOf([body?.system, body?.messages, body?.tools, body?.metadata?.user_id]) : 'The fake provider failed.';
        return json(res, b.status ?? 500, error(b.errorType ?? 'api_error', message));
      }
      case 'slow':
        if (!(await delay(b.headerDelayMs ?? 0))) return;
        break;
      case 'drop-mid-stream':
        if (body.stream !== true) return drop();
        break;
    }
    const content = b.content ?? 'Hello from the fake Anthropic.';
    const usage = usageOf(b);
    const id = `msg_fake_${n}`;
    const stopReason = b.stopReason ?? (b.toolUse ? 'tool_use' : 'end_turn');
    const toolId = b.toolUse?.id ?? `toolu_fake_${n}`;
    if (body.stream !== true) {
      const blocks: object[] = [];
      if (content) blocks.push({ type: 'text', text: content });
      if (b.toolUse) blocks.push({ type: 'tool_use', id: toolId, name: b.toolUse.name, input: b.toolUse.input });
      return json(res, 200, { id, type: 'message', role: 'assistant', model: body.model, content: blocks, stop_reason: stopReason, stop_sequence: null, usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const startUsage = { ...usage, output_tokens: 1 };
    const head = [ev('message_start', { message: { id, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: startUsage } }), ev('ping', {})];
    const parts: string[] = [];
    let index = 0;
    if (content) {
      parts.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
      for (const t of split(content, b.chunks ?? 4)) parts.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: t } }));
      parts.push(ev('content_block_stop', { index }));
      index++;
    }
    if (b.toolUse) {
      parts.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: toolId, name: b.toolUse.name, input: {} } }));
      const args = JSON.stringify(b.toolUse.input);
      for (const p of split(args, 3)) parts.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
      parts.push(ev('content_block_stop', { index }));
    }
    const deltaUsage = b.deltaOutputOnly ? { output_tokens: usage.output_tokens } : usage;
    const tail = [ev('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: deltaUsage }), ev('message_stop', {})];
    const all = [...head, ...parts, ...tail];
    // Cut after the opening events, the first block start and dropAfterChunks deltas.
    const dropAt = b.kind === 'drop-mid-stream' ? head.length + 1 + (b.dropAfterChunks ?? 2) : -1;
    let flushed = Promise.resolve();
    for (const [i, e] of all.entries()) {
      if (i === dropAt) {
        await flushed;
        return drop();
      }
      if (i > 0 && !(await delay(b.chunkDelayMs ?? 0))) return;
      flushed = new Promise((resolve) => res.write(e, () => resolve()));
    }
    res.end();
  }

  const server = createServer((req, res) => {
    const rec: RecordedAnthropicRequest = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, body: undefined, aborted: false };
    requests.push(rec);
    const state = { closed: false, dropped: false };
    active++;
    res.on('error', () => {});
    res.on('close', () => {
      state.closed = true;
      active--;
      if (res.writableFinished || state.dropped || closing) return;
      rec.aborted = true;
      events.emit('aborted');
    });
    handle(req, res, rec, state).catch(() => {
      state.dropped = true;
      req.socket.destroy();
    });
  });
  const port = await listenTracking(server, sockets);
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setDefault: (b) => void (fallback = b),
    enqueue: (...b) => void queue.push(...b),
    waitForAborted: (count) => waitUntil('aborted', () => requests.filter((r) => r.aborted).length >= count),
    waitForRequests: (count) => waitUntil('request', () => received >= count),
    inFlight: () => active,
    close: () => {
      closing = true;
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
