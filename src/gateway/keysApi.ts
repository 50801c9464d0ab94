import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { KeysService } from '../accounts/keys.service';
import { AppError, ValidationError } from '../errors';
import type { Caller } from './keyCache';
import { sendOpenAIError } from './openaiError';

/**
 * /v1/keys: an account manages its keys with a management key (see
 * src/accounts/keys.service.ts for who may do what; docs/client-api.md for the
 * fields). Authentication, rate limit and the 401s are the gateway's own
 * (`authenticate` answers a refusal itself and returns null); these requests are
 * not model calls and are not metered.
 */
export function keysApiRouter(deps: {
  keys: KeysService;
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

  const onError: express.ErrorRequestHandler = (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    const parserType = (err as { type?: string })?.type;
    if (parserType === 'entity.too.large') return sendOpenAIError(res, 413, 'invalid_request_error', 'The request body is larger than the 16 KB allowed.', 'request_too_large');
    if (parserType === 'entity.parse.failed') return sendOpenAIError(res, 400, 'invalid_request_error', 'The request body is not valid JSON.', 'invalid_json');
    if (typeof parserType === 'string' && parserType.length > 0 && (err as { status?: number }).status === 400) {
      return sendOpenAIError(res, 400, 'invalid_request_error', 'The request body could not be read.', 'invalid_body');
    }
    if (err instanceof AppError && err.status < 500) {
      const code = typeof err.details?.code === 'string' ? err.details.code : err.code;
      const param = err instanceof ValidationError ? (err.fieldErrors[0]?.field ?? null) : null;
      const type = err.status === 403 ? 'permission_error' : 'invalid_request_error';
      return sendOpenAIError(res, err.status, type, err.message, code, param);
    }
    next(err);
  };
  router.use(onError);
  return router;
}

const idOf = (req: express.Request): string => (typeof req.params.id === 'string' ? req.params.id : '');
