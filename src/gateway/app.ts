import express, { type ErrorRequestHandler, type Express } from 'express';
import { healthRouter, type ReadinessCheck } from '../http/health';
import { createMetricsRegistry, metricsRouter } from '../http/metrics';
import { requestIdMiddleware } from '../http/requestId';
import type { Logger } from '../logger';
import { sendOpenAIError } from './openaiError';

export interface GatewayAppDeps {
  logger: Logger;
  readiness: Record<string, ReadinessCheck>;
  readyCheckTimeoutMs: number;
}

/**
 * The client-facing server. The /v1 forwarding routes arrive with the gateway
 * issue; until then every /v1 path answers in OpenAI's error shape.
 */
export function createGatewayApp(deps: GatewayAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const registry = createMetricsRegistry('gateway');

  app.use(requestIdMiddleware('req-'));
  app.use(healthRouter(deps.readiness, deps.readyCheckTimeoutMs));
  app.use(metricsRouter(registry));

  app.use((req, res) => {
    sendOpenAIError(res, 404, 'invalid_request_error', `Unknown request URL: ${req.method} ${req.path}.`, 'unknown_url');
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    // Never echo the error: it may quote the request body.
    deps.logger.error({ requestId: res.locals.requestId, errType: (err as Error)?.name }, 'unhandled gateway error');
    if (!res.headersSent) sendOpenAIError(res, 500, 'server_error', 'The server had an error processing your request.');
  };
  app.use(onError);
  return app;
}
