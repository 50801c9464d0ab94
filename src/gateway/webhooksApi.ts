import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { ForbiddenError, ValidationError } from '../errors';
import type { DeliveryView, EndpointView, WebhooksService } from '../webhooks/webhooks.service';
import type { Caller } from './keyCache';
import { clientApiErrorHandler, snakeCase } from './clientApiErrors';
import type { FieldDoc } from '../accounts/clientApi.rules';

/**
 * /v1/webhooks: an account manages its webhook endpoints and reads its
 * delivery log with a management key (docs/webhooks.md). Inference keys are
 * refused: an endpoint decides where the account's events go. Every call is
 * scoped to the caller's account, so another account's ids are 404s.
 * Fields are snake_case like the rest of the client API.
 */
export function webhooksApiRouter(deps: {
  webhooks: WebhooksService;
  authenticate: (req: IncomingMessage, res: ServerResponse) => Promise<Caller | null>;
}): express.Router {
  const router = express.Router();
  // An endpoint is a URL and a list of event types: a few KB at most.
  const json = express.json({ limit: '16kb', strict: true, type: () => true });

  const handle =
    (withBody: boolean, fn: (accountId: string, req: express.Request) => Promise<unknown>, status = 200) =>
    async (req: express.Request, res: express.Response, next: express.NextFunction) => {
      try {
        const caller = await deps.authenticate(req, res);
        if (!caller) return;
        if (caller.kind !== 'management') {
          throw new ForbiddenError('Webhook endpoints are managed with a management key; this is an inference key.', { code: 'management_key_required' });
        }
        if (withBody) await new Promise<void>((resolve, reject) => json(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
        const result = await fn(caller.accountId, req);
        res.setHeader('cache-control', 'no-store');
        res.status(status).json(result);
      } catch (err) {
        next(err);
      }
    };

  const id = (req: express.Request) => (typeof req.params.id === 'string' ? req.params.id : '');
  const body = (req: express.Request): Record<string, unknown> => (req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {});
  const q = (v: unknown) => (typeof v === 'string' ? v : undefined);

  router.post(
    '/v1/webhooks',
    handle(
      true,
      async (accountId, req) => {
        const { secret, ...endpoint } = await deps.webhooks.registerEndpoint({ ...body(req), accountId });
        return { data: endpointJson(endpoint), secret };
      },
      201,
    ),
  );
  router.get('/v1/webhooks', handle(false, async (accountId) => ({ object: 'list', data: (await deps.webhooks.listEndpoints({ accountId })).map(endpointJson) })));
  router.get(
    '/v1/webhooks/deliveries',
    handle(false, async (accountId, req) => {
      const query = Object.fromEntries(
        Object.entries({ endpointId: q(req.query.endpoint_id), status: q(req.query.status), limit: q(req.query.limit), before: q(req.query.before) }).filter(([, v]) => v !== undefined),
      );
      const known = new Set(['endpoint_id', 'status', 'limit', 'before']);
      const unknown = Object.keys(req.query).filter((k) => !known.has(k));
      if (unknown.length) throw new ValidationError(`unknown query parameter(s): ${unknown.join(', ')}`, [{ field: unknown[0]!, message: 'unknown query parameter' }]);
      const page = await deps.webhooks.listDeliveries({ ...query, accountId });
      return { object: 'list', data: page.deliveries.map(deliveryJson), next_cursor: page.nextCursor, has_more: page.nextCursor !== null };
    }),
  );
  router.get('/v1/webhooks/deliveries/:id', handle(false, async (accountId, req) => ({ data: deliveryJson(await deps.webhooks.getDelivery({ id: id(req), accountId })) })));
  router.post('/v1/webhooks/deliveries/:id/redeliver', handle(false, async (accountId, req) => ({ data: deliveryJson(await deps.webhooks.redeliver({ id: id(req), accountId })) })));
  router.get('/v1/webhooks/:id', handle(false, async (accountId, req) => ({ data: endpointJson(await deps.webhooks.getEndpoint({ id: id(req), accountId })) })));
  router.post('/v1/webhooks/:id/disable', handle(false, async (accountId, req) => ({ data: endpointJson(await deps.webhooks.disableEndpoint({ id: id(req), accountId }, 'account')) })));
  router.post('/v1/webhooks/:id/enable', handle(false, async (accountId, req) => ({ data: endpointJson(await deps.webhooks.enableEndpoint({ id: id(req), accountId })) })));
  router.delete('/v1/webhooks/:id', handle(false, async (accountId, req) => deps.webhooks.deleteEndpoint({ id: id(req), accountId })));

  router.use(clientApiErrorHandler({ maxBodyLabel: '16 KB', param: snakeCase }));
  return router;
}


function endpointJson(e: EndpointView) {
  return {
    id: e.id,
    url: e.url,
    events: e.events,
    status: e.status,
    secret_prefix: e.secretPrefix,
    consecutive_failures: e.consecutiveFailures,
    disabled_reason: e.disabledReason,
    created_at: e.createdAt,
    disabled_at: e.disabledAt,
  };
}

function deliveryJson(d: DeliveryView) {
  return {
    id: d.id,
    endpoint_id: d.endpointId,
    event_id: d.eventId,
    event_type: d.eventType,
    status: d.status,
    attempts: d.attempts,
    last_response_code: d.lastResponseCode,
    last_error: d.lastError,
    last_attempt_at: d.lastAttemptAt,
    next_attempt_at: d.nextAttemptAt,
    redeliveries: d.redeliveries,
    created_at: d.createdAt,
  };
}

/** An endpoint as /v1/webhooks answers it (endpointJson; docs/webhooks.md). */
export const WEBHOOK_ENDPOINT_FIELDS: readonly FieldDoc[] = [
  { name: 'id', type: 'string', description: 'The endpoint’s id.' },
  { name: 'url', type: 'string', description: 'Where deliveries are POSTed.' },
  { name: 'events', type: 'array', items: 'string', description: 'The event types delivered.' },
  { name: 'status', type: 'string', enum: ['active', 'disabled'], description: 'Disabled endpoints get no new deliveries.' },
  { name: 'secret_prefix', type: 'string', description: 'The start of the signing secret, to tell secrets apart.' },
  { name: 'consecutive_failures', type: 'integer', description: 'Failed attempts in a row; disabling follows repeated failure.' },
  { name: 'disabled_reason', type: 'string', nullable: true, description: 'Why the endpoint is disabled (by the account, by staff, or after repeated failure).' },
  { name: 'created_at', type: 'string', format: 'date-time', description: 'When it was registered.' },
  { name: 'disabled_at', type: 'string', format: 'date-time', nullable: true, description: 'When it was disabled.' },
];

/** A delivery as /v1/webhooks/deliveries answers it (deliveryJson): never a response body. */
export const WEBHOOK_DELIVERY_FIELDS: readonly FieldDoc[] = [
  { name: 'id', type: 'string', description: 'The delivery’s id.' },
  { name: 'endpoint_id', type: 'string', description: 'The endpoint it goes to.' },
  { name: 'event_id', type: 'string', description: 'The event delivered (also the webhook-id header).' },
  { name: 'event_type', type: 'string', description: 'The event’s type.' },
  { name: 'status', type: 'string', enum: ['pending', 'succeeded', 'failed'], description: 'Where the delivery stands.' },
  { name: 'attempts', type: 'integer', description: 'Attempts so far.' },
  { name: 'last_response_code', type: 'integer', nullable: true, description: 'The HTTP status of the last attempt; null if it got no answer.' },
  { name: 'last_error', type: 'string', nullable: true, description: 'Why the last attempt failed (a short code, never a body).' },
  { name: 'last_attempt_at', type: 'string', format: 'date-time', nullable: true, description: 'When the last attempt was made.' },
  { name: 'next_attempt_at', type: 'string', format: 'date-time', nullable: true, description: 'When the next attempt is due, if pending.' },
  { name: 'redeliveries', type: 'integer', description: 'How many times it was sent again by hand.' },
  { name: 'created_at', type: 'string', format: 'date-time', description: 'When the delivery was created.' },
];
