import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilTrue } from '../helpers/eventually';
import { systemClock } from '../../src/clock';
import { startDemoProvider } from '../../src/demo/provider';
import { accountsService } from '../../src/accounts/accounts.service';
import { testConfig, testDb } from '../helpers/env';
import type { FakeAnthropic } from '../helpers/fakeAnthropic';
import type { FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startAnthropicUpstreams, startTestGateway, UPSTREAM_KEY, UPSTREAM_KEY_ENV, type Customer } from '../helpers/gateway';

/**
 * Anthropic's Messages API on the gateway, with the official @anthropic-ai/sdk
 * as the client: native passthrough to an Anthropic provider (fakeAnthropic),
 * translation to an OpenAI-compatible one (fakeUpstream), and OpenAI clients
 * reaching Anthropic models. Real gateway, PostgreSQL and Temporal.
 */
const db = testDb(testConfig());
let anthropicUp: FakeAnthropic;
let openaiUp: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let customer: Customer;
let client: Anthropic;
let openai: OpenAI;
type ApiError = InstanceType<typeof Anthropic.APIError>;
/** Served by the Anthropic provider only. */
let claude: string;
/** Anthropic provider first, the OpenAI-compatible one as fallback. */
let mixed: string;
/** customer.model: the OpenAI-compatible provider only (translated). */
let gpt: string;

beforeAll(async () => {
  const up = await startAnthropicUpstreams(db);
  ({ anthropicUp, openaiUp, customer } = up);
  const { ops, tag, provider } = up;
  gpt = customer.model;
  const price = { inputPerMtok: '3', cachedInputPerMtok: '0.3', cacheWritePerMtok: '3.75', cacheWrite1hPerMtok: '6', outputPerMtok: '15', effectiveFrom: '2020-01-01T00:00:00Z' };
  claude = `claude-${tag}`;
  await ops.addModel({ name: claude, provider: provider.name, upstreamModel: 'claude-fake-1', ...price });
  mixed = `claude-mixed-${tag}`;
  const m = await ops.addModel({ name: mixed, provider: provider.name, upstreamModel: 'claude-fake-1', ...price });
  const fallback = await db('providers').where({ name: customer.provider }).first('id');
  await db('model_fallbacks').insert({ model_id: m.id, position: 1, provider_id: fallback.id, upstream_model: 'fake-model' });
  gw = await startTestGateway();
  client = new Anthropic({ apiKey: customer.key, baseURL: gw.url, maxRetries: 0 });
  openai = new OpenAI({ apiKey: customer.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await gw?.stop();
  await anthropicUp?.close();
  await openaiUp?.close();
  await db.destroy();
});

async function eventFor(requestId: string | null) {
  await gw.batcher.flush();
  return db('usage_events').where({ request_id: requestId }).first();
}

describe('passthrough to an Anthropic provider', () => {
  it('answers a message, sends our credential as x-api-key with the client version and beta, and meters Anthropic usage', async () => {
    const { data, response } = await client.messages
      .create({ model: claude, max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }] }, { headers: { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'prompt-caching-2024-07-31' } })
      .withResponse();
    expect(data.content).toEqual([{ type: 'text', text: 'Hello from the fake Anthropic.' }]);
    expect(data.stop_reason).toBe('end_turn');
    const seen = anthropicUp.requests.at(-1)!;
    expect(seen.path).toBe('/v1/messages');
    expect(seen.body.model).toBe('claude-fake-1');
    expect(seen.headers['x-api-key']).toBe(UPSTREAM_KEY);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    const event = await eventFor(response.headers.get('x-request-id'));
    expect(event).toMatchObject({ endpoint: 'messages', model: claude, status_code: 200, stream: false, input_tokens: 20, output_tokens: 9, usage_estimated: false });
    // 20 x 3/M + 9 x 15/M
    expect(event.cost).toBe('0.000195000000');
  });

  it('relays the stream event by event; the final usage is message_delta, not message_start added to it', async () => {
    anthropicUp.enqueue({ kind: 'ok', content: 'one two three four', chunks: 4, inputTokens: 30, cacheReadTokens: 100, outputTokens: 12 });
    const stream = client.messages.stream({ model: claude, max_tokens: 100, messages: [{ role: 'user', content: 'count' }] });
    const types: string[] = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    const message = await stream.finalMessage();
    expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: 'one two three four' })]);
    expect(types).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const response = await stream.withResponse();
    const event = await eventFor(response.response.headers.get('x-request-id'));
    expect(event).toMatchObject({ stream: true, input_tokens: 30, cache_read_tokens: 100, output_tokens: 12, usage_estimated: false });
  });

  it('meters an older stream whose message_delta reports only output tokens', async () => {
    anthropicUp.enqueue({ kind: 'ok', inputTokens: 40, cacheWrite5mTokens: 50, outputTokens: 6, deltaOutputOnly: true });
    const stream = client.messages.stream({ model: claude, max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
    await stream.finalMessage();
    const { response } = await stream.withResponse();
    const event = await eventFor(response.headers.get('x-request-id'));
    expect(event).toMatchObject({ input_tokens: 40, cache_write_tokens: 50, cache_write_1h_tokens: 0, output_tokens: 6 });
  });

  it('round-trips a tool call', async () => {
    anthropicUp.enqueue({ kind: 'ok', content: '', toolUse: { id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } } });
    const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
    const first = await client.messages.create({ model: claude, max_tokens: 100, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    expect(first.stop_reason).toBe('tool_use');
    const call = first.content.find((b) => b.type === 'tool_use')!;
    expect(call).toMatchObject({ id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } });
    const second = await client.messages.create({
      model: claude,
      max_tokens: 100,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] },
      ],
    });
    expect(second.content[0]).toMatchObject({ type: 'text' });
    expect(anthropicUp.requests.at(-1)!.body.messages[2].content[0]).toEqual({ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' });
  });

  it('refuses server tools the provider bills beyond tokens (no record could bill them)', async () => {
    const before = anthropicUp.requests.length;
    const err = await client.messages
      .create({ model: claude, max_tokens: 100, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'news?' }] } as never)
      .then(
        () => undefined,
        (e: unknown) => e as ApiError,
      );
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err!.error).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringContaining('web_search_20250305') } });
    expect(anthropicUp.requests.length).toBe(before);
  });

  it('refuses betas whose billing is not metered (context-1m), naming the beta, and forwards allowed ones', async () => {
    const before = anthropicUp.requests.length;
    const params = { model: claude, max_tokens: 100, messages: [{ role: 'user' as const, content: 'long' }] };
    const err = await client.messages
      .create(params, { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31, context-1m-2025-08-07' } })
      .then(
        () => undefined,
        (e: unknown) => e as ApiError,
      );
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err!.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining("'context-1m-2025-08-07'") } });
    expect(anthropicUp.requests.length).toBe(before);
    await client.messages.create(params, { headers: { 'anthropic-beta': 'extended-cache-ttl-2025-04-11, interleaved-thinking-2025-05-14' } });
    expect(anthropicUp.requests.at(-1)!.headers['anthropic-beta']).toBe('extended-cache-ttl-2025-04-11,interleaved-thinking-2025-05-14');
  });

  it('counts tokens through the provider', async () => {
    const count = await client.messages.countTokens({ model: claude, messages: [{ role: 'user', content: 'x'.repeat(40) }] });
    expect(count.input_tokens).toBeGreaterThan(0);
    expect(anthropicUp.requests.at(-1)!.path).toBe('/v1/messages/count_tokens');
  });

  it('falls back to the next route on overloaded (529), and translates for it', async () => {
    anthropicUp.enqueue({ kind: 'overloaded' });
    openaiUp.enqueue({ kind: 'ok', content: 'from the fallback' });
    const message = await client.messages.create({ model: mixed, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'from the fallback' }]);
    expect(message.model).toBe(mixed);
    expect(openaiUp.requests.at(-1)!.body.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('lists models in Anthropic\'s shape', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m.type).toBe('model');
      ids.push(m.id);
    }
    expect(ids).toContain(claude);
  });
});

describe('streams that end early', () => {
  const post = (body: object, signal?: AbortSignal) =>
    fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': customer.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });

  it('a stream the provider drops: the client sees it cut (no message_stop), input from message_start, output counted locally', async () => {
    anthropicUp.enqueue({ kind: 'drop-mid-stream', dropAfterChunks: 2, chunks: 8, content: 'alpha beta gamma delta epsilon zeta eta theta', inputTokens: 33 });
    const res = await post({ model: claude, max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'x' }] });
    const text = await res.text().catch(() => '');
    expect(text).not.toContain('message_stop');
    const event = await eventFor(res.headers.get('x-request-id'));
    expect(event).toMatchObject({ status_code: 502, error_type: 'upstream_dropped', input_tokens: 33, usage_estimated: true });
    expect(Number(event.output_tokens)).toBeGreaterThan(0);
  });

  it('a client that goes away mid-stream: the provider call is cancelled and the request metered as 499', async () => {
    const aborted = anthropicUp.requests.filter((r) => r.aborted).length;
    anthropicUp.enqueue({ kind: 'ok', chunks: 40, chunkDelayMs: 25, content: 'word '.repeat(40), inputTokens: 44 });
    const controller = new AbortController();
    const res = await post({ model: claude, max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'x' }] }, controller.signal);
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await anthropicUp.waitForAborted(aborted + 1);
    const requestId = res.headers.get('x-request-id');
    const event = await untilTrue(() => eventFor(requestId), { timeoutMs: 5_000, message: 'the aborted call to be metered' });
    expect(event).toMatchObject({ status_code: 499, error_type: 'client_closed', input_tokens: 44 });
  });

  it('a translated stream the provider drops is cut too, and estimated', async () => {
    openaiUp.enqueue({ kind: 'drop-mid-stream', dropAfterChunks: 2, chunks: 6, content: 'one two three four five six' });
    const res = await post({ model: gpt, max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'x' }] });
    const text = await res.text().catch(() => '');
    expect(text).toContain('message_start');
    expect(text).not.toContain('message_stop');
    const event = await eventFor(res.headers.get('x-request-id'));
    expect(event).toMatchObject({ status_code: 502, error_type: 'upstream_dropped', usage_estimated: true });
  });

  it('a slow provider is waited for', async () => {
    anthropicUp.enqueue({ kind: 'slow', headerDelayMs: 100 });
    const message = await client.messages.create({ model: claude, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Hello from the fake Anthropic.' });
  });
});

describe('translated to an OpenAI-compatible provider', () => {
  it('answers a message: system, text, stop sequences, limits and sampling go over as Chat Completions', async () => {
    const { data, response } = await client.messages
      .create({
        model: gpt,
        max_tokens: 64,
        system: [{ type: 'text', text: 'Be brief.' }],
        temperature: 0.2,
        top_p: 0.9,
        stop_sequences: ['END'],
        metadata: { user_id: 'user-42' },
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
        // Sampling parameters are gone from the newest SDK's types; older clients and agents still send them.
      } as never)
      .withResponse();
    expect(data).toMatchObject({ type: 'message', role: 'assistant', model: gpt, stop_reason: 'end_turn', content: [{ type: 'text', text: 'Hello from the fake upstream.' }] });
    expect(data.usage).toMatchObject({ input_tokens: 11, output_tokens: 7, cache_read_input_tokens: 0 });
    const seen = openaiUp.requests.at(-1)!;
    expect(seen.path).toBe('/v1/chat/completions');
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(seen.body).toMatchObject({ model: 'fake-model', max_completion_tokens: 64, temperature: 0.2, top_p: 0.9, stop: ['END'], user: 'user-42' });
    expect(seen.body.messages).toEqual([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }]);
    const event = await eventFor(response.headers.get('x-request-id'));
    expect(event).toMatchObject({ endpoint: 'messages', provider: customer.provider, input_tokens: 11, output_tokens: 7, usage_estimated: false });
  });

  it('streams Anthropic events built from the chat chunks, cache reads kept', async () => {
    openaiUp.enqueue({ kind: 'ok', content: 'a b c d e', chunks: 5, promptTokens: 100, cachedTokens: 60, completionTokens: 5 });
    const stream = client.messages.stream({ model: gpt, max_tokens: 64, messages: [{ role: 'user', content: 'go' }] });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: 'a b c d e' })]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage).toMatchObject({ input_tokens: 40, cache_read_input_tokens: 60, output_tokens: 5 });
    const { response } = await stream.withResponse();
    const event = await eventFor(response.headers.get('x-request-id'));
    expect(event).toMatchObject({ stream: true, input_tokens: 40, cache_read_tokens: 60, output_tokens: 5 });
  });

  it('translates tools, tool_choice, tool_use and tool_result', async () => {
    await client.messages.create({
      model: gpt,
      max_tokens: 64,
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: [{ type: 'text', text: 'rain' }] }, { type: 'text', text: 'And now?' }] },
      ],
    });
    const body = openaiUp.requests.at(-1)!.body;
    expect(body.tools).toEqual([{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]);
    expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(body.parallel_tool_calls).toBe(false);
    expect(body.messages).toEqual([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'rain' },
      { role: 'user', content: 'And now?' },
    ]);
  });

  it('refuses what cannot be translated with a 400 naming it', async () => {
    const err = await client.messages
      .create({ model: gpt, max_tokens: 64, top_k: 5, messages: [{ role: 'user', content: 'x' }] } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as ApiError).error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining("'top_k'") } });
  });

  it('counts tokens locally', async () => {
    const count = await client.messages.countTokens({ model: gpt, messages: [{ role: 'user', content: 'hello there' }] });
    expect(count.input_tokens).toBeGreaterThan(0);
  });
});

describe('OpenAI clients on Anthropic models', () => {
  it('translates chat to Messages with cache_control intact, and the answer back', async () => {
    anthropicUp.enqueue({ kind: 'ok', inputTokens: 10, cacheReadTokens: 500, cacheWrite1hTokens: 200, outputTokens: 9 });
    const { data, response } = await openai.chat.completions
      .create({
        model: claude,
        max_tokens: 80,
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'Long context', cache_control: { type: 'ephemeral', ttl: '1h' } } as never] },
          { role: 'user', content: 'hi' },
        ],
      })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('Hello from the fake Anthropic.');
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({ prompt_tokens: 710, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 500 } });
    const seen = anthropicUp.requests.at(-1)!;
    expect(seen.body).toMatchObject({
      model: 'claude-fake-1',
      max_tokens: 80,
      system: [{ type: 'text', text: 'Long context', cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    });
    const event = await eventFor(response.headers.get('x-request-id'));
    expect(event).toMatchObject({ endpoint: 'chat.completions', input_tokens: 10, cache_read_tokens: 500, cache_write_tokens: 200, cache_write_1h_tokens: 200, output_tokens: 9 });
    // 10 x 3 + 500 x 0.3 + 200 x 6 + 9 x 15, per million
    expect(event.cost).toBe('0.001515000000');
  });

  it('round-trips a tool call, streamed and not', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    anthropicUp.enqueue({ kind: 'ok', content: '', toolUse: { id: 'toolu_9', name: 'get_weather', input: { city: 'Rome' } } });
    const first = await openai.chat.completions.create({ model: claude, tools, tool_choice: 'required', messages: [{ role: 'user', content: 'Weather in Rome?' }] });
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    const call = first.choices[0]!.message.tool_calls![0]!;
    expect(call).toMatchObject({ id: 'toolu_9', type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse((call as { function: { arguments: string } }).function.arguments)).toEqual({ city: 'Rome' });
    expect(anthropicUp.requests.at(-1)!.body).toMatchObject({ tool_choice: { type: 'any' }, tools: [{ name: 'get_weather', input_schema: { type: 'object' } }] });

    anthropicUp.enqueue({ kind: 'ok', content: '', toolUse: { id: 'toolu_10', name: 'get_weather', input: { city: 'Rome' } } });
    const stream = await openai.chat.completions.create({ model: claude, tools, stream: true, messages: [{ role: 'user', content: 'Weather in Rome?' }] });
    let args = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const t of chunk.choices[0]?.delta?.tool_calls ?? []) args += t.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(JSON.parse(args)).toEqual({ city: 'Rome' });
    expect(finish).toBe('tool_calls');

    await openai.chat.completions.create({
      model: claude,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Rome?' },
        first.choices[0]!.message,
        { role: 'tool', tool_call_id: 'toolu_9', content: 'sunny' },
      ],
    });
    expect(anthropicUp.requests.at(-1)!.body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Rome?' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Rome' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_9', content: 'sunny' }] },
    ]);
  });

  it('streams chat chunks built from Anthropic events', async () => {
    const stream = await openai.chat.completions.create({ model: claude, messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello from the fake Anthropic.');
    expect(usage).toMatchObject({ prompt_tokens: 20, completion_tokens: 9 });
  });
});

describe('the demo provider (mixroute dev)', () => {
  it("serves its Anthropic model to OpenAI clients through /anthropic/v1/messages", async () => {
    const demo = await startDemoProvider({ port: 0, apiKey: UPSTREAM_KEY, chunkDelayMs: 0 });
    try {
      const ops = accountsService({ db, clock: systemClock });
      const tag = customer.provider.slice(5);
      await ops.addProvider({ name: `demo-anthropic-${tag}`, baseUrl: `${demo.url}/anthropic/v1`, apiKeyEnv: UPSTREAM_KEY_ENV, kind: 'anthropic' });
      await ops.addModel({ name: `demo-claude-${tag}`, provider: `demo-anthropic-${tag}`, upstreamModel: 'demo-claude-1', inputPerMtok: '0.8', outputPerMtok: '4', effectiveFrom: '2020-01-01T00:00:00Z' });
      await gw.routing.refresh();
      const stream = await openai.chat.completions.create({ model: `demo-claude-${tag}`, stream: true, messages: [{ role: 'user', content: 'Stream, please.' }] });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      expect(text.length).toBeGreaterThan(20);
    } finally {
      await demo.close();
    }
  });
});

describe('errors in Anthropic\'s shape', () => {
  const call = (c: Anthropic, body: Record<string, unknown>): Promise<ApiError> => c.messages.create(body as never).then(
    () => { throw new Error('expected an error'); },
    (e: unknown) => e as ApiError,
  );

  it('401 authentication_error for a bad key (x-api-key or Bearer)', async () => {
    const bad = new Anthropic({ apiKey: 'sk-wrong', baseURL: gw.url, maxRetries: 0 });
    const err = await call(bad, { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err.error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    const bearer = new Anthropic({ authToken: customer.key, apiKey: null, baseURL: gw.url, maxRetries: 0 });
    const ok = await bearer.messages.create({ model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(ok.type).toBe('message');
  });

  it('400 invalid_request_error, 404 not_found_error', async () => {
    const missing = await call(client, { model: claude, messages: [{ role: 'user', content: 'x' }] });
    expect(missing).toBeInstanceOf(Anthropic.BadRequestError);
    expect(missing.error).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
    const unknown = await call(client, { model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
    expect(unknown.error).toMatchObject({ error: { type: 'not_found_error' } });
  });

  it('413 request_too_large', async () => {
    const err = await call(client, { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(11 * 1024 * 1024) }] });
    expect(err.status).toBe(413);
    expect(err.error).toMatchObject({ error: { type: 'request_too_large' } });
  });

  it('402 billing_error when the balance gate refuses', async () => {
    const poor = await createCustomer(db, openaiUp.url, { credit: '0' });
    await gw.routing.refresh();
    const c = new Anthropic({ apiKey: poor.key, baseURL: gw.url, maxRetries: 0 });
    const err = await call(c, { model: poor.model, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(err.status).toBe(402);
    expect(err.error).toMatchObject({ error: { type: 'billing_error' } });
  });

  it('429 rate_limit_error', async () => {
    const limited = await createCustomer(db, openaiUp.url, { rateLimitRpm: 1 });
    await gw.routing.refresh();
    const c = new Anthropic({ apiKey: limited.key, baseURL: gw.url, maxRetries: 0 });
    await c.messages.create({ model: limited.model, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    const err = await call(c, { model: limited.model, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(err.error).toMatchObject({ error: { type: 'rate_limit_error' } });
  });

  it('529 overloaded_error when the last route is overloaded; the provider\'s own 4xx error as it sent it', async () => {
    anthropicUp.enqueue({ kind: 'overloaded' });
    const err = await call(client, { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(err.status).toBe(529);
    expect(err.error).toMatchObject({ error: { type: 'overloaded_error' } });
    anthropicUp.enqueue({ kind: 'error', status: 400, errorType: 'invalid_request_error' });
    const refused = await call(client, { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(refused.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });

  it("a translated provider's 4xx arrives in Anthropic's shape with the provider's message", async () => {
    openaiUp.enqueue({ kind: 'error', status: 400, errorBody: { error: { message: 'context too long', type: 'invalid_request_error', param: null, code: null } } });
    const err = await call(client, { model: gpt, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.error).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'context too long' } });
  });

  it('api_error when the provider fails (5xx)', async () => {
    anthropicUp.enqueue({ kind: 'error', status: 500 });
    const err = await call(client, { model: claude, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(err.status).toBe(502);
    expect(err.error).toMatchObject({ error: { type: 'api_error' } });
  });
});
