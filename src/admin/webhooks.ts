import express, { Router } from 'express';
import Stripe from 'stripe';
import type { Client } from '@temporalio/client';
import Decimal from 'decimal.js';
import { minorUnits, toAmountString } from '../billing/money';
import type { Db } from '../db/knex';
import type { Logger } from '../logger';
import { awaitTopUp, startTopUpWorkflow } from '../staff/ledgerOperations';
import { sendProblem } from './problem';

/**
 * Payment webhooks (Stripe's format). The signature is an HMAC over the
 * timestamp and the raw body, checked in constant time within a tolerance
 * window by the official stripe package. A verified `payment_intent.succeeded`
 * starts `topup:stripe:{payment intent id}`: delivered ten times, credited once.
 * Unsigned, badly signed, stale or malformed deliveries get 400 and a
 * security event (metadata only).
 */
export interface WebhookDeps {
  db: Db;
  logger: Logger;
  secret: string | undefined;
  toleranceS: number;
  temporal: { client: Client; taskQueue: string } | undefined;
}

export function paymentWebhookRouter(deps: WebhookDeps): Router {
  const router = Router();
  // Verification needs the exact bytes; no secret key is needed to verify.
  const stripe = new Stripe('sk_unused_for_verification');
  const reject = async (req: express.Request, res: express.Response, reason: string, detail: string) => {
    try {
      await deps.db('security_events').insert({
        kind: 'webhook_rejected',
        reason,
        request_id: res.locals.requestId,
        source_ip: req.ip ?? null,
        user_agent: req.get('user-agent')?.slice(0, 512) ?? null,
        source: 'admin',
      });
    } catch (err) {
      deps.logger.warn({ err }, 'security event not written');
    }
    sendProblem(res, 400, 'webhook_rejected', detail);
  };

  router.post('/webhooks/payments', express.raw({ type: () => true, limit: '512kb' }), async (req, res) => {
    if (!deps.secret) {
      sendProblem(res, 503, 'webhook_not_configured', 'payment webhooks are not configured (PAYMENT_WEBHOOK_SECRET)');
      return;
    }
    const signature = req.get('stripe-signature');
    if (!signature) return reject(req, res, 'unsigned', 'the delivery has no Stripe-Signature header');
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(req.body as Buffer, signature, deps.secret, deps.toleranceS);
    } catch (err) {
      const stale = /timestamp outside the tolerance zone/i.test((err as Error).message);
      return reject(req, res, stale ? 'stale' : 'bad_signature', stale ? 'the delivery is older than the tolerance window' : 'the signature does not match the body');
    }
    if (event.type !== 'payment_intent.succeeded') {
      res.json({ received: true, ignored: event.type });
      return;
    }
    const intent = event.data.object as Stripe.PaymentIntent;
    const accountId = intent.metadata?.account_id;
    const amountMinor = intent.amount_received;
    if (!intent.id || !accountId || !/^[0-9a-f-]{36}$/i.test(accountId) || !Number.isInteger(amountMinor) || amountMinor <= 0 || !intent.currency) {
      return reject(req, res, 'malformed', 'the payment has no account_id metadata, amount or currency');
    }
    let amount: string;
    try {
      amount = toAmountString(new Decimal(amountMinor).div(new Decimal(10).pow(minorUnits(intent.currency))));
    } catch {
      return reject(req, res, 'malformed', `unsupported currency ${intent.currency}`);
    }
    if (!deps.temporal) {
      sendProblem(res, 503, 'dependency_unavailable', 'Temporal is not reachable; the provider will retry');
      return;
    }
    let started;
    try {
      started = await startTopUpWorkflow(deps.temporal.client, deps.temporal.taskQueue, {
        paymentId: intent.id,
        provider: 'stripe',
        accountId,
        amount,
        currency: intent.currency.toUpperCase(),
        kind: 'topup',
        actor: 'webhook:stripe',
      });
    } catch (err) {
      // Not durable yet: a 503 makes the provider deliver again.
      deps.logger.error({ err }, 'top-up workflow not started');
      sendProblem(res, 503, 'dependency_unavailable', 'the top-up could not be started; the provider will retry');
      return;
    }
    // Durable from here. Waiting briefly lets the answer say whether it was applied.
    const result = await awaitTopUp(started.handle, 10_000).catch(() => undefined);
    res.json({
      received: true,
      paymentId: intent.id,
      workflowId: started.handle.workflowId,
      ...(result ? { applied: result.applied && !started.existing, entryId: result.entryId } : { pending: true }),
    });
  });
  return router;
}
