import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { computeCost, costString, reservationBound } from '../../metering/price.rules';
import { normalizeUsage, ZERO_USAGE, type NormalizedUsage, type UsageConvention } from '../../metering/usage.rules';
import { judgeAttempt, type AttemptFailure } from '../attempts';
import type { ForwarderDeps } from '../forwarder';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_STREAM_EVENT_BYTES, drained, memo, readLimited } from '../relay';
import { KEY_LIMIT_CODE, KEY_LIMIT_STATUS, keyLimitRefusal } from '../keyLimitRefusal';
import { REGION_POLICY_CODE, REGION_POLICY_STATUS, regionPolicyMessage } from '../regionRefusal';
import { SUBPROCESSOR_STATUS, routesForCaller, subprocessorMessage, type RouteRefusal } from '../subprocessorRefusal';
import { SUSPENDED_CODE, SUSPENDED_STATUS, suspendedMessage } from '../suspendedRefusal';
import type { Meter } from '../meter';
import { sendOpenAIError } from '../openaiError';
import { outputBound, outputLimitParams } from '../requests';
import { isResponseTooLarge } from '../responseLimit';
import { RoutingTable, type ModelEntry, type PriceVersion, type Route } from '../routingTable';
import { parseEvent, SseEventTooLarge, SseSplitter } from '../sse';
import { inspectEvent } from '../streamInspector';
import { countTextTokens, estimatePromptTokens } from '../tokenEstimate';
import { callUpstream, callUpstreamWhole, isBodyTimeout, UpstreamCancel, type UpstreamCall } from '../upstream';
import { anthropicErrorType, anthropicErrorTypeOf, OVERLOADED_STATUS, sendAnthropicError } from './errors';
import { anthropicHeaders, countTokensSchema, firstMessagesIssue, messagesSchema, refusedBeta } from './requests';
import {
  chatAnswerToMessages,
  ChatToMessagesStream,
  chatToMessages,
  messagesAnswerToChat,
  MessagesStreamUsage,
  MessagesToChatStream,
  messagesToChat,
  UntranslatableRequest,
} from './translate';

/**
 * Anthropic's Messages API on the gateway, and Chat Completions for models
 * served by Anthropic providers. Per route, by the provider's kind:
 * - client and provider speak the same API: the body goes as it is (model
 *   name replaced) and events are relayed as they arrive;
 * - otherwise the request, the answer and every stream event are translated
 *   (translate.ts).
 * Fallback routes may mix kinds: each attempt is built for its own route.
 * Metering, the balance gate, cancellation and the held end of the response
 * work as in Forwarder; usage is read in the convention of the provider that
 * answered.
 */
type Client = 'messages' | 'chat';
type Obj = Record<string, any>;

interface Attempt {
  path: string;
  body: string;
  auth: 'bearer' | 'x-api-key';
  headers: Record<string, string>;
  /** The API the provider answers in. */
  speaks: Client;
}

const MAX_ERROR_BODY = 64 * 1024;
/**
 * Anthropic server tools that the provider bills per use (web search per search, code
 * execution per container hour) on top of tokens. Usage records have no place for that
 * charge, so passing them through would spend on the gateway's provider account what no
 * client is billed for: refused until they are metered.
 */
const UNBILLED_SERVER_TOOLS = /^(web_search|code_execution)_/;
const RELAYED_FOLD_BYTES = 1024 * 1024;
/** A final 5xx's error code; 529 is Anthropic's "overloaded". */
const anthropicStatusCode = (status: number): string => (status === OVERLOADED_STATUS ? 'overloaded_error' : `upstream_${status}`);

/** A request body parsed as JSON and checked against its schema, or the 400's message and code. */
function checkedBody(raw: Buffer | undefined, schema: z.ZodType): { body: Obj } | { refusal: string; code: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw && raw.length ? raw.toString('utf8') : '');
  } catch {
    return { refusal: 'The request body is not valid JSON.', code: 'invalid_json' };
  }
  const check = schema.safeParse(parsed);
  return check.success ? { body: check.data as Obj } : { refusal: firstMessagesIssue(check.error), code: 'invalid_value' };
}

export class AnthropicHandler {
  constructor(private readonly deps: ForwarderDeps) {}

  /** POST /v1/messages */
  async messages(raw: Buffer | undefined, headers: IncomingHttpHeaders, res: ServerResponse, meter: Meter): Promise<void> {
    const fail = (status: number, message: string, code: string) => this.refuse('messages', res, meter, status, message, code);
    if (meter.caller.suspended) return fail(SUSPENDED_STATUS, suspendedMessage(this.deps.billingContact), SUSPENDED_CODE);
    const check = checkedBody(raw, messagesSchema);
    if ('refusal' in check) return fail(400, check.refusal, check.code);
    const body = check.body;
    meter.stream = body.stream === true;
    const paid = Array.isArray(body.tools) ? body.tools.find((t: Obj) => typeof t?.type === 'string' && UNBILLED_SERVER_TOOLS.test(t.type)) : undefined;
    if (paid) return fail(400, `tools: the server tool '${String(paid.type).slice(0, 64)}' is billed by the provider beyond tokens and is not offered through this gateway.`, 'server_tool_not_offered');
    const beta = refusedBeta(headers);
    if (beta) return fail(400, beta, 'beta_not_offered');
    const known = this.deps.routing.get(body.model);
    if (!known) return fail(404, `model: ${body.model}`, 'model_not_found');
    // Only the routes within the account's region policy, then its data-processing agreement, fallbacks included.
    const entry = routesForCaller(known, meter.caller);
    if (typeof entry === 'string') return this.routeRefusal(res, meter, known.name, entry);
    await this.run('messages', body, raw?.length ?? 0, { perChoice: body.max_tokens, choices: 1 }, entry, headers, res, meter);
  }

  /** POST /v1/chat/completions for a model with an Anthropic route (called by Forwarder once the body is checked). */
  async chat(body: Obj, rawLength: number, entry: ModelEntry, res: ServerResponse, meter: Meter): Promise<void> {
    const bound = outputBound('chat.completions', body);
    await this.run('chat', body, rawLength, { perChoice: bound.perChoice, choices: bound.choices }, entry, {}, res, meter);
  }

  /**
   * POST /v1/messages/count_tokens: Anthropic providers count; for others the
   * gateway counts locally (an estimate, as the answer's name says nothing of).
   * Free: recorded with zero tokens and zero cost.
   */
  async countTokens(raw: Buffer | undefined, headers: IncomingHttpHeaders, res: ServerResponse, meter: Meter): Promise<void> {
    const fail = (status: number, message: string, code: string) => this.refuse('messages', res, meter, status, message, code);
    // Counting reaches the provider too: refused like any model call of a suspended account.
    if (meter.caller.suspended) return fail(SUSPENDED_STATUS, suspendedMessage(this.deps.billingContact), SUSPENDED_CODE);
    const check = checkedBody(raw, countTokensSchema);
    if ('refusal' in check) return fail(400, check.refusal, check.code);
    const beta = refusedBeta(headers);
    if (beta) return fail(400, beta, 'beta_not_offered');
    const body = check.body;
    const known = this.deps.routing.get(body.model);
    if (!known) return fail(404, `model: ${body.model}`, 'model_not_found');
    // Counting reaches the provider too: only routes within the account's region policy and agreement.
    const entry = routesForCaller(known, meter.caller);
    if (typeof entry === 'string') return this.routeRefusal(res, meter, known.name, entry);
    meter.model = entry.name;
    const abort = new UpstreamCancel();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    for (const route of entry.routes) {
      if (route.kind !== 'anthropic') break;
      meter.provider = route.provider;
      meter.upstreamModel = route.upstreamModel;
      const started = performance.now();
      const result = await callUpstreamWhole({
        agent: this.deps.agent, route, path: '/messages/count_tokens', body: JSON.stringify({ ...body, model: route.upstreamModel }),
        signal: abort, env: this.deps.env, maxResponseBytes: MAX_ERROR_BODY, auth: 'x-api-key', headers: anthropicHeaders(headers),
      });
      meter.upstreamMs = (meter.upstreamMs ?? 0) + (performance.now() - started);
      if ('kind' in result) continue;
      const status = result.response.statusCode;
      if (status >= 500 || status === 429 || status === 401 || status === 403) continue;
      let buf: Buffer;
      try {
        buf = await result.response.body.bytes();
      } catch {
        continue;
      }
      if (status >= 400) {
        const type = anthropicErrorTypeOf(buf.toString('utf8'));
        meter.finish({ statusCode: status, errorType: type ?? `upstream_${status}`, usage: ZERO_USAGE, usageEstimated: false, cost: '0' });
        if (!type) return sendAnthropicError(res, status, `The upstream provider refused the request (status ${status}).`);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': buf.length });
        res.end(buf);
        return;
      }
      meter.finish({ statusCode: 200, errorType: null, usage: ZERO_USAGE, usageEstimated: false, cost: '0' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': buf.length });
      res.end(buf);
      return;
    }
    meter.provider = null;
    meter.upstreamModel = null;
    const tokens = estimatePromptTokens('chat', body);
    meter.finish({ statusCode: 200, errorType: null, usage: ZERO_USAGE, usageEstimated: false, cost: '0' });
    const out = JSON.stringify({ input_tokens: tokens });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  }

  private async run(
    client: Client,
    body: Obj,
    rawLength: number,
    bound: { perChoice: number | null; choices: number },
    entry: ModelEntry,
    headers: IncomingHttpHeaders,
    res: ServerResponse,
    meter: Meter,
  ): Promise<void> {
    meter.model = entry.name;
    meter.stream = body.stream === true;
    const price = RoutingTable.priceAt(entry, meter.startedWall.getTime());
    if (price) {
      meter.priceId = price.id;
      meter.currency = price.currency;
    }
    const promptEstimate = memo(() => estimatePromptTokens('chat', body));
    const perChoice = bound.perChoice ?? this.deps.defaultMaxOutputTokens;
    // Messages always carries max_tokens; a chat request without a limit is bounded upstream for a prepaid account, as in Forwarder.
    const boundUpstream = bound.perChoice === null && meter.caller.prepaid ? perChoice : null;
    if (price) {
      const held = await this.deps.gate.reserve(meter.caller.accountId, reservationBound(price, rawLength, perChoice * bound.choices), meter.caller);
      if (!held.ok) {
        if (held.reason === 'key_limit') {
          return this.refuse(client, res, meter, KEY_LIMIT_STATUS, keyLimitRefusal(res, held.refusal, held.retryAfter), KEY_LIMIT_CODE);
        }
        return held.reason === 'insufficient'
          ? this.refuse(client, res, meter, 402, 'Your credit balance is too low: add credit to your account or raise its credit limit.', 'insufficient_quota')
          : this.refuse(client, res, meter, 503, 'The service is temporarily unable to check your balance. Please retry.', 'service_unavailable');
      }
      meter.reservation = held.reservation;
    }

    const abort = new UpstreamCancel();
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        abort.abort();
      }
    });

    const attemptFor = (route: Route): Attempt => {
      if (client === 'messages') {
        if (route.kind === 'anthropic') {
          return { path: '/messages', body: JSON.stringify({ ...body, model: route.upstreamModel }), auth: 'x-api-key', headers: anthropicHeaders(headers), speaks: 'messages' };
        }
        const chat = messagesToChat(body, { upstreamModel: route.upstreamModel, outputLimitParams: outputLimitParams('chat.completions', route.baseUrl) });
        return { path: '/chat/completions', body: JSON.stringify(chat), auth: 'bearer', headers: {}, speaks: 'chat' };
      }
      if (route.kind === 'anthropic') {
        const messages = chatToMessages(body, { upstreamModel: route.upstreamModel, maxTokens: perChoice });
        return { path: '/messages', body: JSON.stringify(messages), auth: 'x-api-key', headers: anthropicHeaders({}), speaks: 'messages' };
      }
      const limits = boundUpstream === null ? {} : Object.fromEntries(outputLimitParams('chat.completions', route.baseUrl).map((p) => [p, boundUpstream]));
      const upstream: Obj = { ...body, ...limits, model: route.upstreamModel };
      if (body.stream === true) upstream.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
      return { path: '/chat/completions', body: JSON.stringify(upstream), auth: 'bearer', headers: {}, speaks: 'chat' };
    };

    const call = await this.callWithFallback(entry, attemptFor, abort, meter, body.stream === true);
    if (clientGone) return meter.finish(this.outcome(499, 'client_closed', undefined, 'openai', promptEstimate, 0, price));
    if ('untranslatable' in call) return this.refuse(client, res, meter, 400, call.untranslatable, 'untranslatable_request');
    if ('failure' in call) {
      if (call.upstreamStatus === OVERLOADED_STATUS) {
        return this.refuse(client, res, meter, client === 'messages' ? OVERLOADED_STATUS : 503, 'The upstream provider is overloaded.', 'upstream_overloaded');
      }
      const [status, message] =
        call.failure === 'timeout'
          ? [504, 'The upstream provider did not answer in time.']
          : call.failure === 'upstream_5xx'
            ? [502, `The upstream provider failed (status ${call.upstreamStatus}).`]
            : call.failure === 'upstream_auth'
              ? [502, "The upstream provider refused the gateway's credentials."]
              : [502, 'The upstream provider could not be reached.'];
      return this.refuse(client, res, meter, status, message, call.code);
    }

    const { response, startedAt } = call.call;
    const speaks = call.speaks;
    const convention: UsageConvention = speaks === 'messages' ? 'anthropic' : 'openai';
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    if (status >= 400) {
      const text = await readLimited(response.body, MAX_ERROR_BODY).catch(() => '');
      meter.upstreamMs = performance.now() - startedAt;
      const code = speaks === 'messages' ? anthropicErrorTypeOf(text) : openaiErrorCode(text);
      meter.finish(this.outcome(status, code ?? `upstream_${status}`, undefined, convention, () => 0, 0, price));
      // The provider's own error body goes through when it is in the client's shape; otherwise ours, with its status.
      if (speaks === client && contentType.includes('application/json') && (client === 'messages' ? anthropicErrorTypeOf(text) !== null : openaiErrorCode(text) !== null)) {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      // The provider's own message (it may quote the request: it goes to the client who sent it, never into a record).
      const message = providerMessage(text) ?? `The upstream provider refused the request (status ${status}).`;
      if (client === 'messages') return sendAnthropicError(res, status, message);
      return sendOpenAIError(res, status, status === 429 ? 'requests' : 'invalid_request_error', message, code);
    }

    const created = Math.floor(Date.now() / 1000);
    if (contentType.includes('text/event-stream')) {
      const id = `${client === 'messages' ? 'msg_' : 'chatcmpl-'}${meter.requestId.slice(4).replace(/-/g, '')}`;
      const relay: StreamRelay =
        speaks === client
          ? client === 'messages'
            ? new AnthropicPassthrough()
            : new ChatPassthrough((body.stream_options as Obj | undefined)?.include_usage === true)
          : client === 'messages'
            ? new Translated(new ChatToMessagesStream({ id, model: entry.name, stopSequences: body.stop_sequences }))
            : new Translated(new MessagesToChatStream({ id, model: entry.name, created, includeUsage: (body.stream_options as Obj | undefined)?.include_usage === true }));
      return this.relayStream(relay, convention, response, startedAt, res, meter, price, promptEstimate, () => clientGone);
    }
    let buf: Buffer;
    try {
      buf = await response.body.bytes();
    } catch (err) {
      meter.upstreamMs = performance.now() - startedAt;
      if (clientGone) return meter.finish(this.outcome(499, 'client_closed', undefined, convention, promptEstimate, 0, price));
      if (isResponseTooLarge(err)) return this.refuse(client, res, meter, 502, "The upstream provider's answer was larger than the gateway accepts.", 'upstream_response_too_large');
      const timeout = isBodyTimeout(err);
      return this.refuse(client, res, meter, timeout ? 504 : 502, timeout ? 'The upstream provider stopped answering.' : 'The upstream provider dropped the connection.', timeout ? 'upstream_idle_timeout' : 'upstream_dropped');
    }
    meter.upstreamMs = performance.now() - startedAt;
    let answer: Obj | undefined;
    try {
      answer = JSON.parse(buf.toString('utf8'));
    } catch {
      answer = undefined;
    }
    if (speaks === client || !answer) {
      meter.finish(this.outcome(status, null, answer?.usage, convention, promptEstimate, 0, price));
      res.writeHead(status, { 'content-type': String(response.headers['content-type'] ?? 'application/json'), 'content-length': buf.length });
      res.end(buf);
      return;
    }
    const translated =
      client === 'messages' ? chatAnswerToMessages(answer, { model: entry.name, stopSequences: body.stop_sequences }) : messagesAnswerToChat(answer, { model: entry.name, created });
    meter.finish(this.outcome(status, null, translated.usageRaw, convention, promptEstimate, 0, price));
    const out = JSON.stringify(translated.body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  }

  private async callWithFallback(
    entry: ModelEntry,
    attemptFor: (route: Route) => Attempt,
    signal: UpstreamCancel,
    meter: Meter,
    stream: boolean,
  ): Promise<{ call: UpstreamCall; speaks: Client } | AttemptFailure | { untranslatable: string }> {
    let last: AttemptFailure | { untranslatable: string } = { failure: 'unreachable', code: 'no_route' };
    const routes = entry.routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      const isLast = i === routes.length - 1;
      let attempt: Attempt;
      try {
        attempt = attemptFor(route);
      } catch (err) {
        if (!(err instanceof UntranslatableRequest)) throw err;
        // Another route may speak the client's API; if none does, the client learns what could not be translated.
        last = { untranslatable: err.message };
        continue;
      }
      meter.provider = route.provider;
      meter.upstreamModel = route.upstreamModel;
      const attemptStart = performance.now();
      const call = stream ? callUpstream : callUpstreamWhole;
      const result = await call({
        agent: this.deps.agent, route, path: attempt.path, body: attempt.body, signal, env: this.deps.env,
        maxResponseBytes: this.deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, auth: attempt.auth, headers: attempt.headers,
      });
      const judged = judgeAttempt(this.deps, result, route, isLast, attemptStart, signal, meter, anthropicStatusCode);
      if (judged === null) continue;
      if ('failure' in judged) return judged;
      return { call: judged, speaks: attempt.speaks };
    }
    return last;
  }

  private async relayStream(
    relay: StreamRelay,
    convention: UsageConvention,
    response: UpstreamCall['response'],
    startedAt: number,
    res: ServerResponse,
    meter: Meter,
    price: PriceVersion | undefined,
    promptEstimate: () => number,
    clientGone: () => boolean,
  ): Promise<void> {
    res.statusCode = response.statusCode;
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    const splitter = new SseSplitter(this.deps.maxStreamEventBytes ?? DEFAULT_MAX_STREAM_EVENT_BYTES);
    let failure: string | null = null;
    let complete = false;
    try {
      for await (const chunk of response.body) {
        let out = '';
        for (const event of splitter.push(chunk as Uint8Array)) out += relay.event(event);
        if (out && !res.write(out)) await drained(res);
      }
      complete = true;
    } catch (err) {
      if (err instanceof SseEventTooLarge) response.body.destroy();
      failure = clientGone() ? 'client_closed' : err instanceof SseEventTooLarge ? 'upstream_event_too_large' : isBodyTimeout(err) ? 'upstream_idle_timeout' : 'upstream_dropped';
    }
    meter.upstreamMs = performance.now() - startedAt;
    const usageRaw = relay.usageRaw();
    const final = usageRaw !== undefined && relay.usageFinal();
    const delivered = final ? 0 : relay.deliveredTokens();
    const status = failure === 'client_closed' ? 499 : failure ? 502 : response.statusCode;
    // A stream that ended without its closing events is not given ours either: the client sees it cut.
    const tail = complete && relay.ended() ? relay.end() : '';
    if (usageRaw !== undefined && !final) {
      // Cut before message_delta: message_start's input counts are exact, its output count is
      // provisional, so the output delivered so far is counted locally and the record marked estimated.
      const partial = normalizeUsage(usageRaw, convention) ?? ZERO_USAGE;
      const usage = { ...partial, outputTokens: Math.max(partial.outputTokens, delivered), reasoningTokens: 0 };
      meter.finish({ statusCode: status, errorType: failure, usage, usageEstimated: true, cost: price ? costString(computeCost(usage, price).total) : '0' });
    } else {
      meter.finish(this.outcome(status, failure, usageRaw, convention, promptEstimate, delivered, price));
    }
    if (!clientGone()) res.end(tail);
  }

  private outcome(
    statusCode: number,
    errorType: string | null,
    usageRaw: unknown,
    convention: UsageConvention,
    estimatePromptTokens: () => number,
    estimatedOutputTokens: number,
    price: PriceVersion | undefined,
  ) {
    const reported = usageRaw === undefined ? undefined : normalizeUsage(usageRaw, convention);
    const estimatedPromptTokens = reported === undefined ? estimatePromptTokens() : 0;
    const estimated = reported === undefined && (estimatedPromptTokens > 0 || estimatedOutputTokens > 0);
    const usage: NormalizedUsage = reported ?? (estimated ? { ...ZERO_USAGE, inputTokens: estimatedPromptTokens, outputTokens: estimatedOutputTokens } : ZERO_USAGE);
    const cost = price ? costString(computeCost(usage, price).total) : '0';
    return { statusCode, errorType, usage, usageEstimated: estimated, cost };
  }

  /** No route within the account's region policy or agreement: refused and metered with its code, nothing forwarded. */
  private routeRefusal(res: ServerResponse, meter: Meter, model: string, code: RouteRefusal): void {
    meter.model = model;
    if (code === REGION_POLICY_CODE) this.refuse('messages', res, meter, REGION_POLICY_STATUS, regionPolicyMessage(meter.caller.regionPolicy!, model), code);
    else this.refuse('messages', res, meter, SUBPROCESSOR_STATUS, subprocessorMessage(model), code);
  }

  /** Records, then answers in the client's API. */
  private refuse(client: Client, res: ServerResponse, meter: Meter, status: number, message: string, code: string): void {
    meter.finish({ statusCode: status, errorType: code, usage: ZERO_USAGE, usageEstimated: false, cost: '0' });
    if (res.headersSent) return;
    if (client === 'messages') sendAnthropicError(res, status, message, anthropicErrorType(status));
    else sendOpenAIError(res, status, status === 402 || code === KEY_LIMIT_CODE ? 'insufficient_quota' : status >= 500 ? 'upstream_error' : 'invalid_request_error', message, code);
  }
}

/** What a stream relay does with each upstream event, and what the meter needs from it. */
interface StreamRelay {
  event(event: string): string;
  /** The upstream stream reached its own end marker. */
  ended(): boolean;
  /** Closing output sent with the response's end (held until the record is in the journal). */
  end(): string;
  usageRaw(): unknown;
  /** The usage seen is the provider's final report (not only message_start's opening one). */
  usageFinal(): boolean;
  /** Output tokens counted locally from what was relayed, for a stream without usage. */
  deliveredTokens(): number;
}

/**
 * Messages from an Anthropic provider to a Messages client: every event as it
 * came. Only message_start and message_delta are parsed (usage); the rest is
 * kept, in memory, to be counted only if the stream ends without usage.
 * message_stop goes out with the response's end, after the record.
 */
class AnthropicPassthrough implements StreamRelay {
  private readonly usage = new MessagesStreamUsage();
  private relayed: string[] = [];
  private relayedBytes = 0;
  private folded = 0;
  private stop = '';

  event(event: string): string {
    if (event.startsWith('event: message_stop')) {
      this.stop = event;
      return '';
    }
    if (event.startsWith('event: message_start') || event.startsWith('event: message_delta')) {
      const { data } = parseEvent(event);
      try {
        this.usage.see(JSON.parse(data ?? ''));
      } catch {
        // not JSON: relayed as it is, nothing to meter
      }
    } else if (event.startsWith('event: content_block_delta')) {
      this.relayed.push(event);
      this.relayedBytes += event.length;
      if (this.relayedBytes > RELAYED_FOLD_BYTES) {
        this.folded += this.count();
        this.relayed = [];
        this.relayedBytes = 0;
      }
    }
    return event;
  }

  private count(): number {
    let text = '';
    for (const e of this.relayed) {
      try {
        const d = JSON.parse(parseEvent(e).data ?? '')?.delta;
        text += d?.text ?? d?.partial_json ?? d?.thinking ?? '';
      } catch {
        // skip
      }
    }
    return countTextTokens(text);
  }

  ended = () => this.stop !== '';
  end = () => this.stop;
  usageRaw = () => this.usage.final();
  usageFinal = () => this.usage.complete();
  deliveredTokens = () => this.folded + this.count();
}

/** Chat Completions from an OpenAI-compatible provider to a chat client (a fallback of a model with an Anthropic route). */
class ChatPassthrough implements StreamRelay {
  private usage: unknown;
  private text = '';
  private done = '';

  constructor(private readonly clientWantsUsage: boolean) {}

  event(event: string): string {
    if (event.startsWith('data: [DONE]')) {
      this.done = event;
      return '';
    }
    const seen = inspectEvent('chat.completions', event);
    if (seen.usage) this.usage = seen.usage;
    if (seen.text && this.text.length < RELAYED_FOLD_BYTES) this.text += seen.text;
    if (seen.usageOnly && !this.clientWantsUsage) return '';
    return event;
  }

  ended = () => this.done !== '';
  end = () => this.done;
  usageRaw = () => this.usage;
  usageFinal = () => true;
  deliveredTokens = () => countTextTokens(this.text);
}

/** Either translation; it ends when the provider's stream ended whole. */
class Translated implements StreamRelay {
  private sawEnd = false;

  constructor(private readonly t: ChatToMessagesStream | MessagesToChatStream) {}

  event(event: string): string {
    if (event.startsWith('data: [DONE]') || event.startsWith('event: message_stop')) this.sawEnd = true;
    return this.t.event(event);
  }

  ended = () => this.sawEnd || this.t.finished;
  end = () => this.t.end() + (this.t instanceof MessagesToChatStream ? 'data: [DONE]\n\n' : '');
  usageRaw = () => this.t.usageRaw;
  usageFinal = () => (this.t instanceof MessagesToChatStream ? this.t.usageComplete : true);
  deliveredTokens = () => countTextTokens(this.t.text.slice(0, RELAYED_FOLD_BYTES * 4));
}

/** error.message of an OpenAI or Anthropic error body, bounded. */
function providerMessage(text: string): string | null {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } })?.error?.message;
    return typeof m === 'string' && m !== '' ? m.slice(0, 4_096) : null;
  } catch {
    return null;
  }
}

function openaiErrorCode(text: string): string | null {
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; type?: unknown } })?.error;
    if (typeof e !== 'object' || e === null) return null;
    for (const v of [e.code, e.type]) if (typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v)) return v;
    return 'upstream_error';
  } catch {
    return null;
  }
}



