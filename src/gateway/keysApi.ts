import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Caller } from './keyCache';
import { clientApiErrorHandler, snakeCase } from './clientApiErrors';
import { ForbiddenError, ValidationError } from '../errors';
import { KEY_ERRORS, type KeysService } from '../accounts/keys.service';
import type { AccountEventsService } from '../notifications/events.service';
import type { FieldDoc } from '../accounts/clientApi.rules';

/**
 * /v1/keys: an account manages its keys with a management key (see
 * src/accounts/keys.service.ts for who may do what; docs/client-api.md for the
 * fields). Authentication, rate limit and the 401s are the gateway's own
 * (`authenticate` answers a refusal itself and returns null); these requests are
 * not model calls and are not metered.
 */
export function keysApiRouter(deps: {
  keys: KeysService;
  /** The account's alert settings (src/notifications): GET/PATCH /v1/alerts, management keys only. */
  alerts?: Pick<AccountEventsService, 'getAlertSettings' | 'setAlertSettings'>;
  authenticate: (req: IncomingMessage, res: ServerResponse) => Promise<Caller | null>;
}): express.Router {
  const router = express.Router();
  // Key settings are a few hundred bytes; nothing bigger is read.
  const json = express.json({ limit: '16kb', strict: true, type: () => true });

  const actorOf = async (req: express.Request, res: express.Response) => {
    const caller = await deps.authenticate(req, res);
    return caller ? { accountId: caller.accountId, apiKeyId: caller.apiKeyId, kind: caller.kind } : null;
  };

  /** Authenticates first (a stranger's body is never read), then reads the body if the route has one. */
  const handle =
    (withBody: boolean, fn: (actor: NonNullable<Awaited<ReturnType<typeof actorOf>>>, req: express.Request) => Promise<unknown>, status = 200) =>
    async (req: express.Request, res: express.Response, next: express.NextFunction) => {
      try {
        const actor = await actorOf(req, res);
        if (!actor) return;
        if (withBody) {
          await new Promise<void>((resolve, reject) => json(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
        }
        const result = await fn(actor, req);
        // Key metadata, and once a secret: never kept by a shared cache.
        res.setHeader('cache-control', 'no-store');
        res.status(status).json(result);
      } catch (err) {
        next(err);
      }
    };

  router.post('/v1/keys', handle(true, (a, req) => deps.keys.create(a, req.body), 201));
  router.get('/v1/keys', handle(false, (a, req) => deps.keys.list(a, req.query)));
  router.get('/v1/keys/:id', handle(false, (a, req) => deps.keys.get(a, idOf(req))));
  router.patch('/v1/keys/:id', handle(true, (a, req) => deps.keys.update(a, idOf(req), req.body)));
  router.delete('/v1/keys/:id', handle(false, (a, req) => deps.keys.revoke(a, idOf(req))));

  if (deps.alerts) {
    const alerts = deps.alerts;
    const managementOnly = (a: { kind: string }) => {
      if (a.kind !== 'management') throw new ForbiddenError('Alert settings need a management key.', { code: KEY_ERRORS.managementKeyRequired });
    };
    const alertsJson = (s: Awaited<ReturnType<typeof alerts.getAlertSettings>>) => ({
      data: { low_balance_thresholds: s.lowBalanceThresholds, email_alerts: s.emailAlerts, updated_at: s.updatedAt },
    });
    router.get('/v1/alerts', handle(false, async (a) => (managementOnly(a), alertsJson(await alerts.getAlertSettings({ accountId: a.accountId })))));
    router.patch(
      '/v1/alerts',
      handle(true, async (a, req) => {
        managementOnly(a);
        const body = (req.body ?? {}) as Record<string, unknown>;
        const unknown = Object.keys(body).filter((k) => k !== 'low_balance_thresholds' && k !== 'email_alerts');
        if (unknown.length > 0) throw new ValidationError(`unknown field ${unknown[0]}`, [{ field: unknown[0]!, message: 'unknown field' }]);
        const settings = { lowBalanceThresholds: body.low_balance_thresholds, emailAlerts: body.email_alerts };
        return alertsJson(await alerts.setAlertSettings({ accountId: a.accountId, settings: Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)) }));
      }),
    );
  }

  router.use(clientApiErrorHandler({ maxBodyLabel: '16 KB', param: snakeCase }));
  return router;
}

const idOf = (req: express.Request): string => (typeof req.params.id === 'string' ? req.params.id : '');

/** /v1/alerts's fields (docs/client-api.md "Alert settings"; the OpenAPI document is built from them). */
export const ALERT_FIELDS: readonly FieldDoc[] = [
  { name: 'low_balance_thresholds', type: 'array', items: 'string', description: 'Amounts (decimal strings, at most 5, each above 0); balance.low fires once each time the balance falls below one.' },
  { name: 'email_alerts', type: 'boolean', description: 'Whether events are also emailed to the account’s billing address.' },
  { name: 'updated_at', type: 'string', format: 'date-time', nullable: true, description: 'When the settings last changed; null if never set.' },
];
