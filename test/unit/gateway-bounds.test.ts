import { describe, expect, it } from 'vitest';
import { endpointSchemas, outputBound } from '../../src/gateway/requests';
import { SseEventTooLarge, SseSplitter } from '../../src/gateway/sse';

const enc = new TextEncoder();

describe('output bound of a request', () => {
  it('multiplies the per-choice limit by n, best_of and the number of prompts', () => {
    expect(outputBound('chat.completions', { max_tokens: 10, n: 8 })).toEqual({ perChoice: 10, choices: 8 });
    expect(outputBound('chat.completions', { max_tokens: 10, max_completion_tokens: 30 })).toEqual({ perChoice: 30, choices: 1 });
    expect(outputBound('chat.completions', {})).toEqual({ perChoice: null, choices: 1 });
    expect(outputBound('completions', { max_tokens: 5, n: 2, best_of: 6, prompt: ['a', 'b', 'c'] })).toEqual({ perChoice: 5, choices: 18 });
    expect(outputBound('completions', { max_tokens: 5, prompt: [1, 2, 3] })).toEqual({ perChoice: 5, choices: 1 });
    expect(outputBound('responses', { max_output_tokens: 7 })).toEqual({ perChoice: 7, choices: 1 });
    expect(outputBound('embeddings', { input: 'x' }).choices).toBe(0);
  });

  it('refuses counts and token numbers past their bounds', () => {
    const chat = endpointSchemas['chat.completions'];
    const messages = [{ role: 'user', content: 'x' }];
    expect(chat.safeParse({ model: 'm', messages, n: 129 }).success).toBe(false);
    expect(chat.safeParse({ model: 'm', messages, n: 0 }).success).toBe(false);
    expect(chat.safeParse({ model: 'm', messages, n: 128 }).success).toBe(true);
    expect(chat.safeParse({ model: 'm', messages, max_tokens: 1e12 }).success).toBe(false);
    expect(endpointSchemas.completions.safeParse({ model: 'm', prompt: 'x', best_of: 1000 }).success).toBe(false);
    expect(endpointSchemas.completions.safeParse({ model: 'm', prompt: Array(3000).fill('x') }).success).toBe(false);
    expect(endpointSchemas.embeddings.safeParse({ model: 'm', input: Array(3000).fill('x') }).success).toBe(false);
  });
});

describe('SSE splitter size limit', () => {
  it('throws on an event longer than the limit, even one that never ends', () => {
    const splitter = new SseSplitter(1024);
    expect(splitter.push(enc.encode(`data: ${'a'.repeat(100)}\n\n`))).toHaveLength(1);
    expect(() => {
      for (let i = 0; i < 100; i++) splitter.push(enc.encode('b'.repeat(100)));
    }).toThrow(SseEventTooLarge);
  });

  it('still finds a separator split across chunks', () => {
    const splitter = new SseSplitter(1024);
    expect(splitter.push(enc.encode('data: one\r\n\r'))).toEqual([]);
    expect(splitter.push(enc.encode('\ndata: two\n'))).toEqual(['data: one\r\n\r\n']);
    expect(splitter.push(enc.encode('\n'))).toEqual(['data: two\n\n']);
  });
});
