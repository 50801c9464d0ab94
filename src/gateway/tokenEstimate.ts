/**
 * Local token counting, for when a provider reports no usage (the caller then marks
 * the event usage_estimated). Uses the o200k_base encoding (GPT-4o family); for other
 * models it is an estimate, which is all this is for.
 *
 * Privacy: this module sees request and response content in memory only. It must never
 * log, store or return content, only numbers. Keep it free of logger and I/O imports.
 *
 * Cost: js-tiktoken's byte-pair merge is quadratic in the length of a pre-tokenised
 * piece (10,000 repeated letters take seconds), and this runs in the gateway process
 * on client-controlled input. So the work is bounded two ways, trading a few percent
 * of accuracy on unusual input for a predictable cost:
 * - a piece longer than LONG_PIECE_CHARS (a run of one character, a long unspaced CJK
 *   sentence) is counted in SLICE_CHARS slices; a token cannot span a cut, so such text
 *   counts a few percent high (long whitespace runs several times high);
 * - one call counts at most EXACT_CHAR_BUDGET characters exactly (~16k English tokens,
 *   tens of ms; under a second for dense CJK, the slowest case); the rest is extrapolated
 *   at the tokens-per-character ratio measured on what was counted.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import o200k_base from 'js-tiktoken/ranks/o200k_base';

/** OpenAI cookbook: each chat message costs its content plus ~3 framing tokens (<|start|>role…<|end|>). */
export const TOKENS_PER_MESSAGE = 3;
/** OpenAI cookbook: a message's `name` costs one token beyond its text. */
export const TOKENS_PER_NAME = 1;
/** OpenAI cookbook: every reply is primed with <|start|>assistant<|message|>. */
export const REPLY_PRIMING_TOKENS = 3;

const LONG_PIECE_CHARS = 64;
const SLICE_CHARS = 16;
const EXACT_CHAR_BUDGET = 64_000;

let tokenizer: { encoder: Tiktoken; pieces: RegExp } | undefined;

/** Built on first use: parsing the ranks takes ~0.5 s and tens of MB, which most requests never need. */
function getTokenizer(): { encoder: Tiktoken; pieces: RegExp } {
  tokenizer ??= { encoder: new Tiktoken(o200k_base), pieces: new RegExp(o200k_base.pat_str, 'gu') };
  return tokenizer;
}

/** Index at or before `at` that does not split a surrogate pair. */
function safeCut(text: string, at: number): number {
  const c = text.charCodeAt(at - 1);
  return at < text.length && c >= 0xd800 && c <= 0xdbff ? at - 1 : at;
}

function encodeLength(text: string): number {
  // No special tokens: "<|endoftext|>" typed by a user is ordinary text, and the
  // default (disallow all) would throw on it.
  return text.length === 0 ? 0 : getTokenizer().encoder.encode(text, [], []).length;
}

/** Exact count, except that over-long pieces are counted slice by slice (see the top comment). */
function countBounded(text: string): number {
  let tokens = 0;
  let start = 0;
  for (const m of text.matchAll(getTokenizer().pieces)) {
    const piece = m[0];
    if (piece.length <= LONG_PIECE_CHARS) continue;
    tokens += encodeLength(text.slice(start, m.index));
    for (let i = 0; i < piece.length; ) {
      const end = safeCut(piece, Math.min(i + SLICE_CHARS, piece.length));
      tokens += encodeLength(piece.slice(i, end));
      i = end;
    }
    start = m.index + piece.length;
  }
  return tokens + encodeLength(text.slice(start));
}

/** Counts the texts of one estimate, sharing one exact-work budget between them. */
class Tally {
  private exactChars = 0;
  private exactTokens = 0;

  text(value: unknown): number {
    if (typeof value !== 'string' || value.length === 0) return 0;
    const room = EXACT_CHAR_BUDGET - this.exactChars;
    const head = value.length <= room ? value : value.slice(0, room > 0 ? safeCut(value, room) : 0);
    const exact = countBounded(head);
    this.exactChars += head.length;
    this.exactTokens += exact;
    if (head.length === value.length) return exact;
    // Before anything was counted exactly, fall back to the common ~4 characters per token.
    const ratio = this.exactChars > 0 ? this.exactTokens / this.exactChars : 0.25;
    return exact + Math.ceil((value.length - head.length) * ratio);
  }
}

export function countTextTokens(text: string): number {
  return new Tally().text(text);
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Message content: a string, or parts of which only the text is counted (images, audio and files are not). */
function content(t: Tally, value: unknown): number {
  if (typeof value === 'string') return t.text(value);
  let n = 0;
  for (const part of list(value)) n += typeof part === 'string' ? t.text(part) : isObj(part) ? t.text(part.text) : 0;
  return n;
}

/** A tool or function definition: the JSON of what the model is shown (name, description, parameters). */
function tools(t: Tally, value: unknown): number {
  let n = 0;
  for (const tool of list(value)) {
    if (!isObj(tool)) continue;
    const def = isObj(tool.function) ? tool.function : tool; // chat nests it, Responses and `functions` do not
    if (def.name === undefined && def.description === undefined && def.parameters === undefined) continue;
    try {
      n += t.text(JSON.stringify({ name: def.name, description: def.description, parameters: def.parameters }));
    } catch {
      // Unserialisable (cyclic, BigInt) parameters from a programmatic caller: count nothing rather than fail.
    }
  }
  return n;
}

/** The function calls of an assistant message (chat `tool_calls` / legacy `function_call`). */
function calls(t: Tally, message: Obj): number {
  let n = 0;
  const all = [...list(message.tool_calls).map((c) => (isObj(c) ? c.function : undefined)), message.function_call];
  for (const fn of all) if (isObj(fn)) n += t.text(fn.name) + t.text(fn.arguments);
  return n;
}

function message(t: Tally, m: unknown): number {
  if (typeof m === 'string') return TOKENS_PER_MESSAGE + t.text(m);
  if (!isObj(m)) return TOKENS_PER_MESSAGE;
  let n = TOKENS_PER_MESSAGE + t.text(m.role) + content(t, m.content) + calls(t, m);
  if (typeof m.name === 'string') n += t.text(m.name) + TOKENS_PER_NAME;
  return n;
}

/** A Responses input item: a message, or a function call / its output. */
function responsesItem(t: Tally, item: unknown): number {
  if (isObj(item) && item.type === 'function_call') return t.text(item.name) + t.text(item.arguments);
  if (isObj(item) && item.type === 'function_call_output') return content(t, item.output);
  return message(t, item);
}

/** `prompt` / embeddings `input`: a string, strings, or already-tokenised arrays of ids. */
function promptInput(t: Tally, value: unknown): number {
  if (typeof value === 'string') return t.text(value);
  if (!Array.isArray(value)) return 0;
  let n = 0;
  for (const v of value) n += typeof v === 'number' ? 1 : Array.isArray(v) ? v.length : t.text(v);
  return n;
}

function messages(t: Tally, items: unknown[], each: (t: Tally, item: unknown) => number): number {
  let n = 0;
  for (const item of items) n += each(t, item);
  return items.length > 0 ? n + REPLY_PRIMING_TOKENS : n;
}

export function estimatePromptTokens(endpoint: 'chat' | 'completions' | 'embeddings' | 'responses', body: unknown): number {
  if (!isObj(body)) return 0;
  const t = new Tally();
  switch (endpoint) {
    case 'chat': {
      // System prompts are messages with role system/developer; a top-level `system`
      // (Anthropic-style body) is counted as one more message.
      const system = body.system === undefined ? 0 : TOKENS_PER_MESSAGE + content(t, body.system);
      return system + messages(t, list(body.messages), message) + tools(t, body.tools) + tools(t, body.functions);
    }
    case 'completions':
      return promptInput(t, body.prompt) + t.text(body.suffix);
    case 'embeddings':
      return promptInput(t, body.input);
    case 'responses': {
      const instructions = typeof body.instructions === 'string' ? TOKENS_PER_MESSAGE + t.text(body.instructions) : 0;
      const input = typeof body.input === 'string' ? [body.input] : list(body.input);
      return instructions + messages(t, input, responsesItem) + tools(t, body.tools);
    }
    default:
      return 0;
  }
}
