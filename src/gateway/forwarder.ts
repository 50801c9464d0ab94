import type { ServerResponse } from 'node:http';
import type { Agent } from 'undici';
import { computeCost, costString, reservationBound } from '../metering/price.rules';
import { normalizeUsage, ZERO_USAGE, type NormalizedUsage } from '../metering/usage.rules';
import type { Logger } from '../logger';
import type { Endpoint } from '../metering/record';
import { AnthropicHandler } from './anthropic/handler';
import { judgeAttempt, upstreamStatusCode, type AttemptFailure } from './attempts';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_STREAM_EVENT_BYTES, drained, memo, readLimited } from './relay';
import type { BalanceGate } from './balanceGate';
import { KEY_LIMIT_CODE, KEY_LIMIT_STATUS, keyLimitRefusal } from './keyLimitRefusal';
import { REGION_POLICY_CODE, REGION_POLICY_OPENAI_TYPE, REGION_POLICY_STATUS, regionPolicyMessage } from './regionRefusal';
import { SUBPROCESSOR_CODE, SUBPROCESSOR_OPENAI_TYPE, SUBPROCESSOR_STATUS, routesForCaller, subprocessorMessage } from './subprocessorRefusal';
import { SUSPENDED_CODE, SUSPENDED_OPENAI_TYPE, SUSPENDED_STATUS, suspendedMessage } from './suspendedRefusal';
import type { Meter } from './meter';
import { sendOpenAIError } from './openaiError';
import { ASKS_FOR_STREAM_USAGE, endpointPaths, endpointSchemas, firstIssue, outputBound, outputLimitParams } from './requests';
import { RoutingTable, type ModelEntry, type PriceVersion, type Route } from './routingTable';
import { isResponseTooLarge } from './responseLimit';
import { SseEventTooLarge, SseSplitter } from './sse';
import { inspectEvent } from './streamInspector';
import { countTextTokens, estimatePromptTokens } from './tokenEstimate';
import { callUpstream, callUpstreamWhole, isBodyTimeout, UpstreamCancel, type UpstreamCall } from './upstream';

/**
 * Forwards one request: validate, resolve the model, call the provider (with
 * fallback while nothing has reached the client), relay the answer as it
 * arrives, and hand the meter its outcome. Request and response bodies live
 * only in this function's memory; nothing from them is logged or recorded
 * except token counts.
 */
export interface ForwarderDeps {
  routing: RoutingTable;
  gate: BalanceGate;
  /**
   * Output tokens per choice reserved when a request sets no limit; for a
   * prepaid account the gateway also sends this limit to the provider, so
   * the reservation bounds what the request can cost.
   */
  defaultMaxOutputTokens: number;
  agent: Agent;
  logger: Logger;
  env: Record<string, string | undefined>;
  /** A provider's non-streamed answer larger than this is a 502 (default 32 MiB). */
  maxResponseBytes?: number;
  /** One SSE event larger than this cuts the stream (default 16 MiB). */
  maxStreamEventBytes?: number;
  /** Told when a provider refuses our credential (401/403): a metric, never its body. */
  onUpstreamAuthFailure?: (provider: string, status: number) => void;
  /** Where a suspended account is told to turn (config INVOICE_ISSUER_EMAIL); absent, the message names none. */
  billingContact?: string;
}

const ESTIMATE_ENDPOINT: Record<Endpoint, 'chat' | 'completions' | 'embeddings' | 'responses'> = {
  'chat.completions': 'chat',
  completions: 'completions',
  embeddings: 'embeddings',
  responses: 'responses',
};
const MAX_ERROR_BODY = 64 * 1024;
/** Past this many bytes of relayed events, their text is counted and let go (see relayStream). */
const RELAYED_FOLD_BYTES = 1024 * 1024;

export class Forwarder {
  private readonly maxResponseBytes: number;
  /** Anthropic's Messages API, and chat for models with an Anthropic route. */
  readonly anthropic: AnthropicHandler;

  constructor(private readonly deps: ForwarderDeps) {
    this.maxResponseBytes = deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.anthropic = new AnthropicHandler(deps);
  }

  async handle(endpoint: Endpoint, raw: Buffer | undefined, res: ServerResponse, meter: Meter): Promise<void> {
    // A suspended account makes no model calls (the flag comes with the cached key: no query).
    if (meter.caller.suspended) {
      return this.refuse(res, meter, SUSPENDED_STATUS, SUSPENDED_OPENAI_TYPE, suspendedMessage(this.deps.billingContact), SUSPENDED_CODE);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw && raw.length ? raw.toString('utf8') : '');
    } catch {
      return this.refuse(res, meter, 400, 'invalid_request_error', 'We could not parse the JSON body of your request.', 'invalid_json');
    }
    const check = endpointSchemas[endpoint].safeParse(parsed);
    if (!check.success) {
      const { param, message } = firstIssue(check.error);
      return this.refuse(res, meter, 400, 'invalid_request_error', message, 'invalid_value', param);
    }
    const body = check.data;
    meter.stream = body.stream === true;

    const known = this.deps.routing.get(body.model);
    if (!known) {
      return this.refuse(res, meter, 404, 'invalid_request_error', `The model \`${body.model}\` does not exist or you do not have access to it.`, 'model_not_found', 'model');
    }
    // Only the routes within the account's region policy, then its data-processing agreement, fallbacks included
    // (regionRefusal.ts, subprocessorRefusal.ts).
    const entry = routesForCaller(known, meter.caller);
    if (entry === REGION_POLICY_CODE) {
      meter.model = known.name;
      return this.refuse(res, meter, REGION_POLICY_STATUS, REGION_POLICY_OPENAI_TYPE, regionPolicyMessage(meter.caller.regionPolicy!, known.name), REGION_POLICY_CODE);
    }
    if (entry === SUBPROCESSOR_CODE) {
      meter.model = known.name;
      return this.refuse(res, meter, SUBPROCESSOR_STATUS, SUBPROCESSOR_OPENAI_TYPE, subprocessorMessage(known.name), SUBPROCESSOR_CODE);
    }
    // Chat for a model an Anthropic provider serves (on any of its routes) is translated per route there.
    if (endpoint === 'chat.completions' && entry.routes.some((r) => r.kind === 'anthropic')) return this.anthropic.chat(body, raw?.length ?? 0, entry, res, meter);
    meter.model = entry.name;
    const price = RoutingTable.priceAt(entry, meter.startedWall.getTime());
    if (price) {
      meter.priceId = price.id;
      meter.currency = price.currency;
    }

    const promptEstimate = memo(() => estimatePromptTokens(ESTIMATE_ENDPOINT[endpoint], body));

    // What the request can make the provider generate. A prepaid account's request
    // without a limit gets the default as its limit upstream too: reserving the default
    // while the provider may generate its own (far larger) maximum would let one request
    // spend past the balance.
    const bound = outputBound(endpoint, body);
    const perChoice = bound.perChoice ?? this.deps.defaultMaxOutputTokens;
    const boundUpstream = bound.perChoice === null && meter.caller.prepaid && endpoint !== 'embeddings' ? { endpoint, tokens: perChoice } : null;

    // Reserve the request's maximum cost before anything is forwarded.
    if (price) {
      const maxOutput = perChoice * bound.choices;
      // The body's byte count bounds its token count from above (a token is at least one byte):
      // a safe reservation that costs nothing to compute, unlike tokenizing every prompt.
      const maxCost = reservationBound(price, raw?.length ?? 0, maxOutput);
      const held = await this.deps.gate.reserve(meter.caller.accountId, maxCost, meter.caller);
      if (!held.ok) {
        if (held.reason === 'key_limit') {
          return this.refuse(res, meter, KEY_LIMIT_STATUS, 'insufficient_quota', keyLimitRefusal(res, held.refusal, held.retryAfter), KEY_LIMIT_CODE);
        }
        return held.reason === 'insufficient'
          ? this.refuse(res, meter, 402, 'insufficient_quota', 'You exceeded your current quota: add credit to your account or raise its credit limit.', 'insufficient_quota')
          : this.refuse(res, meter, 503, 'server_error', 'The service is temporarily unable to check your balance. Please retry.', 'service_unavailable');
      }
      meter.reservation = held.reservation;
    }

    // Ask for usage in the stream's last chunk; remember whether the client wanted to see it.
    const clientWantsStreamUsage = (body.stream_options as { include_usage?: boolean } | null | undefined)?.include_usage === true;
    const upstreamBody: Record<string, unknown> = { ...body };
    if (meter.stream && ASKS_FOR_STREAM_USAGE.has(endpoint)) {
      upstreamBody.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
    }

    const abort = new UpstreamCancel();
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        abort.abort();
      }
    });

    const call = await this.callWithFallback(entry, endpoint, upstreamBody, abort, meter, boundUpstream);
    if (clientGone) {
      meter.finish(this.outcome(499, 'client_closed', undefined, promptEstimate, 0, price));
      return;
    }
    if ('failure' in call) {
      const [status, message] =
        call.failure === 'timeout'
          ? [504, 'The upstream provider did not answer in time.']
          : call.failure === 'upstream_5xx'
            ? [502, `The upstream provider failed (status ${call.upstreamStatus}).`]
            : call.failure === 'upstream_auth'
              ? [502, 'The upstream provider refused the gateway\'s credentials.']
              : [502, 'The upstream provider could not be reached.'];
      return this.refuse(res, meter, status, 'upstream_error', message, call.code);
    }

    const { response } = call.call;
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    if (status >= 400) {
      // Pass the provider's 4xx through (its status, its OpenAI-shaped error); never its text into our records.
      const text = await readLimited(response.body, MAX_ERROR_BODY).catch(() => '');
      meter.upstreamMs = performance.now() - call.call.startedAt;
      const code = providerErrorCode(text);
      meter.finish(this.outcome(status, code ?? `upstream_${status}`, undefined, () => 0, 0, price));
      if (contentType.includes('application/json') && isOpenAIError(text)) {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      } else {
        sendOpenAIError(res, status, 'upstream_error', `The upstream provider refused the request (status ${status}).`, code);
      }
      return;
    }

    if (contentType.includes('text/event-stream')) {
      await this.relayStream(endpoint, response, call.call.startedAt, res, meter, clientWantsStreamUsage, price, promptEstimate, () => clientGone);
    } else {
      await this.relayJson(response, call.call.startedAt, res, meter, price, promptEstimate, () => clientGone);
    }
  }

  private async callWithFallback(
    entry: ModelEntry,
    endpoint: Endpoint,
    upstreamBody: Record<string, unknown>,
    signal: UpstreamCancel,
    meter: Meter,
    bound: { endpoint: Exclude<Endpoint, 'embeddings'>; tokens: number } | null,
  ): Promise<{ call: UpstreamCall } | AttemptFailure> {
    const last: AttemptFailure = { failure: 'unreachable', code: 'no_route' };
    const routes: Route[] = entry.routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      meter.provider = route.provider;
      meter.upstreamModel = route.upstreamModel;
      // The gateway's own output limit, in the names this route honours (see outputLimitParams).
      const limits = bound ? Object.fromEntries(outputLimitParams(bound.endpoint, route.baseUrl).map((p) => [p, bound.tokens])) : {};
      const body = JSON.stringify({ ...upstreamBody, ...limits, model: route.upstreamModel });
      const attemptStart = performance.now();
      // A streamed answer is relayed as it arrives; any other is relayed whole, so it is read whole.
      const call = upstreamBody.stream === true ? callUpstream : callUpstreamWhole;
      const result = await call({ agent: this.deps.agent, route, path: endpointPaths[endpoint], body, signal, env: this.deps.env, maxResponseBytes: this.maxResponseBytes });
      const judged = judgeAttempt(this.deps, result, route, i === routes.length - 1, attemptStart, signal, meter, upstreamStatusCode);
      if (judged === null) continue;
      if ('failure' in judged) return judged;
      return { call: judged };
    }
    return last;
  }

  private async relayJson(
    response: UpstreamCall['response'],
    startedAt: number,
    res: ServerResponse,
    meter: Meter,
    price: PriceVersion | undefined,
    promptEstimate: () => number,
    clientGone: () => boolean,
  ): Promise<void> {
    let buf: Buffer;
    try {
      buf = await response.body.bytes();
    } catch (err) {
      meter.upstreamMs = performance.now() - startedAt;
      if (clientGone()) return meter.finish(this.outcome(499, 'client_closed', undefined, promptEstimate, 0, price));
      if (isResponseTooLarge(err)) {
        return this.refuse(res, meter, 502, 'upstream_error', 'The upstream provider\'s answer was larger than the gateway accepts.', 'upstream_response_too_large');
      }
      const timeout = isBodyTimeout(err);
      return this.refuse(res, meter, timeout ? 504 : 502, 'upstream_error', timeout ? 'The upstream provider stopped answering.' : 'The upstream provider dropped the connection.', timeout ? 'upstream_idle_timeout' : 'upstream_dropped');
    }
    meter.upstreamMs = performance.now() - startedAt;
    let usageRaw: unknown;
    try {
      usageRaw = (JSON.parse(buf.toString('utf8')) as { usage?: unknown })?.usage;
    } catch {
      usageRaw = undefined;
    }
    meter.finish(this.outcome(response.statusCode, null, usageRaw, promptEstimate, 0, price));
    res.writeHead(response.statusCode, { 'content-type': String(response.headers['content-type'] ?? 'application/json'), 'content-length': buf.length });
    res.end(buf);
  }

  private async relayStream(
    endpoint: Endpoint,
    response: UpstreamCall['response'],
    startedAt: number,
    res: ServerResponse,
    meter: Meter,
    clientWantsUsage: boolean,
    price: PriceVersion | undefined,
    promptEstimate: () => number,
    clientGone: () => boolean,
  ): Promise<void> {
    res.statusCode = response.statusCode;
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    // One event (or an endless line) larger than this cuts the stream: memory per
    // stream stays bounded whatever the provider sends.
    const splitter = new SseSplitter(this.deps.maxStreamEventBytes ?? DEFAULT_MAX_STREAM_EVENT_BYTES);
    // Events are kept (in memory only) and parsed for their text only if the
    // stream ends without a usage report; otherwise only the usage event is parsed.
    // A long stream's kept events are counted and let go every RELAYED_FOLD_BYTES.
    let relayed: string[] = [];
    let relayedBytes = 0;
    let foldedTokens = 0;
    let usageRaw: unknown;
    let failure: string | null = null;
    // The end-of-stream marker goes out with the response's end, which waits for the
    // metering record (see holdEnd in app.ts): a stream the client saw complete is on file.
    let done = '';
    try {
      for await (const chunk of response.body) {
        let out = '';
        for (const event of splitter.push(chunk as Uint8Array)) {
          if (event.startsWith('data: [DONE]')) {
            if (!done) done = event;
            continue;
          }
          if (mayCarryUsage(event)) {
            const seen = inspectEvent(endpoint, event);
            if (seen.usage) usageRaw = seen.usage;
            if (seen.usageOnly && !clientWantsUsage) continue;
          }
          relayed.push(event);
          relayedBytes += event.length;
          out += event;
        }
        if (relayedBytes > RELAYED_FOLD_BYTES) {
          if (!usageRaw) foldedTokens += countTextTokens(relayed.map((e) => inspectEvent(endpoint, e).text ?? '').join(''));
          relayed = [];
          relayedBytes = 0;
        }
        // A client reading slower than the provider writes holds the provider back
        // (TCP backpressure) instead of the gateway buffering the difference.
        if (out && !res.write(out)) await drained(res);
      }
      const rest = splitter.rest();
      if (rest.trim()) res.write(rest);
    } catch (err) {
      if (err instanceof SseEventTooLarge) response.body.destroy();
      failure = clientGone()
        ? 'client_closed'
        : err instanceof SseEventTooLarge
          ? 'upstream_event_too_large'
          : isBodyTimeout(err)
            ? 'upstream_idle_timeout'
            : 'upstream_dropped';
    }
    meter.upstreamMs = performance.now() - startedAt;
    const deliveredTokens = usageRaw ? 0 : foldedTokens + countTextTokens(relayed.map((e) => inspectEvent(endpoint, e).text ?? '').join(''));
    const status = failure === 'client_closed' ? 499 : failure ? 502 : response.statusCode;
    meter.finish(this.outcome(status, failure, usageRaw, promptEstimate, deliveredTokens, price));
    // A stream cut by the provider ends without [DONE]; the client sees it as an incomplete stream.
    if (!clientGone()) res.end(done);
  }

  /** Builds the meter outcome: provider usage when given, else a local estimate marked as such. */
  private outcome(
    statusCode: number,
    errorType: string | null,
    usageRaw: unknown,
    estimatePromptTokens: () => number,
    estimatedOutputTokens: number,
    price: PriceVersion | undefined,
  ) {
    const reported = usageRaw === undefined ? undefined : normalizeUsage(usageRaw);
    // Counting the prompt locally is only needed when the provider reported nothing.
    const estimatedPromptTokens = reported === undefined ? estimatePromptTokens() : 0;
    const estimated = reported === undefined && (estimatedPromptTokens > 0 || estimatedOutputTokens > 0);
    const usage: NormalizedUsage = reported ?? (estimated ? { ...ZERO_USAGE, inputTokens: estimatedPromptTokens, outputTokens: estimatedOutputTokens } : ZERO_USAGE);
    const cost = price ? costString(computeCost(usage, price).total) : '0';
    return { statusCode, errorType, usage, usageEstimated: estimated, cost };
  }

  /** Records, then answers: a client that saw the answer can rely on the record being in the journal. */
  private refuse(res: ServerResponse, meter: Meter, status: number, type: string, message: string, code: string, param: string | null = null): void {
    meter.finish({ statusCode: status, errorType: code, usage: ZERO_USAGE, usageEstimated: false, cost: '0' });
    if (!res.headersSent) sendOpenAIError(res, status, type, message, code, param);
  }
}

function isOpenAIError(text: string): boolean {
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown } };
    return typeof j?.error === 'object' && j.error !== null;
  } catch {
    return false;
  }
}

/** The provider's error code or type, if it is an identifier; its message is never kept. */
function providerErrorCode(text: string): string | null {
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; type?: unknown } })?.error;
    for (const v of [e?.code, e?.type]) if (typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v)) return v;
  } catch {
    // not JSON
  }
  return null;
}



/** Cheap pre-check before parsing an SSE event: only a non-null usage object needs a look. */
function mayCarryUsage(event: string): boolean {
  const i = event.indexOf('"usage"');
  if (i === -1) return false;
  return !/^"usage"\s*:\s*null/.test(event.slice(i, i + 20)) || event.indexOf('"usage"', i + 7) !== -1;
}
