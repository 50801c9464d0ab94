import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import type { Registry } from 'prom-client';
import { clientAddressOf } from '../http/clientAddress';
import { healthRouter, type ReadinessCheck } from '../http/health';
import { createMetricsRegistry } from '../http/metrics';
import { requestIdMiddleware } from '../http/requestId';
import type { Logger } from '../logger';
import type { RecordEndpoint, UsageRecord } from '../metering/record';
import { sendAnthropicErrorLike } from './anthropic/errors';
import type { AuthFailureLimiter } from './authLimiter';
import type { BalanceGate, Reservation } from './balanceGate';
import type { Forwarder } from './forwarder';
import type { Caller, KeyCache } from './keyCache';
import type { KeysService } from '../accounts/keys.service';
import { keysApiRouter } from './keysApi';
import type { AccountEventsService } from '../notifications/events.service';
import type { ClientApiService } from '../accounts/clientApi.service';
import { accountApiRouter, type AccountApiDeps } from './accountApi';
import type { WebhooksService } from '../webhooks/webhooks.service';
import { webhooksApiRouter } from './webhooksApi';
import { Meter } from './meter';
import { gatewayMetrics, requestObserver, type GatewayMetrics } from './metrics';
import { sendOpenAIError } from './openaiError';
import type { RateLimiter } from './rateLimit';
import type { RoutingTable } from './routingTable';
import type { SecurityEventSink } from './securityEvents';
import { modelsForCaller } from './subprocessorRefusal';

export interface GatewayAppDeps {
  logger: Logger;
  readiness: Record<string, ReadinessCheck>;
  readyCheckTimeoutMs: number;
  /** Absent: health and metrics only (used before the forwarding parts are wired). */
  forwarding?: {
    keys: KeyCache;
    limiter: RateLimiter;
    /** Failed authentications per source address; absent, no limit. */
    authLimiter?: AuthFailureLimiter;
    routing: RoutingTable;
    forwarder: Forwarder;
    gate: BalanceGate;
    security: SecurityEventSink;
    /**
     * Receives each finished request's record; the server queues it for the
     * metering journal and calls `onWritten` once it is on file (or failed).
     * `alone`: no other forwarded request is in flight, so there is no batch
     * to wait for.
     */
    record: (record: UsageRecord, onWritten: (err: Error | null) => void, alone: boolean) => void;
    instanceId: string;
    defaultRpm: number;
    maxBodyBytes: number;
    trustedProxies: readonly string[];
    /** Key management by management keys (/v1/keys); absent, those routes are unknown URLs. */
    accountKeys?: KeysService;
    /** The account's alert settings for /v1/alerts (management keys). */
    accountAlerts?: Pick<AccountEventsService, 'getAlertSettings' | 'setAlertSettings'>;
    /** The client read API (/v1/key, /v1/credits, /v1/generation, /v1/activity) with its own per-key bound; absent, unknown URLs. */
    accountApi?: { service: ClientApiService; limiter: RateLimiter; rpm: number; subprocessors?: AccountApiDeps['subprocessors'] };
    /** Webhook endpoints and delivery log for management keys (/v1/webhooks); absent, unknown URLs. */
    accountWebhooks?: WebhooksService;
  };
  registry?: Registry;
}

const ENDPOINTS = new Map<string, RecordEndpoint>([
  ['/v1/chat/completions', 'chat.completions'],
  ['/v1/messages', 'messages'],
  ['/v1/messages/count_tokens', 'messages.count_tokens'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/responses', 'responses'],
]);

/**
 * The client-facing server: OpenAI-compatible /v1 routes. Order per request:
 * request id, authentication and rate limit (before reading a body, so
 * strangers cannot make us buffer 10 MB), body, validation, routing, forwarding.
 * From authentication on, every request ends in exactly one metering record.
 *
 * The four POST routes are served by a plain node:http handler in front of
 * Express: they are nearly every request the gateway sees, and Express's
 * router and response helpers were a tenth of the gateway's CPU time per
 * request (see docs/benchmarks.md). Everything else (models,
 * health, metrics, unknown URLs) goes through Express.
 */
export function createGatewayApp(deps: GatewayAppDeps): { app: RequestListener; metrics: GatewayMetrics } {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const registry = deps.registry ?? createMetricsRegistry('gateway');
  const metrics = gatewayMetrics(registry);
  const fw = deps.forwarding;
  // X-Forwarded-For is believed only from the configured proxies.
  const sourceIpOf = clientAddressOf(fw ? fw.trustedProxies : []);

  app.use(requestIdMiddleware('req-'));

  let v1: ((endpoint: RecordEndpoint, req: IncomingMessage, res: ServerResponse) => Promise<void>) | null = null;

  if (fw) {
    const access = deps.logger.child({ log: 'access' });
    const observe = requestObserver(metrics);
    /** Forwarded (/v1 POST) requests between arrival and their handler's return. */
    let inFlight = 0;
    /** Bookkeeping that the answer does not wait for: the balance slice, metrics, the access log. */
    const settle = (record: UsageRecord, overheadMs: number, reservation: Reservation | null) => {
      fw.gate.commit(reservation, record.cost);
      observe(
        record.model ?? 'unknown',
        record.provider ?? 'none',
        record.statusCode,
        record.latencyMs / 1000,
        record.upstreamLatencyMs !== null && record.provider ? record.upstreamLatencyMs / 1000 : null,
        Math.max(0, overheadMs) / 1000,
      );
      if (!access.isLevelEnabled('info')) return;
      // Allowlisted fields only: ids, names, numbers. Never a body, never a header value but the UA length.
      access.info({
        requestId: record.requestId,
        endpoint: record.endpoint,
        status: record.statusCode,
        errorType: record.errorType,
        model: record.model,
        provider: record.provider,
        stream: record.stream,
        accountId: record.accountId,
        apiKeyId: record.apiKeyId,
        inputTokens: record.inputTokens + record.cacheReadTokens + record.cacheWriteTokens,
        outputTokens: record.outputTokens,
        usageEstimated: record.usageEstimated,
        latencyMs: Math.round(record.latencyMs * 10) / 10,
        upstreamMs: record.upstreamLatencyMs === null ? null : Math.round(record.upstreamLatencyMs * 10) / 10,
      });
    };
    const emit = (record: UsageRecord, overheadMs: number, reservation: Reservation | null, res: ServerResponse | null) => {
      // Recorded before answered: the response's end is held until the journal has the
      // record; if the journal cannot take it, the client gets a cut connection, never an
      // answer we have no record of. The rest waits until the answer is on its way, so a
      // request's latency carries only what the answer needs.
      if (res && !res.writableEnded && !res.destroyed) {
        fw.record(record, holdEnd(res, () => settle(record, overheadMs, reservation)), inFlight <= 1);
      } else {
        fw.record(record, noop, inFlight <= 1);
        settle(record, overheadMs, reservation);
      }
    };

    /**
     * Authentication and rate limit. Answers the refusal itself and returns null,
     * or returns the caller (and, for a metered endpoint, its meter).
     */
    const authenticate = async (
      endpoint: RecordEndpoint | null,
      req: IncomingMessage,
      res: ServerResponse,
      requestId: string,
      /** The error shape of the route: OpenAI's, or Anthropic's on the Messages routes. */
      sendError: typeof sendOpenAIError = sendOpenAIError,
    ): Promise<{ caller: Caller; meter: Meter | null } | null> => {
      const sourceIp = sourceIpOf(req);
      const userAgent = req.headers['user-agent'] ?? null;
      // An address out of failed attempts is refused before its key is looked at, so a
      // flood of guessed keys reaches neither the database nor the security-event queue row by row.
      const authLimiter = fw.authLimiter;
      const throttled = (wait: number) => {
        fw.security.record({ kind: 'rate_limited', reason: 'auth_failures', accountId: null, apiKeyId: null, requestId, sourceIp, userAgent });
        metrics.securityEvents.inc({ kind: 'auth_throttled' });
        res.setHeader('retry-after', String(wait));
        sendError(res, 429, 'requests', `Too many failed authentication attempts from your address. Please try again in ${wait}s.`, 'too_many_auth_failures');
        return null;
      };
      const wait = authLimiter ? authLimiter.retryAfter(sourceIp) : 0;
      if (wait > 0) return throttled(wait);
      let charged = false;
      // Anthropic's clients send the key as x-api-key; Authorization wins when both are there.
      const xApiKey = req.headers['x-api-key'];
      const authorization = req.headers.authorization ?? (typeof xApiKey === 'string' && xApiKey ? `Bearer ${xApiKey}` : undefined);
      const answer = fw.keys.authenticate(authorization, authLimiter && (() => (charged = authLimiter.admit(sourceIp))));
      const result = answer instanceof Promise ? await answer : answer;
      if (!result.ok && result.reason === 'throttled') return throttled(Math.max(1, authLimiter?.retryAfter(sourceIp) ?? 1));
      if (charged && (result.ok || result.reason === 'unavailable')) authLimiter?.refund(sourceIp);
      if (!result.ok && result.reason === 'unavailable') {
        sendError(res, 503, 'server_error', 'The service is temporarily unable to check API keys. Please retry.', 'service_unavailable');
        return null;
      }
      if (!result.ok) {
        if (!charged) authLimiter?.fail(sourceIp);
        fw.security.record({ kind: 'auth_failed', reason: result.reason, accountId: null, apiKeyId: null, requestId, sourceIp, userAgent });
        metrics.securityEvents.inc({ kind: 'auth_failed' });
        if (result.reason === 'expired_key') {
          sendError(res, 401, 'invalid_request_error', `This API key expired at ${new Date(result.expiredAt).toISOString()}.`, 'key_expired');
          return null;
        }
        const message =
          result.reason === 'missing_key'
            ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            : 'Incorrect API key provided.';
        sendError(res, 401, 'invalid_request_error', message, result.reason === 'missing_key' ? 'missing_api_key' : 'invalid_api_key');
        return null;
      }
      const caller = result.caller;
      let meter: Meter | null = null;
      if (endpoint) {
        meter = new Meter(requestId, caller, performance.now(), new Date(), sourceIp, userAgent, fw.instanceId, emit);
        meter.endpoint = endpoint;
        meter.res = res;
      }
      const rpm = caller.rateLimitRpm ?? fw.defaultRpm;
      if (rpm > 0) {
        const taken = fw.limiter.take(caller.apiKeyId, rpm);
        res.setHeader('x-ratelimit-limit-requests', String(rpm));
        if (!taken.allowed) {
          fw.security.record({ kind: 'rate_limited', reason: `rpm_${rpm}`, accountId: caller.accountId, apiKeyId: caller.apiKeyId, requestId, sourceIp, userAgent });
          metrics.securityEvents.inc({ kind: 'rate_limited' });
          res.setHeader('retry-after', String(taken.retryAfterSeconds));
          res.setHeader('x-ratelimit-remaining-requests', '0');
          meter?.finish({ statusCode: 429, errorType: 'rate_limit_exceeded', usage: ZERO, usageEstimated: false, cost: '0' });
          sendError(res, 429, 'requests', `Rate limit reached for requests: limit ${rpm} per minute. Please try again in ${taken.retryAfterSeconds}s.`, 'rate_limit_exceeded');
          return null;
        }
        res.setHeader('x-ratelimit-remaining-requests', String(taken.remaining));
      }
      // Management keys hold the power to mint keys; keeping them out of model calls keeps them out of
      // the places model keys end up (apps, notebooks, logs). GET /v1/models (endpoint null) stays open.
      if (meter && caller.kind === 'management') {
        meter.finish({ statusCode: 403, errorType: 'management_key_cannot_call_models', usage: ZERO, usageEstimated: false, cost: '0' });
        sendError(
          res,
          403,
          'permission_error',
          'This is a management key: it manages the account and its keys but cannot make model calls. Use an inference key.',
          'management_key_cannot_call_models',
        );
        return null;
      }
      return { caller, meter };
    };

    app.get('/v1/models', async (req, res) => {
      // Anthropic's clients always send anthropic-version: they get Anthropic's list shape and errors.
      const anthropic = req.headers['anthropic-version'] !== undefined;
      const auth = await authenticate(null, req, res, res.locals.requestId as string, anthropic ? sendAnthropicErrorLike : sendOpenAIError);
      if (!auth) return;
      // Only models the caller's region policy and data-processing agreement leave a route of (no query).
      const models = modelsForCaller(fw.routing.list(), auth.caller);
      if (anthropic) {
        const data = models.map((m) => ({ type: 'model', id: m.name, display_name: m.name, created_at: new Date(m.createdAt).toISOString() }));
        res.json({ data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
        return;
      }
      res.json({
        object: 'list',
        data: models.map((m) => ({ id: m.name, object: 'model', created: Math.floor(m.createdAt / 1000), owned_by: 'mixroute' })),
      });
    });

    if (fw.accountKeys) {
      app.use(keysApiRouter({ keys: fw.accountKeys, alerts: fw.accountAlerts, authenticate: async (req, res) => (await authenticate(null, req, res, (res as express.Response).locals.requestId as string))?.caller ?? null }));
    }
    if (fw.accountWebhooks) {
      app.use(webhooksApiRouter({ webhooks: fw.accountWebhooks, authenticate: async (req, res) => (await authenticate(null, req, res, (res as express.Response).locals.requestId as string))?.caller ?? null }));
    }
    if (fw.accountApi) {
      app.use(
        accountApiRouter({
          ...fw.accountApi,
          logger: deps.logger,
          authenticate: async (req, res, requestId) => (await authenticate(null, req, res, requestId))?.caller ?? null,
        }),
      );
    }

    // body-parser's reader works on a plain IncomingMessage: limit, Content-Length checks, gzip/deflate/br.
    const readBody = express.raw({ type: () => true, limit: fw.maxBodyBytes });
    const bodyOf = (req: IncomingMessage, res: ServerResponse) =>
      new Promise<Buffer | undefined>((resolve, reject) => {
        readBody(req as express.Request, res as express.Response, (err?: unknown) => (err ? reject(err) : resolve((req as { body?: Buffer }).body)));
      });

    v1 = async (endpoint, req, res) => {
      const requestId = `req-${randomUUID()}`;
      res.setHeader('x-request-id', requestId);
      let meter: Meter | null = null;
      // The Messages routes answer every refusal in Anthropic's error shape.
      const anthropic = endpoint === 'messages' || endpoint === 'messages.count_tokens';
      const sendError = anthropic ? sendAnthropicErrorLike : sendOpenAIError;
      inFlight++;
      try {
        const auth = await authenticate(endpoint, req, res, requestId, sendError);
        if (!auth) return;
        meter = auth.meter!;
        let raw: Buffer | undefined;
        try {
          raw = await bodyOf(req, res);
        } catch (err) {
          const type = (err as { type?: string })?.type;
          const status = type === 'entity.too.large' ? 413 : typeof (err as { status?: number })?.status === 'number' && (err as { status: number }).status < 500 ? 400 : 500;
          if (status === 500) throw err;
          const code = status === 413 ? 'request_too_large' : 'invalid_body';
          meter.finish({ statusCode: status, errorType: code, usage: ZERO, usageEstimated: false, cost: '0' });
          if (status === 413) sendError(res, 413, 'invalid_request_error', `The request body is larger than the ${fw.maxBodyBytes} bytes allowed.`, code);
          else sendError(res, 400, 'invalid_request_error', 'The request body could not be read.', code);
          return;
        }
        if (endpoint === 'messages') await fw.forwarder.anthropic.messages(raw, req.headers, res, meter);
        else if (endpoint === 'messages.count_tokens') await fw.forwarder.anthropic.countTokens(raw, req.headers, res, meter);
        else await fw.forwarder.handle(endpoint, raw, res, meter);
      } catch (err) {
        // Record first, then answer (see Forwarder.refuse). Never echo the error: it may quote the request body.
        meter?.finish({ statusCode: 500, errorType: 'server_error', usage: ZERO, usageEstimated: false, cost: '0' });
        deps.logger.error({ requestId, errType: (err as Error)?.name }, 'unhandled gateway error');
        if (res.headersSent) res.destroy();
        else sendError(res, 500, 'server_error', 'The server had an error processing your request.');
      } finally {
        inFlight--;
      }
    };
  }

  // After the /v1 routes, so client requests do not walk these routers first.
  // /metrics is not here: the server serves the registry on its metrics port (startMetricsServer).
  app.use(healthRouter(deps.readiness, deps.readyCheckTimeoutMs, deps.logger));

  app.use((req, res) => {
    sendOpenAIError(res, 404, 'invalid_request_error', `Unknown request URL: ${req.method} ${req.path}.`, 'unknown_url');
  });
  const onError: express.ErrorRequestHandler = (err, _req, res, _next) => {
    deps.logger.error({ requestId: res.locals.requestId, errType: (err as Error)?.name }, 'unhandled gateway error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendOpenAIError(res, 500, 'server_error', 'The server had an error processing your request.');
  };
  app.use(onError);

  const handler: RequestListener = (req, res) => {
    const endpoint = v1 && req.method === 'POST' ? ENDPOINTS.get(routePath(req.url)) : undefined;
    if (endpoint) void v1!(endpoint, req, res);
    else app(req, res);
  };
  return { app: handler, metrics };
}

/** The path as Express would match it: no query string, case-insensitive, one trailing slash allowed. */
function routePath(url: string | undefined): string {
  let path = url ?? '';
  const q = path.indexOf('?');
  if (q !== -1) path = path.slice(0, q);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path.toLowerCase();
}

const noop = () => {};

/**
 * Holds a response's `end` (the call that sends its last bytes) until `release`
 * is called: then the held end goes out, or on an error the connection is cut.
 * A handler ends its response right after finishing the meter, in the same
 * synchronous step, and the journal writes after that step at the earliest (in
 * a microtask when the request is alone, else at the end of the event-loop
 * turn), so the end is always held by then. (Corking the socket is
 * not enough: `end` uncorks it fully.) `then` runs after the end went out (or
 * the connection was cut), whichever way the write went.
 */
function holdEnd(res: ServerResponse, then: () => void): (err: Error | null) => void {
  let held: unknown[] | null = null;
  const mutable = res as unknown as { end: (...args: unknown[]) => ServerResponse };
  const end = mutable.end;
  mutable.end = (...args: unknown[]) => {
    held = args;
    return res;
  };
  return (err) => {
    // Put back by assignment, not `delete`: deleting a property turns the object into a
    // slow (dictionary) object, and Node's own code touches the response a lot after this.
    mutable.end = end;
    if (err) res.destroy();
    else if (held) res.end(...(held as []));
    then();
  };
}

const ZERO = { inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 };
