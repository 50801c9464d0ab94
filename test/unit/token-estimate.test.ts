import { describe, expect, it } from 'vitest';
import { countTextTokens, estimatePromptTokens, REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE } from '../../src/gateway/tokenEstimate';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Get the weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const user = (content: unknown) => ({ role: 'user', content });

describe('countTextTokens (o200k_base)', () => {
  it('counts known strings exactly', () => {
    expect(countTextTokens('hello world')).toBe(2);
    expect(countTextTokens('The quick brown fox jumps over the lazy dog.')).toBe(10);
    expect(countTextTokens('')).toBe(0);
    // The first call builds the o200k encoder (about a second of CPU, more on a loaded 2-core machine).
  }, 60_000);

  it('treats special-token text typed by a user as ordinary text instead of throwing', () => {
    expect(countTextTokens('a <|endoftext|> b')).toBe(9);
  });

  it('is deterministic and grows with content', () => {
    const text = 'Pricing is per million tokens. ';
    expect(countTextTokens(text)).toBe(countTextTokens(text));
    expect(countTextTokens(text.repeat(10))).toBeGreaterThan(countTextTokens(text.repeat(2)));
  });

  it('stays cheap on pathological input and close on long input', () => {
    // One 1,000,000-letter piece: exact BPE would be quadratic (minutes); 8 a's are one token.
    expect(countTextTokens('a'.repeat(1_000_000))).toBe(125_000);
    // 100,000 ten-token sentences: beyond the exact budget, extrapolated to within 0.1%.
    const n = countTextTokens('The quick brown fox jumps over the lazy dog. '.repeat(100_000));
    expect(Math.abs(n - 1_000_000)).toBeLessThan(1_000);
  });
});

describe('estimatePromptTokens', () => {
  it('chat: content plus 3 per message plus 3 reply priming (OpenAI cookbook)', () => {
    expect(TOKENS_PER_MESSAGE).toBe(3);
    expect(REPLY_PRIMING_TOKENS).toBe(3);
    // 3 + "user" (1) + "hello world" (2) + 3
    expect(estimatePromptTokens('chat', { model: 'gpt-4o', messages: [user('hello world')] })).toBe(9);
    const two = estimatePromptTokens('chat', { messages: [{ role: 'system', content: 'Be brief.' }, user('hello world')] });
    expect(two).toBe(9 + 3 + 1 + 3); // + 3 + "system" (1) + "Be brief." (3)
  });

  it('chat: counts text parts of array content, not images', () => {
    const parts = [{ type: 'text', text: 'hello' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }, { type: 'text', text: ' world' }];
    expect(estimatePromptTokens('chat', { messages: [user(parts)] })).toBe(9);
  });

  it('chat: counts tool definitions, tool calls and names', () => {
    const base = estimatePromptTokens('chat', { messages: [user('hello world')] });
    expect(estimatePromptTokens('chat', { messages: [user('hello world')], tools: [{ type: 'function', function: WEATHER_TOOL }] })).toBe(base + 35);
    expect(estimatePromptTokens('chat', { messages: [user('hello world')], functions: [WEATHER_TOOL] })).toBe(base + 35);
    const call = { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] };
    expect(estimatePromptTokens('chat', { messages: [user('hello world'), call] })).toBeGreaterThan(base + TOKENS_PER_MESSAGE + 5);
    expect(estimatePromptTokens('chat', { messages: [{ ...user('hello world'), name: 'alice' }] })).toBe(base + 1 + 1);
  });

  it('completions: prompt as a string, strings or token ids', () => {
    expect(estimatePromptTokens('completions', { prompt: 'hello world' })).toBe(2);
    expect(estimatePromptTokens('completions', { prompt: ['hello world', 'hello world'] })).toBe(4);
    expect(estimatePromptTokens('completions', { prompt: [1, 2, 3] })).toBe(3);
    expect(estimatePromptTokens('completions', { prompt: [[1, 2], [3]] })).toBe(3);
  });

  it('embeddings: input as a string or strings, no message overhead', () => {
    expect(estimatePromptTokens('embeddings', { input: 'hello world' })).toBe(2);
    expect(estimatePromptTokens('embeddings', { input: ['hello world', 'The quick brown fox jumps over the lazy dog.'] })).toBe(12);
  });

  it('responses: string input, input items, instructions and flat tools', () => {
    expect(estimatePromptTokens('responses', { input: 'hello world' })).toBe(3 + 2 + 3);
    const body = {
      instructions: 'Be brief.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello world' }] }],
      tools: [{ type: 'function', ...WEATHER_TOOL }],
    };
    expect(estimatePromptTokens('responses', body)).toBe(3 + 3 + (3 + 1 + 2) + 3 + 35);
    const withCall = {
      input: [user('hello world'), { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }, { type: 'function_call_output', call_id: 'c1', output: 'Sunny, 21 C' }],
    };
    expect(estimatePromptTokens('responses', withCall)).toBeGreaterThan(estimatePromptTokens('responses', { input: [user('hello world')] }) + 5);
  });

  it('grows with content and is deterministic', () => {
    const one = { messages: [user('Tell me about tokens.')] };
    const two = { messages: [user('Tell me about tokens.'), { role: 'assistant', content: 'Tokens are pieces of text.' }] };
    expect(estimatePromptTokens('chat', two)).toBeGreaterThan(estimatePromptTokens('chat', one));
    expect(estimatePromptTokens('chat', two)).toBe(estimatePromptTokens('chat', two));
  });

  it('is 0 only for empty or unusable bodies', () => {
    expect(estimatePromptTokens('chat', { messages: [] })).toBe(0);
    for (const body of [undefined, null, 'hello', [], {}]) {
      expect(estimatePromptTokens('chat', body)).toBe(0);
      expect(estimatePromptTokens('embeddings', body)).toBe(0);
    }
    expect(estimatePromptTokens('completions', { prompt: '' })).toBe(0);
    expect(estimatePromptTokens('chat', { messages: [{}] })).toBe(TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS);
  });

  it('survives junk and unserialisable tool parameters', () => {
    const cyclic: Record<string, unknown> = { type: 'object' };
    cyclic.self = cyclic;
    expect(estimatePromptTokens('chat', { messages: [user('hello world')], tools: [{ type: 'function', function: { name: 'f', parameters: cyclic } }, 7, null] })).toBe(9);
    expect(estimatePromptTokens('chat', { messages: [user(42), user([null, 5, { type: 'text', text: 3 }])] })).toBe(2 * 4 + 3);
  });
});
