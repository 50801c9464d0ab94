import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { ClientApiCaller, ClientApiService, QueryInput } from '../accounts/clientApi.service';
import { ACTIVITY_CSV_COLUMNS, csvField } from '../accounts/clientApi.rules';
import { AppError, NotFoundError, ValidationError } from '../errors';
import type { Logger } from '../logger';
import { clientOpenApiDocument } from './clientOpenapi';
import { sendOpenAIError } from './openaiError';
import type { RateLimiter } from './rateLimit';
import type { SubprocessorService } from '../register/subprocessor.service';
import { subprocessorApiRouter } from './subprocessorApi';

export interface AccountApiDeps {
  service: ClientApiService;
  /** The gateway's authentication and the key's own rpm limit (createGatewayApp's), unmetered: these are not model calls. */
  authenticate: (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<ClientApiCaller | null>;
  /** The account API's own bound per key (config GATEWAY_ACCOUNT_API_RPM; 0: none), so polling cannot load the database. */
  limiter: RateLimiter;
  rpm: number;
  logger: Logger;
  /** /v1/subprocessor-notices for management keys (subprocessorApi.ts); absent, unknown URLs. */
  subprocessors?: Pick<SubprocessorService, 'notices'>;
}

/**
 * The client read API (docs/client-api.md): what a key may read about its own
 * account. Authenticated like model calls, answered in OpenAI's error shape,
 * never metered as usage. Each route validates through the service and never
 * queries itself.
 */
export function accountApiRouter(deps: AccountApiDeps): express.Router {
  const router = express.Router();

  router.get('/v1/openapi.json', (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300');
    res.json(clientOpenApiDocument());
  });

  const route = (path: string, notFoundCode: string, handle: (caller: ClientApiCaller, req: express.Request, res: express.Response) => Promise<void>) => {
    router.get(path, async (req, res) => {
      const requestId = res.locals.requestId as string;
      const caller = await deps.authenticate(req, res, requestId);
      if (!caller) return;
      if (deps.rpm > 0) {
        const taken = deps.limiter.take(caller.apiKeyId, deps.rpm);
        if (!taken.allowed) {
          res.setHeader('retry-after', String(taken.retryAfterSeconds));
          sendOpenAIError(res, 429, 'requests', `Rate limit reached for account API requests: limit ${deps.rpm} per minute. Please try again in ${taken.retryAfterSeconds}s.`, 'rate_limit_exceeded');
          return;
        }
      }
      // Account data: never kept by a shared cache.
      res.setHeader('cache-control', 'no-store');
      try {
        await handle(caller, req, res);
      } catch (err) {
        if (err instanceof ValidationError) {
          sendOpenAIError(res, 400, 'invalid_request_error', err.message, 'invalid_input', err.fieldErrors[0]?.field ?? null);
        } else if (err instanceof NotFoundError) {
          sendOpenAIError(res, 404, 'invalid_request_error', err.message, notFoundCode);
        } else {
          deps.logger.error({ requestId, errType: (err as Error)?.name, code: err instanceof AppError ? err.code : undefined }, 'account API error');
          if (res.headersSent) res.destroy();
          else sendOpenAIError(res, 500, 'server_error', 'The server had an error processing your request.');
        }
      }
    });
  };

  route('/v1/key', 'key_not_found', async (caller, _req, res) => {
    res.json({ data: await deps.service.describeKey(caller) });
  });

  route('/v1/credits', 'account_not_found', async (caller, _req, res) => {
    res.json({ data: await deps.service.credits(caller) });
  });

  route('/v1/generation', 'generation_not_found', async (caller, req, res) => {
    res.json({ data: await deps.service.generation(caller, req.query as QueryInput) });
  });

  route('/v1/activity', 'account_not_found', async (caller, req, res) => {
    const page = await deps.service.activity(caller, req.query as QueryInput);
    if (req.accepts(['application/json', 'text/csv']) !== 'text/csv') {
      res.json(page);
      return;
    }
    // Columns of dimensions not grouped by are left out; the cursor travels in a header.
    const grouped = new Set<string>(page.group_by.map((d) => (d === 'day' ? 'date' : d === 'key' ? 'api_key_id' : d)));
    const columns = ACTIVITY_CSV_COLUMNS.filter((c) => !['date', 'model', 'api_key_id'].includes(c) || grouped.has(c));
    const lines = [columns.join(',')];
    for (const row of page.data) lines.push(columns.map((c) => csvField((row as Record<string, string | number | null>)[c])).join(','));
    if (page.next_cursor) res.setHeader('x-next-cursor', page.next_cursor);
    res.setHeader('x-has-more', String(page.has_more));
    res.type('text/csv; charset=utf-8').send(`${lines.join('\r\n')}\r\n`);
  });

  if (deps.subprocessors) router.use(subprocessorApiRouter({ subprocessors: deps.subprocessors, authenticate: deps.authenticate, limiter: deps.limiter, rpm: deps.rpm }));

  return router;
}
