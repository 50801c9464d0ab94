import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The local demo provider that `mixroute dev` starts on loopback so that a
 * fresh checkout shows the main job (forward, meter, bill) with no provider
 * account and no network. It speaks enough of two real APIs for the gateway
 * and the official SDKs:
 *   - OpenAI: POST /v1/chat/completions (streamed or not; usage in the last
 *     chunk with stream_options.include_usage), GET /v1/models;
 *   - Anthropic: POST /anthropic/v1/messages (streamed or not) and, like
 *     Anthropic's OpenAI-compatible endpoint, POST /anthropic/v1/chat/completions.
 * Answers are canned sentences picked by a hash of the request; token counts are
 * a rough local estimate (about four characters a token), reported the way
 * each API reports them. Nothing of a request is logged or kept.
 */

export interface DemoProvider {
  /** http://127.0.0.1:port */
  url: string;
  port: number;
  close(): Promise<void>;
}

const ANSWERS = [
  'Hello! This answer comes from the MixRoute demo provider running on your machine, so it works offline. The gateway forwarded your request, counted the tokens and will deduct their cost from the demo account.',
  'MixRoute is an OpenAI-compatible gateway: it authenticates your key, checks your balance, forwards the request to the provider of the model, streams the answer back, and meters the tokens for billing.',
  'Every request you send through the gateway becomes a usage event with token counts and a cost. A Temporal workflow per account settles those events into ledger entries, so the balance always equals the sum of the entries.',
  'Prompts and completions stay in memory: MixRoute keeps only metadata such as timestamps, model names and token counts. Open the staff console to see the demo account, its balance and its usage.',
  'This is a canned answer of the local demo provider. Point a real provider at the gateway with `mixroute providers add` and `mixroute models add` to route to a real model.',
];

/** Roughly what a BPE tokenizer makes of English text; good enough for a demo bill. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join('\n');
  if (value && typeof value === 'object') {
    const v = value as { text?: unknown; content?: unknown };
    return textOf(typeof v.text === 'string' ? v.text : v.content);
  }
  return '';
}

function promptTokens(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  // A few tokens of framing per message, as chat formats add.
  return estimateTokens(textOf(body.system) + textOf(messages)) + 3 * messages.length + 3;
}

function answerFor(body: Record<string, unknown>, maxTokens: number | undefined): { text: string; truncated: boolean } {
  const digest = createHash('sha256').update(JSON.stringify(body.messages ?? '')).digest();
  const full = ANSWERS[digest[0]! % ANSWERS.length]!;
  if (maxTokens === undefined || estimateTokens(full) <= maxTokens) return { text: full, truncated: false };
  return { text: full.slice(0, Math.max(1, maxTokens * 4)), truncated: true };
}

/** Word-sized pieces, so a stream looks like one. */
function pieces(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [text];
}

const positiveInt = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const openaiError = (res: ServerResponse, status: number, message: string, type: string, code: string | null) =>
  json(res, status, { error: { message, type, param: null, code } });
const anthropicError = (res: ServerResponse, status: number, type: string, message: string) =>
  json(res, status, { type: 'error', error: { type, message } });

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 10 * 1024 * 1024) return undefined;
    chunks.push(c as Buffer);
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

let counter = 0;
const nextId = () => `${Date.now().toString(36)}${(++counter).toString(36)}`;

async function chatCompletions(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, chunkDelayMs: number): Promise<void> {
  if (typeof body.model !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0) {
    return openaiError(res, 400, "'model' and a non-empty 'messages' array are required.", 'invalid_request_error', null);
  }
  const model = body.model;
  const max = positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens);
  const { text, truncated } = answerFor(body, max);
  const prompt = promptTokens(body);
  const completion = estimateTokens(text);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
  const id = `chatcmpl-demo-${nextId()}`;
  const created = Math.floor(Date.now() / 1000);
  const finish = truncated ? 'length' : 'stop';
  if (body.stream !== true) {
    return json(res, 200, {
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finish }],
      usage,
    });
  }
  const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  const chunk = (choices: object[], extra: object = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
  for (const piece of pieces(text)) {
    if (res.destroyed) return;
    await sleep(chunkDelayMs);
    res.write(chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]));
  }
  res.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]));
  if (includeUsage) res.write(chunk([], { usage }));
  res.end('data: [DONE]\n\n');
}

async function anthropicMessages(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, chunkDelayMs: number): Promise<void> {
  const maxTokens = positiveInt(body.max_tokens);
  if (typeof body.model !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0 || maxTokens === undefined) {
    return anthropicError(res, 400, 'invalid_request_error', "'model', 'max_tokens' and a non-empty 'messages' array are required");
  }
  const model = body.model;
  const { text, truncated } = answerFor(body, maxTokens);
  const usage = { input_tokens: promptTokens(body), output_tokens: estimateTokens(text), cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const id = `msg_demo_${nextId()}`;
  const stop = truncated ? 'max_tokens' : 'end_turn';
  if (body.stream !== true) {
    return json(res, 200, {
      id, type: 'message', role: 'assistant', model,
      content: [{ type: 'text', text }],
      stop_reason: stop, stop_sequence: null, usage,
    });
  }
  const event = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(event('message_start', {
    message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
  }));
  res.write(event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
  for (const piece of pieces(text)) {
    if (res.destroyed) return;
    await sleep(chunkDelayMs);
    res.write(event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } }));
  }
  res.write(event('content_block_stop', { index: 0 }));
  res.write(event('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }));
  res.end(event('message_stop', {}));
}

export interface DemoProviderOptions {
  /** 0: any free port. */
  port: number;
  /** The credential the gateway must send (Bearer, or x-api-key on the Anthropic API). */
  apiKey: string;
  /** Models listed by GET /v1/models. */
  models?: readonly string[];
  /** Pause between streamed pieces (default 15 ms): a stream you can watch. */
  chunkDelayMs?: number;
}

function sameSecret(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export async function startDemoProvider(opts: DemoProviderOptions): Promise<DemoProvider> {
  const chunkDelayMs = opts.chunkDelayMs ?? 15;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://demo').pathname.replace(/\/+$/, '');
    const anthropic = path.startsWith('/anthropic/');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const key = bearer ?? (typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined);
    if (!sameSecret(key, opts.apiKey)) {
      return anthropic
        ? anthropicError(res, 401, 'authentication_error', 'invalid x-api-key')
        : openaiError(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    }
    if (req.method === 'GET' && (path === '/v1/models' || path === '/anthropic/v1/models')) {
      return json(res, 200, { object: 'list', data: (opts.models ?? []).map((id) => ({ id, object: 'model', created: 0, owned_by: 'mixroute-demo' })) });
    }
    const route = req.method === 'POST' ? path : '';
    if (route !== '/v1/chat/completions' && route !== '/anthropic/v1/chat/completions' && route !== '/anthropic/v1/messages') {
      return anthropic
        ? anthropicError(res, 404, 'not_found_error', `${req.method} ${path} is not served by the demo provider`)
        : openaiError(res, 404, `Unknown request URL: ${req.method} ${path}.`, 'invalid_request_error', 'unknown_url');
    }
    const body = await readJson(req);
    if (!body) {
      return anthropic
        ? anthropicError(res, 400, 'invalid_request_error', 'the body must be a JSON object')
        : openaiError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
    }
    if (route === '/anthropic/v1/messages') return anthropicMessages(req, res, body, chunkDelayMs);
    return chatCompletions(req, res, body, chunkDelayMs);
  };

  const server: Server = createServer((req, res) => {
    res.on('error', () => undefined);
    handle(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else openaiError(res, 500, 'The demo provider failed.', 'server_error', 'server_error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
