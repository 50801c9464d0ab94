/**
 * A fake upstream model provider: a real HTTP server on 127.0.0.1 that speaks the
 * OpenAI API the way a provider does. It is the ONLY fake in our tests; everything
 * on our side of the wire (gateway, database, Temporal) is real. A test points a
 * provider's base_url at `url` and scripts what the provider does next: answer,
 * fail, stall, or drop the connection at a chosen moment.
 *
 * Only node:http is used, so what the gateway sees are real sockets: a dropped
 * connection is a destroyed socket, and a client that gives up shows up here as a
 * closed response (recorded as `aborted`), which is how tests prove that
 * cancellation reached the provider.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenTracking, waiterOn } from './servers';

export type UsageStyle = 'openai' | 'anthropic' | 'none';

export interface Behavior {
  kind: 'ok' | 'error' | 'slow' | 'drop-before-headers' | 'drop-mid-stream' | 'hang';
  /** For 'error' (default 500). */
  status?: number;
  /** JSON body for 'error'; default an OpenAI error object. */
  errorBody?: unknown;
  /** For 'error': put the request's prompt text into error.message (privacy tests check it is never stored). */
  echoPromptInError?: boolean;
  /** 'slow': wait this long before sending headers. */
  headerDelayMs?: number;
  /** Wait between SSE events (default 0). */
  chunkDelayMs?: number;
  /** Number of content chunks in a stream (default 5). */
  chunks?: number;
  /** 'drop-mid-stream': destroy the socket after this many content chunks (default 2); the opening event is always sent. */
  dropAfterChunks?: number;
  /** How usage is reported (default 'openai'). */
  usage?: UsageStyle;
  /** Completion text, split across chunks (default 'Hello from the fake upstream.'). */
  content?: string;
  /** Total prompt tokens INCLUDING cached ones (default 11). */
  promptTokens?: number;
  completionTokens?: number; // default 7
  cachedTokens?: number; // default 0
  reasoningTokens?: number; // default 0
  /** Generate at most the request's max_tokens / max_completion_tokens / max_output_tokens, as a real provider does (default false). */
  honorMaxTokens?: boolean;
}

export type BehaviorInput = Partial<Behavior> & { kind: Behavior['kind'] };

export interface RecordedRequest {
  method: string;
  /** The request target as received (path plus any query). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; the raw text if it was not JSON; undefined if empty. */
  body: any;
  receivedAt: number;
  /** True once the client closed the connection before the response finished. */
  aborted: boolean;
}

export interface FakeUpstream {
  /** Base URL as a provider's base_url, ending in /v1. */
  url: string;
  requests: RecordedRequest[];
  /** Behaviour once the queue is empty (initially { kind: 'ok' }). */
  setDefault(b: BehaviorInput): void;
  /** Behaviours for the next routed requests, in order. 401/400/404 answers do not use one up. */
  enqueue(...b: BehaviorInput[]): void;
  /**
   * Sockets currently open, idle keep-alive ones included. Note that undici (fetch)
   * may open a fresh idle connection right after an abort, so prefer inFlight() or
   * waitForAborted() to prove a call ended.
   */
  openConnections(): number;
  /** Requests whose response has not yet finished or been closed. */
  inFlight(): number;
  /** Resolves once `count` requests have been recorded as aborted. */
  waitForAborted(count: number): Promise<void>;
  /** Resolves once `count` requests have arrived with their body read (so a test can abort at a known point). */
  waitForRequests(count: number): Promise<void>;
  close(): Promise<void>;
}

type Resolved = Required<Omit<Behavior, 'errorBody'>> & Pick<Behavior, 'errorBody'>;

const DEFAULTS: Omit<Resolved, 'kind'> = {
  status: 500, echoPromptInError: false, headerDelayMs: 0, chunkDelayMs: 0, chunks: 5, dropAfterChunks: 2,
  usage: 'openai', content: 'Hello from the fake upstream.', promptTokens: 11, completionTokens: 7, cachedTokens: 0, reasoningTokens: 0,
  honorMaxTokens: false,
};

/** Everything a route needs to answer one request. */
interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  body: any;
  b: Resolved;
  n: number; // per-server response counter, used in ids
  model: string;
  stream: boolean;
  includeUsage: boolean;
  /** Waits `ms`; false if the client went away meanwhile (the timer is then cleared). */
  delay(ms: number): Promise<boolean>;
  /** Destroys the socket on purpose (not recorded as a client abort). */
  drop(): void;
}

const openaiError = (message: string, type: string, code: string | null) => ({ error: { message, type, param: null, code } });

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Splits text into n pieces by code point so multi-byte characters survive (pieces may be empty). */
function split(text: string, n: number): string[] {
  const chars = Array.from(text);
  const count = Math.max(1, n);
  return Array.from({ length: count }, (_, i) =>
    chars.slice(Math.floor((i * chars.length) / count), Math.floor(((i + 1) * chars.length) / count)).join(''));
}

/** The prompt text of a chat, legacy completion or Responses request, for echoPromptInError. */
function promptText(body: any): string {
  const out: string[] = [];
  const visit = (v: any): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') visit(typeof v.text === 'string' ? v.text : v.content);
  };
  visit([body?.instructions, body?.messages, body?.prompt, body?.input]);
  return out.join('\n');
}

const cachedOf = (b: Resolved) => Math.min(b.cachedTokens, b.promptTokens);

/** Chat / legacy-completion usage; 'anthropic' counts only uncached input in input_tokens. */
function usageOf(b: Resolved): object | undefined {
  if (b.usage === 'none') return undefined;
  if (b.usage === 'anthropic') {
    return { input_tokens: b.promptTokens - cachedOf(b), cache_read_input_tokens: cachedOf(b), cache_creation_input_tokens: 0, output_tokens: b.completionTokens };
  }
  return {
    prompt_tokens: b.promptTokens, completion_tokens: b.completionTokens, total_tokens: b.promptTokens + b.completionTokens,
    prompt_tokens_details: { cached_tokens: cachedOf(b) }, completion_tokens_details: { reasoning_tokens: b.reasoningTokens },
  };
}

/** Responses API usage: input_tokens includes cached tokens, as OpenAI reports it. */
function responsesUsageOf(b: Resolved): object | undefined {
  if (b.usage !== 'openai') return usageOf(b);
  return {
    input_tokens: b.promptTokens, input_tokens_details: { cached_tokens: cachedOf(b) },
    output_tokens: b.completionTokens, output_tokens_details: { reasoning_tokens: b.reasoningTokens },
    total_tokens: b.promptTokens + b.completionTokens,
  };
}

const data = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Writes an SSE stream: head events, content events, tail events, waiting
 * chunkDelayMs between events. 'drop-mid-stream' destroys the socket after
 * dropAfterChunks content events, once they are flushed, so the client gets them.
 */
async function sse(c: Ctx, head: string[], parts: string[], tail: string[]): Promise<void> {
  c.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  c.res.flushHeaders();
  const events = [...head, ...parts, ...tail];
  const dropAt = c.b.kind === 'drop-mid-stream' ? head.length + Math.min(c.b.dropAfterChunks, parts.length) : -1;
  let flushed = Promise.resolve();
  for (const [i, event] of events.entries()) {
    if (i === dropAt) {
      await flushed;
      return c.drop();
    }
    if (i > 0 && !(await c.delay(c.b.chunkDelayMs))) return;
    flushed = new Promise((resolve) => c.res.write(event, () => resolve()));
  }
  c.res.end();
}

async function chat(c: Ctx): Promise<void> {
  const [id, created, usage] = [`chatcmpl-fake-${c.n}`, nowSeconds(), usageOf(c.b)];
  if (!c.stream) {
    const choice = { index: 0, message: { role: 'assistant', content: c.b.content }, logprobs: null, finish_reason: 'stop' };
    return json(c.res, 200, { id, object: 'chat.completion', created, model: c.model, choices: [choice], usage });
  }
  // Like OpenAI, with include_usage every chunk but the last carries `usage: null`.
  const chunk = (choice: object) => data({
    id, object: 'chat.completion.chunk', created, model: c.model,
    choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }], ...(c.includeUsage ? { usage: null } : {}),
  });
  const tail = [chunk({ delta: {}, finish_reason: 'stop' })];
  if (c.includeUsage && usage) tail.push(data({ id, object: 'chat.completion.chunk', created, model: c.model, choices: [], usage }));
  tail.push('data: [DONE]\n\n');
  const parts = split(c.b.content, c.b.chunks).map((content) => chunk({ delta: { content } }));
  await sse(c, [chunk({ delta: { role: 'assistant', content: '' } })], parts, tail);
}

async function legacyCompletion(c: Ctx): Promise<void> {
  const [id, created, usage] = [`cmpl-fake-${c.n}`, nowSeconds(), usageOf(c.b)];
  const body = (text: string, finish: string | null) => ({
    id, object: 'text_completion', created, model: c.model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
  });
  if (!c.stream) return json(c.res, 200, { ...body(c.b.content, 'stop'), usage });
  const tail = [data(body('', 'stop'))];
  if (c.includeUsage && usage) tail.push(data({ ...body('', null), choices: [], usage }));
  tail.push('data: [DONE]\n\n');
  await sse(c, [], split(c.b.content, c.b.chunks).map((t) => data(body(t, null))), tail);
}

async function responses(c: Ctx): Promise<void> {
  const [id, itemId] = [`resp_fake_${c.n}`, `msg_fake_${c.n}`];
  const full = {
    id, object: 'response', created_at: nowSeconds(), status: 'completed', model: c.model,
    output: [{ type: 'message', id: itemId, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: c.b.content, annotations: [] }] }],
    usage: responsesUsageOf(c.b),
  };
  if (!c.stream) return json(c.res, 200, full);
  let seq = 0; // events are built in stream order, so sequence numbers come out in order
  const ev = (type: string, payload: object) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...payload })}\n\n`;
  const where = { item_id: itemId, output_index: 0, content_index: 0 };
  const head = [ev('response.created', { response: { ...full, status: 'in_progress', output: [], usage: null } })];
  const parts = split(c.b.content, c.b.chunks).map((delta) => ev('response.output_text.delta', { ...where, delta }));
  await sse(c, head, parts, [ev('response.output_text.done', { ...where, text: c.b.content }), ev('response.completed', { response: full })]);
}

function embeddings(c: Ctx): void {
  const input = c.body?.input;
  // A string or an array of token ids is one input; any other array is one input per element.
  const inputs: unknown[] = Array.isArray(input) && !input.every((x) => typeof x === 'number') ? input : [input];
  const items = inputs.map((_, index) => ({
    object: 'embedding', index, embedding: Array.from({ length: 8 }, (_v, k) => Math.round(((index + 1) * 0.01 + k * 0.001) * 1e4) / 1e4),
  }));
  const usage = c.b.usage === 'none' ? undefined : { prompt_tokens: c.b.promptTokens, total_tokens: c.b.promptTokens };
  json(c.res, 200, { object: 'list', data: items, model: c.model, usage });
}

const models = (c: Ctx) => json(c.res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'fake' }] });

const ROUTES: Record<string, { handle: (c: Ctx) => void | Promise<void>; streams: boolean }> = {
  'POST /v1/chat/completions': { handle: chat, streams: true },
  'POST /v1/completions': { handle: legacyCompletion, streams: true },
  'POST /v1/responses': { handle: responses, streams: true },
  'POST /v1/embeddings': { handle: embeddings, streams: false },
  'GET /v1/models': { handle: models, streams: false },
};

export async function startFakeUpstream(opts: { apiKey?: string } = {}): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = [];
  const queue: BehaviorInput[] = [];
  let fallback: BehaviorInput = { kind: 'ok' };
  let counter = 0;
  let closing = false;
  let received = 0;
  let active = 0;
  const sockets = new Set<Socket>();
  const events = new EventEmitter();

  const nextBehavior = (): Resolved => {
    const input = queue.shift() ?? fallback;
    // Undefined fields fall back to the built-in defaults (not to setDefault's fields).
    return { ...DEFAULTS, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as Resolved;
  };

  const waitUntil = waiterOn(events);

  async function handle(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, state: { closed: boolean; dropped: boolean }) {
    const bufs: Buffer[] = [];
    try {
      for await (const chunk of req) bufs.push(chunk as Buffer);
    } catch {
      return; // the client went away while sending; the close handler records it
    }
    const raw = Buffer.concat(bufs).toString('utf8'); // decode once so split multi-byte characters survive
    let parsed = true;
    try {
      rec.body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      rec.body = raw;
      parsed = false;
    }
    received++;
    events.emit('request');

    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return json(res, 401, openaiError('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'));
    }
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const route = ROUTES[`${req.method} ${pathname}`];
    if (!route) return json(res, 404, openaiError(`Unknown request URL: ${req.method} ${pathname}.`, 'invalid_request_error', 'unknown_url'));
    if (!parsed) return json(res, 400, openaiError('We could not parse the JSON body of your request.', 'invalid_request_error', null));

    const b = nextBehavior();
    const body = rec.body;
    if (b.honorMaxTokens) {
      const limits = [body?.max_tokens, body?.max_completion_tokens, body?.max_output_tokens].filter((v): v is number => typeof v === 'number');
      if (limits.length) b.completionTokens = Math.min(b.completionTokens, ...limits);
    }
    const c: Ctx = {
      req, res, body, b, n: ++counter,
      model: typeof body?.model === 'string' ? body.model : 'fake-model',
      stream: route.streams && body?.stream === true,
      includeUsage: body?.stream_options?.include_usage === true,
      drop: () => {
        state.dropped = true;
        req.socket.destroy();
      },
      delay: (ms) => new Promise<boolean>((resolve) => {
        if (state.closed || ms <= 0) return resolve(!state.closed);
        const finish = (alive: boolean) => {
          clearTimeout(timer);
          res.off('close', onClose);
          resolve(alive);
        };
        const onClose = () => finish(false);
        const timer = setTimeout(() => finish(true), ms);
        res.once('close', onClose); // close() destroys sockets, so this also clears timers on shutdown
      }),
    };

    switch (b.kind) {
      case 'hang':
        return; // never answer; the client or close() ends it
      case 'drop-before-headers':
        return c.drop();
      case 'error': {
        const errorBody: any = structuredClone(b.errorBody ?? openaiError('The fake upstream failed.', 'server_error', 'server_error'));
        if (b.echoPromptInError && errorBody?.error && typeof errorBody.error === 'object') errorBody.error.message = promptText(body);
        return json(res, b.status, errorBody);
      }
      case 'slow':
        if (!(await c.delay(b.headerDelayMs))) return;
        break;
      case 'drop-mid-stream':
        if (!c.stream) return c.drop();
        break;
    }
    await route.handle(c);
  }

  const server = createServer((req, res) => {
    const rec: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, body: undefined, receivedAt: Date.now(), aborted: false };
    requests.push(rec);
    const state = { closed: false, dropped: false };
    active++;
    res.on('error', () => {}); // writes racing a client close are expected, not failures
    res.on('close', () => {
      state.closed = true;
      active--;
      if (res.writableFinished || state.dropped || closing) return;
      rec.aborted = true;
      // The client's socket is gone; forget it now so openConnections() agrees once waitForAborted resolves.
      if (req.socket.destroyed) sockets.delete(req.socket);
      events.emit('aborted');
    });
    handle(req, res, rec, state).catch((err: unknown) => {
      console.error('fakeUpstream: handler failed', err);
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
    openConnections: () => sockets.size,
    inFlight: () => active,
    waitForAborted: (count) => waitUntil('aborted', () => requests.filter((r) => r.aborted).length >= count),
    waitForRequests: (count) => waitUntil('request', () => received >= count),
    close: () => {
      closing = true;
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
