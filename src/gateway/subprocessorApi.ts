import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { FieldDoc } from '../accounts/clientApi.rules';
import { ForbiddenError, NotFoundError } from '../errors';
import type { SubprocessorService } from '../register/subprocessor.service';
import { clientApiErrorHandler, snakeCase } from './clientApiErrors';
import { sendOpenAIError } from './openaiError';
import type { RateLimiter } from './rateLimit';

type Notice = Awaited<ReturnType<SubprocessorService['notices']['ofAccount']>>[number];

/**
 * /v1/subprocessor-notices (docs/client-api.md#sub-processor-notices): an
 * account with a data-processing agreement reads the notices of new
 * sub-processors and accepts or objects with a management key. Inference keys
 * are refused like the other management routes; every call is scoped to the
 * caller's account, so another account's notice is a 404.
 */
export function subprocessorApiRouter(deps: {
  subprocessors: Pick<SubprocessorService, 'notices'>;
  authenticate: (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<{ accountId: string; apiKeyId: string; kind: 'inference' | 'management' } | null>;
  limiter: RateLimiter;
  rpm: number;
}): express.Router {
  const router = express.Router();
  // A decision carries at most a reason of 500 characters.
  const json = express.json({ limit: '4kb', strict: true, type: () => true });

  const handle =
    (withBody: boolean, fn: (caller: { accountId: string; apiKeyId: string }, req: express.Request) => Promise<unknown>) =>
    async (req: express.Request, res: express.Response, next: express.NextFunction) => {
      try {
        const caller = await deps.authenticate(req, res, res.locals.requestId as string);
        if (!caller) return;
        if (caller.kind !== 'management') {
          throw new ForbiddenError('Sub-processor notices are read and decided with a management key; this is an inference key.', { code: 'management_key_required' });
        }
        if (deps.rpm > 0) {
          const taken = deps.limiter.take(caller.apiKeyId, deps.rpm);
          if (!taken.allowed) {
            res.setHeader('retry-after', String(taken.retryAfterSeconds));
            sendOpenAIError(res, 429, 'requests', `Rate limit reached for account API requests: limit ${deps.rpm} per minute. Please try again in ${taken.retryAfterSeconds}s.`, 'rate_limit_exceeded');
            return;
          }
        }
        // Optional: accept and object need no body (an empty one reads as {}).
        if (withBody) {
          await new Promise<void>((resolve, reject) => json(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
        }
        const result = await fn(caller, req);
        res.setHeader('cache-control', 'no-store');
        res.json(result);
      } catch (err) {
        next(err);
      }
    };

  const notFound = (changeId: string) => new NotFoundError(`No sub-processor notice ${changeId} for this account.`, { code: 'notice_not_found' });
  const one = async (accountId: string, changeId: string) => {
    const n = await deps.subprocessors.notices.get(changeId, accountId);
    if (!n) throw notFound(changeId);
    return n;
  };
  const changeIdOf = (req: express.Request) => (typeof req.params.changeId === 'string' ? req.params.changeId : '');
  const body = (req: express.Request): Record<string, unknown> => (req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {});

  router.get('/v1/subprocessor-notices', handle(false, async (caller) => ({ object: 'list', data: (await deps.subprocessors.notices.ofAccount(caller.accountId)).map(noticeJson) })));
  router.get('/v1/subprocessor-notices/:changeId', handle(false, async (caller, req) => ({ data: noticeJson(await one(caller.accountId, changeIdOf(req))) })));
  for (const decision of ['accept', 'object'] as const) {
    router.post(
      `/v1/subprocessor-notices/:changeId/${decision}`,
      handle(true, async (caller, req) => {
        const changeId = changeIdOf(req);
        try {
          const r = await deps.subprocessors.notices.decide(changeId, caller.accountId, { ...body(req), decision }, `account:${caller.apiKeyId}`);
          return { data: noticeJson(await one(caller.accountId, changeId)), changed: r.changed };
        } catch (err) {
          if (err instanceof NotFoundError) throw notFound(changeId);
          throw err;
        }
      }),
    );
  }

  router.use(clientApiErrorHandler({ maxBodyLabel: '4 KB', param: snakeCase }));
  return router;
}

/** Who decided, as the account sees it: its own key (`account:{keyId}`) or MixRoute staff on its behalf. */
const decider = (by: string | null) => (by === null ? null : by.startsWith('account:') ? by.split(' ')[0]! : 'staff');

function noticeJson(n: Notice) {
  return {
    change_id: n.changeId,
    recipient: n.recipient,
    recipient_kind: n.recipientKind,
    change: n.kind,
    countries: n.countries,
    announced_at: n.announcedAt,
    effective_at: n.effectiveAt,
    status: n.status,
    holding: n.holding,
    notified_at: n.notifiedAt,
    decided_by: decider(n.decidedBy),
    decided_at: n.decidedAt,
  };
}

/** A notice as /v1/subprocessor-notices answers it (noticeJson). */
export const SUBPROCESSOR_NOTICE_FIELDS: readonly FieldDoc[] = [
  { name: 'change_id', type: 'string', description: 'The change’s id (the notice’s id within the account).' },
  { name: 'recipient', type: 'string', description: 'The sub-processor’s name.' },
  { name: 'recipient_kind', type: 'string', description: 'model_provider, payment_processor, email_service, hosting or other.' },
  { name: 'change', type: 'string', enum: ['recipient_added', 'countries_added'], description: 'A new sub-processor, or new countries of processing for one.' },
  { name: 'countries', type: 'array', items: 'string', description: 'The countries the change is about (ISO 3166-1 alpha-2).' },
  { name: 'announced_at', type: 'string', format: 'date-time', description: 'When the change was made.' },
  { name: 'effective_at', type: 'string', format: 'date-time', description: 'When the notice period ends and a pending notice takes effect.' },
  { name: 'status', type: 'string', enum: ['pending', 'accepted', 'objected', 'effective'], description: 'pending until accepted, objected or the period ends.' },
  { name: 'holding', type: 'boolean', description: 'True while the sub-processor receives none of the account’s traffic (pending or objected).' },
  { name: 'notified_at', type: 'string', format: 'date-time', nullable: true, description: 'When the account was told (event, email, webhooks).' },
  { name: 'decided_by', type: 'string', nullable: true, description: 'account:{key id} for the account’s own decision, staff for one recorded by MixRoute staff.' },
  { name: 'decided_at', type: 'string', format: 'date-time', nullable: true, description: 'When it was accepted or objected to.' },
];
