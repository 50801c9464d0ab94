/**
 * The fake upstream is the one fake every end-to-end gateway test leans on, so it
 * gets its own tests: if it misreports usage, never really drops a socket, or
 * misses a client abort, gateway tests would pass or fail for the wrong reason.
 * Clients here are plain fetch and node:http, nothing from our code.
 */
import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';

let up: FakeUpstream;
beforeEach(async () => {
  up = await startFakeUpstream(); // a fresh server per test keeps queues and records apart
});
afterEach(() => up.close());

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${up.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** JSON body of a response, typed loosely: the assertions check its shape. */
const j = async (r: Response | Promise<Response>): Promise<any> => (await r).json();

const chatBody = (extra: object = {}) => ({ model: 'gpt-test', messages: [{ role: 'user', content: 'Say hi' }], ...extra });

/** Reads a body until it ends or breaks; a broken stream is what a dropped upstream looks like. */
async function readAll(res: Response): Promise<{ text: string; error?: unknown }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

/** The `data:` payloads of an SSE body, JSON-parsed except the literal [DONE]. */
const sseData = (text: string): any[] =>
  text.split('\n\n').flatMap((block) => block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)))
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));

describe('fake upstream', () => {
  it('answers a chat completion in OpenAI shape with the configured usage, and records the request', async () => {
    up.enqueue({ kind: 'ok', content: 'Hi there', promptTokens: 100, cachedTokens: 40, completionTokens: 9, reasoningTokens: 3 });
    const res = await post('/chat/completions', chatBody(), { authorization: 'Bearer k' });
    expect(res.status).toBe(200);
    const body = await j(res);
    expect(body).toMatchObject({
      id: 'chatcmpl-fake-1', object: 'chat.completion', model: 'gpt-test',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi there' }, finish_reason: 'stop' }],
      // prompt_tokens includes the cached ones, as OpenAI reports them
      usage: { prompt_tokens: 100, completion_tokens: 9, total_tokens: 109, prompt_tokens_details: { cached_tokens: 40 }, completion_tokens_details: { reasoning_tokens: 3 } },
    });
    expect(typeof body.created).toBe('number');
    expect(up.requests).toHaveLength(1);
    expect(up.requests[0]).toMatchObject({ method: 'POST', path: '/v1/chat/completions', body: chatBody(), aborted: false });
    expect(up.requests[0]!.headers.authorization).toBe('Bearer k');
  });

  it('streams parseable chunks and sends the usage chunk only when include_usage is set', async () => {
    up.setDefault({ kind: 'ok', content: 'abcdefghij', chunks: 4 });
    const plain = sseData(await (await post('/chat/completions', chatBody({ stream: true }))).text());
    expect(plain.at(-1)).toBe('[DONE]');
    const chunks = plain.slice(0, -1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'gpt-test')).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.slice(1, -1).map((c) => c.choices[0].delta.content)).toHaveLength(4);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('abcdefghij');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
    expect(chunks.some((c) => 'usage' in c)).toBe(false);

    const res = await post('/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }));
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const withUsage = sseData(await res.text());
    const last = withUsage.at(-2);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
    // Every earlier chunk carries usage: null, as OpenAI sends it.
    expect(withUsage.slice(0, -2).every((c) => c.usage === null)).toBe(true);
  });

  it("reports 'anthropic' usage with uncached input only, and 'none' omits usage everywhere", async () => {
    up.enqueue({ kind: 'ok', usage: 'anthropic', promptTokens: 100, cachedTokens: 40, completionTokens: 9 }, { kind: 'ok', usage: 'none' }, { kind: 'ok', usage: 'none' });
    const anthropic = await j(post('/chat/completions', chatBody()));
    expect(anthropic.usage).toEqual({ input_tokens: 60, cache_read_input_tokens: 40, cache_creation_input_tokens: 0, output_tokens: 9 });
    expect('usage' in (await j(post('/chat/completions', chatBody())))).toBe(false);
    const stream = sseData(await (await post('/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }))).text());
    expect(stream.slice(0, -1).some((c) => c.usage)).toBe(false);
    expect(stream.slice(0, -1).some((c) => c.choices.length === 0)).toBe(false);
  });

  it('serves legacy completions, embeddings, responses and models', async () => {
    up.setDefault({ kind: 'ok', content: 'xyz', promptTokens: 20, cachedTokens: 5, completionTokens: 3, chunks: 3 });
    const legacy = await j(post('/completions', { model: 'm', prompt: 'p' }));
    expect(legacy).toMatchObject({ id: 'cmpl-fake-1', object: 'text_completion', choices: [{ text: 'xyz', finish_reason: 'stop' }] });
    const legacyStream = sseData(await (await post('/completions', { model: 'm', prompt: 'p', stream: true })).text());
    expect(legacyStream.slice(0, -1).map((c) => c.choices[0].text).join('')).toBe('xyz');

    const emb = await j(post('/embeddings', { model: 'e', input: ['a', 'b'] }));
    expect(emb).toMatchObject({ object: 'list', model: 'e', usage: { prompt_tokens: 20, total_tokens: 20 } });
    expect(emb.data.map((d: any) => [d.index, d.embedding.length])).toEqual([[0, 8], [1, 8]]);
    expect((await j(post('/embeddings', { model: 'e', input: 'one' }))).data).toHaveLength(1);

    const resp = await j(post('/responses', { model: 'r', input: 'hi' }));
    expect(resp).toMatchObject({
      object: 'response', status: 'completed', model: 'r', output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'xyz' }] }],
      usage: { input_tokens: 20, input_tokens_details: { cached_tokens: 5 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 23 },
    });
    expect(resp.id).toMatch(/^resp_fake_\d+$/);
    const respStream = await (await post('/responses', { model: 'r', input: 'hi', stream: true })).text();
    const names = [...respStream.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(names.filter((n) => n === 'response.output_text.delta')).toHaveLength(3);
    expect(names.at(-1)).toBe('response.completed');
    expect(sseData(respStream).at(-1).response.usage.total_tokens).toBe(23);

    expect(await j(fetch(`${up.url}/models`))).toEqual({ object: 'list', data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'fake' }] });
  });

  it('answers unknown paths with 404 and malformed JSON with 400, both as OpenAI errors', async () => {
    const missing = await post('/nope', {});
    expect(missing.status).toBe(404);
    expect((await j(missing)).error.type).toBe('invalid_request_error');
    const bad = await fetch(`${up.url}/chat/completions`, { method: 'POST', body: '{not json' });
    expect(bad.status).toBe(400);
    expect((await j(bad)).error).toMatchObject({ type: 'invalid_request_error' });
    expect(up.requests[1]!.body).toBe('{not json');
  });

  it('echoes the prompt into the error message when asked (for privacy tests)', async () => {
    up.enqueue({ kind: 'error', status: 429, echoPromptInError: true }, { kind: 'error' });
    const res = await post('/chat/completions', chatBody({ messages: [{ role: 'system', content: 'secret-sys' }, { role: 'user', content: [{ type: 'text', text: 'secret-user' }] }] }));
    expect(res.status).toBe(429);
    const { error } = await j(res);
    expect(error.message).toContain('secret-sys');
    expect(error.message).toContain('secret-user');
    const plain = await post('/chat/completions', chatBody());
    expect(plain.status).toBe(500);
    expect((await j(plain)).error).toEqual({ message: 'The fake upstream failed.', type: 'server_error', param: null, code: 'server_error' });
  });

  it('drop-mid-stream breaks the stream after the given chunks; drop-before-headers fails the request', async () => {
    up.enqueue({ kind: 'drop-mid-stream', dropAfterChunks: 2, chunks: 5, content: 'aabbccddee' }, { kind: 'drop-before-headers' });
    const res = await post('/chat/completions', chatBody({ stream: true }));
    expect(res.status).toBe(200);
    const { text, error } = await readAll(res);
    expect(error).toBeDefined();
    const got = sseData(text);
    expect(got.map((c) => c.choices[0].delta.content)).toEqual(['', 'aa', 'bb']); // opening chunk + 2 content chunks
    expect(text).not.toContain('[DONE]');

    await expect(post('/chat/completions', chatBody())).rejects.toThrow();
    expect(up.requests.map((r) => r.aborted)).toEqual([false, false]); // our own drops are not client aborts
  });

  it('records a client abort of a hanging request and the call ends upstream', async () => {
    up.enqueue({ kind: 'hang' });
    const ac = new AbortController();
    const call = fetch(`${up.url}/chat/completions`, { method: 'POST', body: JSON.stringify(chatBody()), signal: ac.signal }).catch((e: unknown) => e);
    await up.waitForRequests(1); // abort only once the upstream really has the call
    expect(up.inFlight()).toBe(1);
    expect(up.requests[0]!.aborted).toBe(false);
    ac.abort();
    expect(await call).toBeInstanceOf(Error);
    await up.waitForAborted(1);
    expect(up.requests[0]!.aborted).toBe(true);
    // Not openConnections(): undici may open a fresh idle socket right after an abort.
    expect(up.inFlight()).toBe(0);
  });

  it('records a node:http client that gives up mid-stream on a slow stream', async () => {
    up.enqueue({ kind: 'slow', headerDelayMs: 5, chunkDelayMs: 20, chunks: 50 });
    const firstData = await new Promise<string>((resolve, reject) => {
      const req = request(`${up.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', (d: Buffer) => {
          req.destroy(); // give up after the first chunk, mid-stream
          resolve(String(d));
        });
      });
      req.on('error', reject);
      req.end(JSON.stringify(chatBody({ stream: true })));
    });
    expect(sseData(firstData)[0].choices[0].delta.role).toBe('assistant');
    await up.waitForAborted(1);
    expect(up.requests[0]!.aborted).toBe(true);
    expect(up.openConnections()).toBe(0); // the client destroyed its only socket, and nothing reconnects
    expect(up.inFlight()).toBe(0);
  });

  it('uses enqueued behaviours in order, then the default', async () => {
    up.setDefault({ kind: 'error', status: 503 });
    up.enqueue({ kind: 'ok' }, { kind: 'error', status: 418 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post('/chat/completions', chatBody())).status);
    expect(statuses).toEqual([200, 418, 503, 503]);
  });

  it('rejects requests without the configured API key with 401', async () => {
    const keyed = await startFakeUpstream({ apiKey: 'sk-fake' });
    try {
      const denied = await fetch(`${keyed.url}/models`, { headers: { authorization: 'Bearer wrong' } });
      expect(denied.status).toBe(401);
      expect((await j(denied)).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
      expect((await fetch(`${keyed.url}/models`)).status).toBe(401);
      expect((await fetch(`${keyed.url}/models`, { headers: { authorization: 'Bearer sk-fake' } })).status).toBe(200);
    } finally {
      await keyed.close();
    }
  });

  it('close() ends hanging requests and their sockets', async () => {
    up.setDefault({ kind: 'hang' });
    const call = post('/chat/completions', chatBody()).catch((e: unknown) => e);
    await up.waitForRequests(1);
    expect(up.openConnections()).toBe(1);
    await up.close();
    expect(await call).toBeInstanceOf(Error);
    expect(up.openConnections()).toBe(0);
  });
});
