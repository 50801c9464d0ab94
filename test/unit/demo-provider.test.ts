import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoProvider, type DemoProvider } from '../../src/demo/provider';

/** The local demo provider speaks the two wire formats the way the real APIs do. */
let provider: DemoProvider;
const KEY = 'demo-test-key';
beforeAll(async () => {
  provider = await startDemoProvider({ port: 0, apiKey: KEY, models: ['demo-gpt-1'], chunkDelayMs: 0 });
});
afterAll(() => provider.close());

const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) =>
  fetch(`${provider.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

const sseData = (text: string) =>
  text
    .split('\n\n')
    .map((e) => e.split('\n').find((l) => l.startsWith('data: '))?.slice(6))
    .filter((d): d is string => d !== undefined);

describe('demo provider', () => {
  it('answers OpenAI chat completions with usage, and streams with usage in a last choices-less chunk when asked', async () => {
    const res = await post('/v1/chat/completions', { model: 'demo-gpt-1', messages: [{ role: 'user', content: 'Hello there' }] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0].message.content.length).toBeGreaterThan(20);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);

    const stream = await post('/v1/chat/completions', { model: 'demo-gpt-1', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hi' }] });
    expect(stream.headers.get('content-type')).toBe('text/event-stream');
    const events = sseData(await stream.text());
    expect(events.at(-1)).toBe('[DONE]');
    const last = JSON.parse(events.at(-2)!);
    expect(last.choices).toEqual([]);
    expect(last.usage.completion_tokens).toBeGreaterThan(0);
    const text = events.slice(0, -2).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
    expect(text.length).toBeGreaterThan(20);

    const plain = sseData(await (await post('/v1/chat/completions', { model: 'demo-gpt-1', stream: true, messages: [{ role: 'user', content: 'Hi' }] })).text());
    expect(plain.slice(0, -1).every((e) => JSON.parse(e).usage === undefined)).toBe(true);
  });

  it('answers Anthropic messages, streamed and not, with input and output tokens', async () => {
    const headers = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
    const res = await post('/anthropic/v1/messages', { model: 'demo-claude-1', max_tokens: 200, messages: [{ role: 'user', content: 'Hello' }] }, headers);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'end_turn' });
    expect(body.usage.input_tokens).toBeGreaterThan(0);
    expect(body.usage.output_tokens).toBeGreaterThan(0);

    const stream = await post('/anthropic/v1/messages', { model: 'demo-claude-1', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'Hello' }] }, headers);
    const types = sseData(await stream.text()).map((e) => JSON.parse(e).type);
    expect(types[0]).toBe('message_start');
    expect(types).toContain('content_block_delta');
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);

    const missing = await post('/anthropic/v1/messages', { model: 'demo-claude-1', messages: [{ role: 'user', content: 'Hello' }] }, headers);
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as any).error.type).toBe('invalid_request_error');
  });

  it('refuses a wrong credential in each API\'s error shape', async () => {
    const openai = await post('/v1/chat/completions', { model: 'x', messages: [] }, { authorization: 'Bearer nope' });
    expect(openai.status).toBe(401);
    expect(((await openai.json()) as any).error.code).toBe('invalid_api_key');
    const anthropic = await post('/anthropic/v1/messages', {}, { 'x-api-key': 'nope' });
    expect(anthropic.status).toBe(401);
    expect(((await anthropic.json()) as any).type).toBe('error');
  });
});
