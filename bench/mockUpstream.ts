/**
 * The benchmark's model provider: a minimal, fast OpenAI-shaped upstream on
 * 127.0.0.1 (plain node:http, no per-request bookkeeping). Run as its own child
 * process by bench/gateway.bench.ts so that it never shares an event loop with
 * the load generator.
 *
 *   POST /v1/chat/completions                  -> chat.completion JSON, usage 11 + 7 tokens
 *   POST /v1/chat/completions {"stream":true}  -> 50 chat.completion.chunk events written
 *        back to back, then (stream_options.include_usage) a usage chunk with
 *        `choices: []`, then `data: [DONE]`
 *   POST /v1/messages                          -> Anthropic Message JSON, the same usage
 *   POST /v1/messages {"stream":true}          -> 50 Messages events (message_start, one text
 *        block of 46 deltas, message_delta with the usage, message_stop)
 *
 * Listens on MOCK_PORT (default 0 = any free port) and reports
 * `{ ready: true, port }` over the IPC channel when there is one (else prints it).
 * Exits when the parent goes away.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export const MOCK_STREAM_CHUNKS = 50;
export const MOCK_PROMPT_TOKENS = 11;
export const MOCK_COMPLETION_TOKENS = 7;

const id = 'chatcmpl-bench';
const created = 1_700_000_000;
const model = 'bench-model';
const usage = { prompt_tokens: MOCK_PROMPT_TOKENS, completion_tokens: MOCK_COMPLETION_TOKENS, total_tokens: MOCK_PROMPT_TOKENS + MOCK_COMPLETION_TOKENS };

const completion = Buffer.from(
  JSON.stringify({
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the benchmark mock.' }, logprobs: null, finish_reason: 'stop' }],
    usage,
  }),
);

const chunk = (delta: Record<string, string>, finish: string | null) =>
  `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;

/** 50 events: the first opens the assistant message, the last closes it. */
const streamEvents: string[] = Array.from({ length: MOCK_STREAM_CHUNKS }, (_, i) =>
  i === 0 ? chunk({ role: 'assistant', content: 'tok' }, null) : i === MOCK_STREAM_CHUNKS - 1 ? chunk({}, 'stop') : chunk({ content: ' tok' }, null),
);
const usageEvent = `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`;
const done = 'data: [DONE]\n\n';
const notFound = Buffer.from(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', code: 'unknown_url' } }));
const badJson = Buffer.from(JSON.stringify({ error: { message: 'invalid JSON', type: 'invalid_request_error', code: 'invalid_json' } }));

const message = Buffer.from(
  JSON.stringify({
    id: 'msg_bench',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: 'Hello from the benchmark mock.' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: MOCK_PROMPT_TOKENS, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: MOCK_COMPLETION_TOKENS },
  }),
);
const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
/** 50 events, as many as the chat stream has chunks. */
export const MESSAGES_STREAM_EVENTS: string[] = [
  ev('message_start', { message: { id: 'msg_bench', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: MOCK_PROMPT_TOKENS, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } } }),
  ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  ...Array.from({ length: MOCK_STREAM_CHUNKS - 5 }, (_, i) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: i === 0 ? 'tok' : ' tok' } })),
  ev('content_block_stop', { index: 0 }),
  ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: MOCK_COMPLETION_TOKENS } }),
  ev('message_stop', {}),
];

/** The request's JSON body, or undefined once a 400 has been sent for it. */
function bodyOr400<T>(res: http.ServerResponse, raw: Buffer): T | undefined {
  try {
    return JSON.parse(raw.toString('utf8')) as T;
  } catch {
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': badJson.length }).end(badJson);
    return undefined;
  }
}

function answerMessages(res: http.ServerResponse, raw: Buffer): void {
  const body = bodyOr400<{ stream?: unknown }>(res, raw);
  if (body === undefined) return;
  if (body?.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': message.length }).end(message);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.cork();
  for (let i = 0; i < MESSAGES_STREAM_EVENTS.length - 1; i++) res.write(MESSAGES_STREAM_EVENTS[i]);
  res.end(MESSAGES_STREAM_EVENTS.at(-1));
}

function answer(res: http.ServerResponse, raw: Buffer): void {
  const body = bodyOr400<{ stream?: unknown; stream_options?: { include_usage?: unknown } | null }>(res, raw);
  if (body === undefined) return;
  if (body?.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': completion.length }).end(completion);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // One write per event, as a provider does; corked so they leave in one go (end() uncorks).
  res.cork();
  for (const event of streamEvents) res.write(event);
  if (body.stream_options?.include_usage === true) res.write(usageEvent);
  res.end(done);
}

export function createMockUpstream(): http.Server {
  const server = http.createServer((req, res) => {
    const messagesApi = req.url === '/v1/messages';
    if (req.method !== 'POST' || (req.url !== '/v1/chat/completions' && !messagesApi)) {
      req.resume();
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': notFound.length }).end(notFound);
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => (messagesApi ? answerMessages : answer)(res, parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
  });
  // Keep connections from the gateway's pool and the load generator open for the whole run.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const server = createMockUpstream();
  server.listen(Number(process.env.MOCK_PORT ?? 0), '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    if (process.send) process.send({ ready: true, port });
    else console.log(JSON.stringify({ ready: true, port }));
  });
  const exit = () => process.exit(0);
  process.once('SIGTERM', exit);
  process.once('SIGINT', exit);
  process.once('disconnect', exit);
}
