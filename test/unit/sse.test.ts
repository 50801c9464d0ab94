import { describe, expect, it } from 'vitest';
import { parseEvent, SseSplitter } from '../../src/gateway/sse';
import { inspectEvent } from '../../src/gateway/streamInspector';

const enc = (s: string) => new TextEncoder().encode(s);

describe('SSE splitter', () => {
  it('yields whole events however the bytes are cut', () => {
    const stream = 'data: {"a":1}\n\ndata: {"b":2}\n\nevent: x\r\ndata: y\r\n\r\n';
    for (const cut of [1, 3, 7, 11, stream.length]) {
      const s = new SseSplitter();
      const events: string[] = [];
      for (let i = 0; i < stream.length; i += cut) events.push(...s.push(enc(stream.slice(i, i + cut))));
      expect(events).toEqual(['data: {"a":1}\n\n', 'data: {"b":2}\n\n', 'event: x\r\ndata: y\r\n\r\n']);
      expect(s.rest()).toBe('');
    }
  });

  it('keeps a multi-byte character split across chunks intact', () => {
    const bytes = enc('data: "héllo"\n\n');
    const s = new SseSplitter();
    const first = s.push(bytes.slice(0, 8));
    const second = s.push(bytes.slice(8));
    expect([...first, ...second]).toEqual(['data: "héllo"\n\n']);
  });

  it('returns an unterminated tail at the end', () => {
    const s = new SseSplitter();
    expect(s.push(enc('data: [DONE]'))).toEqual([]);
    expect(s.rest()).toBe('data: [DONE]');
  });

  it('parses names and multi-line data', () => {
    expect(parseEvent('event: response.completed\ndata: {"x":\ndata: 1}\n\n')).toEqual({ name: 'response.completed', data: '{"x":\n1}' });
  });
});

describe('stream inspector', () => {
  it('finds chat deltas and the usage-only chunk', () => {
    expect(inspectEvent('chat.completions', 'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n')).toEqual({ text: 'Hi', usageOnly: false });
    const usage = inspectEvent('chat.completions', 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n');
    expect(usage).toEqual({ usage: { prompt_tokens: 3, completion_tokens: 2 }, usageOnly: true });
    expect(inspectEvent('chat.completions', 'data: [DONE]\n\n')).toEqual({ usageOnly: false });
  });

  it('counts tool-call arguments and legacy completion text as output', () => {
    expect(inspectEvent('chat.completions', 'data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\\"q\\":1}"}}]}}]}\n\n').text).toBe('{"q":1}');
    expect(inspectEvent('completions', 'data: {"choices":[{"text":"abc"}]}\n\n').text).toBe('abc');
  });

  it('reads the Responses API deltas and final usage', () => {
    expect(inspectEvent('responses', 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"yo"}\n\n').text).toBe('yo');
    expect(inspectEvent('responses', 'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":4}}}\n\n').usage).toEqual({ input_tokens: 4 });
  });

  it('ignores what is not JSON', () => {
    expect(inspectEvent('chat.completions', ': keep-alive\n\n')).toEqual({ usageOnly: false });
    expect(inspectEvent('chat.completions', 'data: {broken\n\n')).toEqual({ usageOnly: false });
  });
});
