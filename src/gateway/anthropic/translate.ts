/**
 * Anthropic Messages <-> OpenAI Chat Completions, both ways, for routes whose
 * provider speaks the other API. Pure: no I/O, nothing logged; bodies live in
 * memory only. What has no counterpart on the other side is refused with an
 * UntranslatableRequest (a 400 naming the parameter or block type, never its
 * value), never dropped silently. docs/anthropic.md lists both.
 */
import { normalizeUsage, type NormalizedUsage } from '../../metering/usage.rules';
import { parseEvent } from '../sse';

export class UntranslatableRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UntranslatableRequest';
  }
}

type Obj = Record<string, any>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const refuse = (what: string): never => {
  throw new UntranslatableRequest(`${what} cannot be translated for this model's provider (OpenAI-compatible). See docs/anthropic.md.`);
};
const refuseToAnthropic = (what: string): never => {
  throw new UntranslatableRequest(`${what} cannot be translated for this model's provider (Anthropic Messages API).`);
};

// ---------------------------------------------------------------------------
// Messages request -> Chat Completions request

const MESSAGES_PARAMS = new Set(['model', 'messages', 'system', 'max_tokens', 'stop_sequences', 'temperature', 'top_p', 'tools', 'tool_choice', 'stream', 'metadata', 'thinking']);

function textOfBlocks(blocks: unknown, where: string): string {
  if (typeof blocks === 'string') return blocks;
  const parts: string[] = [];
  for (const b of Array.isArray(blocks) ? blocks : []) {
    if (isObj(b) && b.type === 'text' && typeof b.text === 'string') parts.push(b.text);
    else refuse(`A '${isObj(b) ? String(b.type) : typeof b}' block in ${where}`);
  }
  return parts.join('\n');
}

function imagePart(block: Obj): Obj {
  const src = block.source;
  if (isObj(src) && src.type === 'base64' && typeof src.media_type === 'string' && typeof src.data === 'string') {
    return { type: 'image_url', image_url: { url: `data:${src.media_type};base64,${src.data}` } };
  }
  if (isObj(src) && src.type === 'url' && typeof src.url === 'string') return { type: 'image_url', image_url: { url: src.url } };
  return refuse(`An image source of type '${isObj(src) ? String(src.type) : 'unknown'}'`);
}

function toolResultContent(block: Obj): string {
  const text = block.content === undefined ? '' : textOfBlocks(block.content, 'a tool_result');
  // Chat tool messages have no error flag: the model is told in the text.
  return block.is_error === true ? `Error: ${text}` : text;
}

export function messagesToChat(body: Obj, opts: { upstreamModel: string; outputLimitParams: string[] }): Obj {
  for (const key of Object.keys(body)) if (!MESSAGES_PARAMS.has(key)) refuse(`The parameter '${key}'`);
  if (isObj(body.thinking) && body.thinking.type !== 'disabled') refuse("Extended thinking ('thinking')");
  const out: Obj[] = [];
  if (body.system !== undefined) {
    const system = textOfBlocks(body.system, 'system');
    if (system) out.push({ role: 'system', content: system });
  }
  for (const m of body.messages as Obj[]) {
    if (typeof m.content === 'string') {
      out.push({ role: m.role, content: m.content });
      continue;
    }
    if (m.role === 'assistant') {
      let text = '';
      const calls: Obj[] = [];
      for (const b of m.content as Obj[]) {
        if (b.type === 'text') text += b.text ?? '';
        else if (b.type === 'tool_use') calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
        // Thinking of earlier turns: Anthropic itself leaves it out of the model's context.
        else if (b.type === 'thinking' || b.type === 'redacted_thinking') continue;
        else refuse(`A '${String(b.type)}' block in an assistant message`);
      }
      out.push({ role: 'assistant', content: text || null, ...(calls.length ? { tool_calls: calls } : {}) });
      continue;
    }
    // User: tool results become tool messages, which must directly follow the assistant's calls.
    const parts: Obj[] = [];
    for (const b of m.content as Obj[]) {
      if (b.type === 'tool_result') out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: toolResultContent(b) });
      else if (b.type === 'text') parts.push({ type: 'text', text: b.text });
      else if (b.type === 'image') parts.push(imagePart(b));
      else refuse(`A '${String(b.type)}' block in a user message`);
    }
    if (parts.length) out.push({ role: 'user', content: parts.every((p) => p.type === 'text') ? parts.map((p) => p.text).join('\n') : parts });
  }
  const chat: Obj = { model: opts.upstreamModel, messages: out };
  for (const p of opts.outputLimitParams) chat[p] = body.max_tokens;
  if (body.temperature !== undefined) chat.temperature = body.temperature;
  if (body.top_p !== undefined) chat.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length) chat.stop = body.stop_sequences;
  if (isObj(body.metadata) && typeof body.metadata.user_id === 'string') chat.user = body.metadata.user_id;
  if (Array.isArray(body.tools) && body.tools.length) {
    chat.tools = body.tools.map((t: Obj) => {
      if (t.type !== undefined && t.type !== 'custom') refuse(`The server tool '${String(t.type)}'`);
      return { type: 'function', function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object' } } };
    });
  }
  if (isObj(body.tool_choice)) {
    const tc = body.tool_choice;
    chat.tool_choice =
      tc.type === 'auto' ? 'auto' : tc.type === 'any' ? 'required' : tc.type === 'none' ? 'none' : tc.type === 'tool' ? { type: 'function', function: { name: tc.name } } : refuse(`tool_choice of type '${String(tc.type)}'`);
    if (tc.disable_parallel_tool_use === true && chat.tools) chat.parallel_tool_calls = false;
  }
  if (body.stream === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  return chat;
}

// ---------------------------------------------------------------------------
// Chat Completions answer -> Messages answer

function stopReason(finish: unknown, choice: Obj, stopSequences: unknown): { stop_reason: string; stop_sequence: string | null } {
  // Some OpenAI-compatible servers (vLLM) name the stop string that ended the answer.
  if (finish === 'stop' && typeof choice.stop_reason === 'string' && Array.isArray(stopSequences) && stopSequences.includes(choice.stop_reason)) {
    return { stop_reason: 'stop_sequence', stop_sequence: choice.stop_reason };
  }
  const reason = finish === 'length' ? 'max_tokens' : finish === 'tool_calls' || finish === 'function_call' ? 'tool_use' : finish === 'content_filter' ? 'refusal' : 'end_turn';
  return { stop_reason: reason, stop_sequence: null };
}

/** Usage in Anthropic's convention: input_tokens without the cache, cache reads and writes beside it. */
export function anthropicUsage(u: NormalizedUsage | undefined): Obj {
  const n = u ?? { inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 };
  const oneHour = n.cacheWrite1hTokens ?? 0;
  return {
    input_tokens: n.inputTokens,
    cache_creation_input_tokens: n.cacheWriteTokens,
    cache_read_input_tokens: n.cacheReadTokens,
    cache_creation: { ephemeral_5m_input_tokens: n.cacheWriteTokens - oneHour, ephemeral_1h_input_tokens: oneHour },
    output_tokens: n.outputTokens,
  };
}

/** Usage in OpenAI's convention: prompt_tokens includes every cached token. */
export function openaiUsage(u: NormalizedUsage | undefined): Obj {
  const n = u ?? { inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 };
  const prompt = n.inputTokens + n.cacheReadTokens + n.cacheWriteTokens;
  return {
    prompt_tokens: prompt,
    completion_tokens: n.outputTokens,
    total_tokens: prompt + n.outputTokens,
    prompt_tokens_details: { cached_tokens: n.cacheReadTokens },
    // Not an OpenAI field; clients that know Anthropic's caching can read the writes here.
    cache_creation_input_tokens: n.cacheWriteTokens,
  };
}

function parseArguments(args: unknown): unknown {
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    return JSON.parse(args);
  } catch {
    return { _raw_arguments: args };
  }
}

export function chatAnswerToMessages(answer: Obj, ctx: { model: string; stopSequences: unknown }): { body: Obj; usageRaw: unknown } {
  const choice: Obj = Array.isArray(answer.choices) && isObj(answer.choices[0]) ? answer.choices[0] : {};
  const msg: Obj = isObj(choice.message) ? choice.message : {};
  const content: Obj[] = [];
  if (typeof msg.content === 'string' && msg.content !== '') content.push({ type: 'text', text: msg.content });
  for (const tc of Array.isArray(msg.tool_calls) ? msg.tool_calls : []) {
    content.push({ type: 'tool_use', id: String(tc.id ?? ''), name: tc.function?.name, input: parseArguments(tc.function?.arguments) });
  }
  const usage = normalizeUsage(answer.usage, 'openai');
  const body = {
    id: `msg_${String(answer.id ?? '').replace(/[^A-Za-z0-9_-]/g, '') || 'translated'}`,
    type: 'message',
    role: 'assistant',
    model: ctx.model,
    content,
    ...stopReason(choice.finish_reason, choice, ctx.stopSequences),
    usage: anthropicUsage(usage),
  };
  return { body, usageRaw: answer.usage };
}

const sse = (name: string, data: Obj) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;

/**
 * Turns a Chat Completions stream into Messages events as chunks arrive:
 * message_start on the first chunk, one content block per text run or tool
 * call, and message_delta (stop reason, final usage) then message_stop at the end.
 */
export class ChatToMessagesStream {
  private started = false;
  private block: { index: number; kind: 'text' | 'tool'; toolIndex?: number } | null = null;
  private nextIndex = 0;
  private finish: { stop_reason: string; stop_sequence: string | null } | null = null;
  usageRaw: unknown;
  text = '';

  /** The provider said why the answer ended (a stream that closes cleanly after it is whole, [DONE] or not). */
  get finished(): boolean {
    return this.finish !== null;
  }

  constructor(private readonly ctx: { id: string; model: string; stopSequences: unknown }) {}

  private start(): string {
    if (this.started) return '';
    this.started = true;
    const message = { id: this.ctx.id, type: 'message', role: 'assistant', model: this.ctx.model, content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(undefined) };
    return sse('message_start', { message }) + sse('ping', {});
  }

  private close(): string {
    if (!this.block) return '';
    const out = sse('content_block_stop', { index: this.block.index });
    this.block = null;
    return out;
  }

  /** One upstream SSE event in; the Messages events to send out. */
  event(event: string): string {
    const { data } = parseEvent(event);
    if (data === null || data === '[DONE]') return '';
    let json: Obj;
    try {
      json = JSON.parse(data);
    } catch {
      return '';
    }
    let out = this.start();
    if (isObj(json.usage)) this.usageRaw = json.usage;
    const choice: Obj | undefined = Array.isArray(json.choices) && isObj(json.choices[0]) ? json.choices[0] : undefined;
    const d: Obj = isObj(choice?.delta) ? choice.delta : {};
    if (typeof d.content === 'string' && d.content !== '') {
      if (this.block?.kind !== 'text') {
        out += this.close();
        this.block = { index: this.nextIndex++, kind: 'text' };
        out += sse('content_block_start', { index: this.block.index, content_block: { type: 'text', text: '' } });
      }
      this.text += d.content;
      out += sse('content_block_delta', { index: this.block.index, delta: { type: 'text_delta', text: d.content } });
    }
    for (const tc of Array.isArray(d.tool_calls) ? d.tool_calls : []) {
      const toolIndex = typeof tc.index === 'number' ? tc.index : 0;
      if (this.block?.kind !== 'tool' || this.block.toolIndex !== toolIndex) {
        out += this.close();
        this.block = { index: this.nextIndex++, kind: 'tool', toolIndex };
        out += sse('content_block_start', { index: this.block.index, content_block: { type: 'tool_use', id: String(tc.id ?? ''), name: tc.function?.name ?? '', input: {} } });
      }
      const args = tc.function?.arguments;
      if (typeof args === 'string' && args !== '') {
        this.text += args;
        out += sse('content_block_delta', { index: this.block.index, delta: { type: 'input_json_delta', partial_json: args } });
      }
    }
    if (choice && typeof choice.finish_reason === 'string') this.finish = stopReason(choice.finish_reason, choice, this.ctx.stopSequences);
    return out;
  }

  /** The closing events, once the upstream stream ended whole. */
  end(): string {
    const usage = anthropicUsage(normalizeUsage(this.usageRaw, 'openai'));
    return (
      this.start() +
      this.close() +
      sse('message_delta', { delta: this.finish ?? { stop_reason: 'end_turn', stop_sequence: null }, usage }) +
      sse('message_stop', {})
    );
  }
}

// ---------------------------------------------------------------------------
// Chat Completions request -> Messages request

const CHAT_PARAMS = new Set(['model', 'messages', 'max_tokens', 'max_completion_tokens', 'stop', 'temperature', 'top_p', 'tools', 'tool_choice', 'parallel_tool_calls', 'stream', 'stream_options', 'user', 'n']);

function chatPartToBlock(p: Obj): Obj {
  const cache = p.cache_control !== undefined ? { cache_control: p.cache_control } : {};
  if (p.type === 'text') return { type: 'text', text: p.text, ...cache };
  if (p.type === 'image_url') {
    const url: unknown = isObj(p.image_url) ? p.image_url.url : p.image_url;
    if (typeof url !== 'string') refuseToAnthropic('An image_url part without a url');
    const m = /^data:([^;,]+);base64,(.*)$/s.exec(url as string);
    return m ? { type: 'image', source: { type: 'base64', media_type: m[1], data: m[2] }, ...cache } : { type: 'image', source: { type: 'url', url }, ...cache };
  }
  return refuseToAnthropic(`A '${String(p.type)}' content part`);
}

function chatContent(content: unknown): string | Obj[] {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  return (content as Obj[]).map((p) => (typeof p === 'string' ? { type: 'text', text: p } : chatPartToBlock(p)));
}

export function chatToMessages(body: Obj, opts: { upstreamModel: string; maxTokens: number }): Obj {
  for (const key of Object.keys(body)) if (!CHAT_PARAMS.has(key)) refuseToAnthropic(`The parameter '${key}'`);
  if (typeof body.n === 'number' && body.n !== 1) refuseToAnthropic('n other than 1');
  const system: Obj[] = [];
  const messages: Obj[] = [];
  const push = (role: 'user' | 'assistant', blocks: Obj[]) => {
    const last = messages.at(-1);
    // Anthropic wants turns to alternate; consecutive tool results and user text form one user turn.
    if (last && last.role === role && role === 'user') last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  const asBlocks = (c: string | Obj[]): Obj[] => (typeof c === 'string' ? (c === '' ? [] : [{ type: 'text', text: c }]) : c);
  for (const m of body.messages as Obj[]) {
    if (m.role === 'system' || m.role === 'developer') {
      for (const b of asBlocks(chatContent(m.content))) {
        if (b.type !== 'text') refuseToAnthropic('A non-text part in a system message');
        system.push(b);
      }
    } else if (m.role === 'user') {
      push('user', asBlocks(chatContent(m.content)));
    } else if (m.role === 'assistant') {
      const blocks = asBlocks(chatContent(m.content));
      for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls : []) {
        let input: unknown;
        try {
          input = JSON.parse(typeof tc.function?.arguments === 'string' && tc.function.arguments !== '' ? tc.function.arguments : '{}');
        } catch {
          refuseToAnthropic("A tool call whose 'arguments' are not JSON");
        }
        blocks.push({ type: 'tool_use', id: tc.id, name: tc.function?.name, input });
      }
      if (m.function_call !== undefined) refuseToAnthropic("The legacy 'function_call' message field");
      messages.push({ role: 'assistant', content: blocks });
    } else if (m.role === 'tool') {
      const content = chatContent(m.content);
      push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content }]);
    } else {
      refuseToAnthropic(`A message with role '${String(m.role)}'`);
    }
  }
  const out: Obj = { model: opts.upstreamModel, max_tokens: opts.maxTokens, messages };
  if (system.length) out.system = system.some((b) => b.cache_control !== undefined) ? system : system.map((b) => b.text).join('\n');
  if (body.temperature !== undefined && body.temperature !== null) out.temperature = body.temperature;
  if (body.top_p !== undefined && body.top_p !== null) out.top_p = body.top_p;
  if (body.stop !== undefined && body.stop !== null) out.stop_sequences = Array.isArray(body.stop) ? body.stop : [body.stop];
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  if (Array.isArray(body.tools) && body.tools.length) {
    out.tools = body.tools.map((t: Obj) => {
      if (t.type !== 'function' || !isObj(t.function)) refuseToAnthropic(`A tool of type '${String(t.type)}'`);
      const f = t.function as Obj;
      return {
        name: f.name,
        ...(f.description !== undefined ? { description: f.description } : {}),
        input_schema: f.parameters ?? { type: 'object', properties: {} },
        ...(t.cache_control !== undefined ? { cache_control: t.cache_control } : {}),
      };
    });
  }
  const tc = body.tool_choice;
  if (tc !== undefined && tc !== null) {
    out.tool_choice =
      tc === 'auto' ? { type: 'auto' } : tc === 'required' ? { type: 'any' } : tc === 'none' ? { type: 'none' } : isObj(tc) && tc.type === 'function' ? { type: 'tool', name: tc.function?.name } : refuseToAnthropic('This tool_choice');
  }
  if (body.parallel_tool_calls === false && out.tools) out.tool_choice = { ...(out.tool_choice ?? { type: 'auto' }), disable_parallel_tool_use: true };
  if (body.stream === true) out.stream = true;
  return out;
}

// ---------------------------------------------------------------------------
// Messages answer -> Chat Completions answer

const FINISH: Record<string, string> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter', pause_turn: 'stop' };

export function messagesAnswerToChat(answer: Obj, ctx: { model: string; created: number }): { body: Obj; usageRaw: unknown } {
  let text = '';
  const calls: Obj[] = [];
  for (const b of Array.isArray(answer.content) ? answer.content : []) {
    if (b?.type === 'text') text += b.text ?? '';
    else if (b?.type === 'tool_use') calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
  }
  const usage = normalizeUsage(answer.usage, 'anthropic');
  const body = {
    id: `chatcmpl-${String(answer.id ?? 'translated')}`,
    object: 'chat.completion',
    created: ctx.created,
    model: ctx.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text || (calls.length ? null : ''), ...(calls.length ? { tool_calls: calls } : {}) },
        logprobs: null,
        finish_reason: FINISH[String(answer.stop_reason)] ?? 'stop',
      },
    ],
    usage: openaiUsage(usage),
  };
  return { body, usageRaw: answer.usage };
}

/** Messages events -> Chat Completions chunks, as they arrive. */
export class MessagesToChatStream {
  private readonly usage = new MessagesStreamUsage();
  private tools = new Map<number, number>();
  private finish: string | null = null;
  text = '';

  get finished(): boolean {
    return this.finish !== null;
  }

  constructor(private readonly ctx: { id: string; model: string; created: number; includeUsage: boolean }) {}

  private chunk(delta: Obj, finish: string | null = null): string {
    const c = { id: this.ctx.id, object: 'chat.completion.chunk', created: this.ctx.created, model: this.ctx.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
    return `data: ${JSON.stringify(this.ctx.includeUsage ? { ...c, usage: null } : c)}\n\n`;
  }

  get usageRaw(): unknown {
    return this.usage.final();
  }

  get usageComplete(): boolean {
    return this.usage.complete();
  }

  event(event: string): string {
    const { data } = parseEvent(event);
    if (data === null) return '';
    let json: Obj;
    try {
      json = JSON.parse(data);
    } catch {
      return '';
    }
    this.usage.see(json);
    switch (json.type) {
      case 'message_start':
        return this.chunk({ role: 'assistant', content: '' });
      case 'content_block_start':
        if (json.content_block?.type === 'tool_use') {
          const k = this.tools.size;
          this.tools.set(json.index, k);
          return this.chunk({ tool_calls: [{ index: k, id: json.content_block.id, type: 'function', function: { name: json.content_block.name, arguments: '' } }] });
        }
        return '';
      case 'content_block_delta': {
        const d = json.delta;
        if (d?.type === 'text_delta' && typeof d.text === 'string') {
          this.text += d.text;
          return this.chunk({ content: d.text });
        }
        if (d?.type === 'input_json_delta' && typeof d.partial_json === 'string' && this.tools.has(json.index)) {
          this.text += d.partial_json;
          return this.chunk({ tool_calls: [{ index: this.tools.get(json.index), function: { arguments: d.partial_json } }] });
        }
        return '';
      }
      case 'message_delta':
        if (typeof json.delta?.stop_reason === 'string') this.finish = FINISH[json.delta.stop_reason] ?? 'stop';
        return '';
      case 'error':
        // A provider error mid-stream: the client gets it in OpenAI's streamed-error form, without our own end.
        return `data: ${JSON.stringify({ error: { message: 'The upstream provider failed mid-stream.', type: 'upstream_error', param: null, code: typeof json.error?.type === 'string' ? json.error.type : null } })}\n\n`;
      default:
        return '';
    }
  }

  end(): string {
    let out = this.chunk({}, this.finish ?? 'stop');
    if (this.ctx.includeUsage) {
      out += `data: ${JSON.stringify({ id: this.ctx.id, object: 'chat.completion.chunk', created: this.ctx.created, model: this.ctx.model, choices: [], usage: openaiUsage(normalizeUsage(this.usage.final(), 'anthropic')) })}\n\n`;
    }
    return out;
  }
}

/**
 * Usage of an Anthropic stream. message_start carries the input side (and a
 * provisional output count); message_delta carries the cumulative, final
 * counts. The final usage is message_delta's, with only the fields it lacks
 * taken from message_start: never the two added together.
 */
export class MessagesStreamUsage {
  private start: Obj | undefined;
  private delta: Obj | undefined;

  see(json: Obj): void {
    if (json?.type === 'message_start' && isObj(json.message?.usage)) this.start = json.message.usage;
    else if (json?.type === 'message_delta' && isObj(json.usage)) this.delta = json.usage;
  }

  /** message_delta was seen: the counts are final. */
  complete(): boolean {
    return this.delta !== undefined;
  }

  final(): Obj | undefined {
    if (!this.start && !this.delta) return undefined;
    const merged: Obj = { ...(this.start ?? {}) };
    for (const [k, v] of Object.entries(this.delta ?? {})) if (v !== null && v !== undefined) merged[k] = v;
    return merged;
  }
}
