import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { healthRouter, type ReadinessCheck } from '../http/health';
import { createMetricsRegistry, metricsRouter } from '../http/metrics';
import { requestIdMiddleware } from '../http/requestId';
import type { Logger } from '../logger';
import type { Endpoint, UsageRecord } from '../metering/record';
import type { BalanceGate, Reservation } from './balanceGate';
import type { Forwarder } from './forwarder';
import type { KeyCache } from './keyCache';
import { Meter } from './meter';
import { gatewayMetrics, type GatewayMetrics } from './metrics';
import { sendOpenAIError } from './openaiError';
import type { RateLimiter } from './rateLimit';
import type { RoutingTable } from './routingTable';
import type { SecurityEventSink } from './securityEvents';

export interface GatewayAppDeps {
  logger: Logger;
  readiness: Record<string, ReadinessCheck>;
  readyCheckTimeoutMs: number;
  /** Absent: health and metrics only (used before the forwarding parts are wired). */
  forwarding?: {
    keys: KeyCache;
    limiter: RateLimiter;
    routing: RoutingTable;
    forwarder: Forwarder;
    gate: BalanceGate;
    security: SecurityEventSink;
    /** Receives each finished request's record; the server appends it to the metering journal. */
    record: (record: UsageRecord) => void;
    instanceId: string;
    defaultRpm: number;
    maxBodyBytes: number;
    trustedProxies: readonly string[];
  };
  registry?: Registry;
}

const ENDPOINTS: [string, Endpoint][] = [
  ['/v1/chat/completions', 'chat.completions'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/responses', 'responses'],
];

/**
 * The client-facing server: OpenAI-compatible /v1 routes. Order per request:
 * request id, authentication and rate limit (before reading a body, so
 * strangers cannot make us buffer 10 MB), body, validation, routing, forwarding.
 * From authentication on, every request ends in exactly one metering record.
 */
export function createGatewayApp(deps: GatewayAppDeps): { app: Express; metrics: GatewayMetrics } {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const registry = deps.registry ?? createMetricsRegistry('gateway');
  const metrics = gatewayMetrics(registry);
  const fw = deps.forwarding;
  // X-Forwarded-For is believed only from the configured proxies.
  app.set('trust proxy', fw && fw.trustedProxies.length ? [...fw.trustedProxies] : false);

  app.use(requestIdMiddleware('req-'));

  if (fw) {
    const access = deps.logger.child({ log: 'access' });
    const emit = (record: UsageRecord, overheadMs: number, reservation: Reservation | null) => {
      fw.record(record);
      fw.gate.commit(reservation, record.cost);
      const labels = { model: record.model ?? 'unknown', provider: record.provider ?? 'none', status: String(record.statusCode) };
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, record.latencyMs / 1000);
      if (record.upstreamLatencyMs !== null && record.provider) metrics.upstream.observe({ provider: record.provider }, record.upstreamLatencyMs / 1000);
      metrics.overhead.observe(Math.max(0, overheadMs) / 1000);
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

    const authenticate =
      (endpoint: Endpoint | null): RequestHandler =>
      async (req, res, next) => {
        const requestId = res.locals.requestId as string;
        const sourceIp = req.ip ?? null;
        const userAgent = req.get('user-agent') ?? null;
        const result = await fw.keys.authenticate(req.get('authorization'));
        if (!result.ok && result.reason === 'unavailable') {
          sendOpenAIError(res, 503, 'server_error', 'The service is temporarily unable to check API keys. Please retry.', 'service_unavailable');
          return;
        }
        if (!result.ok) {
          fw.security.record({ kind: 'auth_failed', reason: result.reason, accountId: null, apiKeyId: null, requestId, sourceIp, userAgent });
          metrics.securityEvents.inc({ kind: 'auth_failed' });
          const message =
            result.reason === 'missing_key'
              ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
              : 'Incorrect API key provided.';
          sendOpenAIError(res, 401, 'invalid_request_error', message, result.reason === 'missing_key' ? 'missing_api_key' : 'invalid_api_key');
          return;
        }
        const caller = result.caller;
        if (endpoint) {
          const meter = new Meter(requestId, caller, performance.now(), new Date(), sourceIp, userAgent, fw.instanceId, emit);
          meter.endpoint = endpoint;
          res.locals.meter = meter;
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
            (res.locals.meter as Meter | undefined)?.finish({ statusCode: 429, errorType: 'rate_limit_exceeded', usage: ZERO, usageEstimated: false, cost: '0' });
            sendOpenAIError(res, 429, 'requests', `Rate limit reached for requests: limit ${rpm} per minute. Please try again in ${taken.retryAfterSeconds}s.`, 'rate_limit_exceeded');
            return;
          }
          res.setHeader('x-ratelimit-remaining-requests', String(taken.remaining));
        }
        res.locals.caller = caller;
        next();
      };

    app.get('/v1/models', authenticate(null), (_req, res) => {
      res.json({
        object: 'list',
        data: fw.routing.list().map((m) => ({ id: m.name, object: 'model', created: Math.floor(m.createdAt / 1000), owned_by: 'mixroute' })),
      });
    });

    const rawBody = express.raw({ type: () => true, limit: fw.maxBodyBytes });
    for (const [path, endpoint] of ENDPOINTS) {
      app.post(path, authenticate(endpoint), rawBody, async (req, res) => {
        await fw.forwarder.handle(endpoint, req, res, res.locals.meter as Meter);
      });
    }
  }

  // After the /v1 routes, so client requests do not walk these routers first.
  app.use(healthRouter(deps.readiness, deps.readyCheckTimeoutMs));
  app.use(metricsRouter(registry));

  app.use((req, res) => {
    sendOpenAIError(res, 404, 'invalid_request_error', `Unknown request URL: ${req.method} ${req.path}.`, 'unknown_url');
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const meter = res.locals.meter as Meter | undefined;
    const type = (err as { type?: string })?.type;
    const status = type === 'entity.too.large' ? 413 : typeof (err as { status?: number })?.status === 'number' && (err as { status: number }).status < 500 ? 400 : 500;
    const code = status === 413 ? 'request_too_large' : status === 400 ? 'invalid_body' : 'server_error';
    // Record first, then answer (see Forwarder.refuse).
    meter?.finish({ statusCode: status, errorType: code, usage: ZERO, usageEstimated: false, cost: '0' });
    if (status === 500) {
      // Never echo the error: it may quote the request body.
      deps.logger.error({ requestId: res.locals.requestId, errType: (err as Error)?.name }, 'unhandled gateway error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (status === 413) sendOpenAIError(res, 413, 'invalid_request_error', `The request body is larger than the ${fw?.maxBodyBytes ?? 0} bytes allowed.`, code);
    else if (status === 400) sendOpenAIError(res, 400, 'invalid_request_error', 'The request body could not be read.', code);
    else sendOpenAIError(res, 500, 'server_error', 'The server had an error processing your request.');
  };
  app.use(onError);
  return { app, metrics };
}

const ZERO = { inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 };
