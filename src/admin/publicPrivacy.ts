import express, { Router } from 'express';
import { RateLimiter } from '../gateway/rateLimit';
import { clientAddressOf } from '../http/clientAddress';
import type { PrivacyService } from '../privacy/privacy.service';
import type { ProcessorModeService } from '../privacy/processorMode.service';
import { sendProblem } from './problem';

/**
 * The public side of data-subject requests: no account and no token. A
 * subject files a request, proves it is theirs with the code sent to the
 * email on record, and downloads their package through the signed link.
 * Rate limited per source address, taken under the gateway's TRUSTED_PROXIES
 * rule (X-Forwarded-For only from a configured proxy); new requests are also
 * capped over all addresses and instances, and one open request per email and
 * type (see the service). Errors are problem JSON like the rest of the admin
 * server. Nothing here is logged beyond the access metadata.
 */
export function publicPrivacyRouter(deps: { dsr: PrivacyService; processorMode?: ProcessorModeService; rpm: number; trustedProxies?: readonly string[] }): Router {
  const router = Router();
  const limiter = new RateLimiter();
  const sourceOf = clientAddressOf(deps.trustedProxies ?? []);
  const limit: express.RequestHandler = (req, res, next) => {
    const taken = limiter.take(`privacy:${sourceOf(req) ?? 'unknown'}`, deps.rpm);
    if (!taken.allowed) {
      res.setHeader('retry-after', String(taken.retryAfterSeconds));
      sendProblem(res, 429, 'rate_limited', `too many requests: try again in ${taken.retryAfterSeconds} s`);
      return;
    }
    next();
  };
  const json = express.json({ limit: '64kb', strict: true });

  router.post('/privacy/requests', limit, json, async (req, res) => {
    res.status(202).json(await deps.dsr.submit(req.body ?? {}));
  });
  // Someone who is not a user, about a customer's API traffic: one answer for all outcomes, the rest by email.
  router.post('/privacy/processor-requests', limit, json, async (req, res) => {
    if (!deps.processorMode) {
      sendProblem(res, 404, 'not_found', 'not found');
      return;
    }
    res.status(202).json(await deps.processorMode.submit(req.body ?? {}));
  });
  router.post('/privacy/requests/:id/verify', limit, json, async (req, res) => {
    res.json(await deps.dsr.submitCode(String(req.params.id), req.body ?? {}));
  });
  router.get('/privacy/packages/:id', limit, async (req, res) => {
    const zip = await deps.dsr.download(String(req.params.id), req.query as Record<string, unknown>);
    res.status(200).type('application/zip').setHeader('content-disposition', 'attachment; filename="mixroute-data.zip"');
    res.setHeader('cache-control', 'no-store');
    res.send(zip);
  });
  return router;
}
