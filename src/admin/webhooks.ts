import express, { Router } from 'express';
import Stripe from 'stripe';
import type { Client } from '@temporalio/client';
import Decimal from 'decimal.js';
import { MAX_STAFF_AMOUNT, minorUnits, toAmountString } from '../shared/money.rules';
import { ValidationError } from '../errors';
import type { Logger } from '../logger';
import { WorkflowNotFoundError } from '@temporalio/client';
import { workflowIds } from '../temporal/conventions';
import { awaitTopUp, startTopUpWorkflow, type LedgerService, type PaymentReversalEvent } from '../ledger/ledger.service';
import type { InvoicePayments } from '../invoicing/payments.service';
import type { TopUpCheckoutService } from '../ledger/checkout.service';
import { sessionEventOf } from '../ledger/checkout.rules';
import { sendProblem } from './problem';

/**
 * Payment webhooks (Stripe's format). The signature is an HMAC over the
 * timestamp and the raw body, checked in constant time within a tolerance
 * window by the official stripe package. A verified `payment_intent.succeeded`
 * starts `topup:stripe:{payment intent id}`: delivered ten times, credited once.
 * Unsigned, badly signed, stale or malformed deliveries get 400 and a
 * security event (metadata only).
 *
 * The payment's customer must be the account's (see recordTopUp): a payment
 * naming an account that another customer pays for is recorded as
 * 'customer_mismatch' and not credited. `charge.refunded`,
 * `charge.dispute.created` and `charge.dispute.closed` post the reversing
 * ledger entries once per payment and event (applyPaymentReversal); a
 * reversal for a payment whose top-up is still running is answered 503, so
 * the provider delivers it again after the credit.
 *
 * A `payment_intent.succeeded` whose metadata has `invoice_id` pays a
 * postpaid invoice (we made the intent: src/invoicing/paymentRequests.service.ts)
 * and is not a top-up: it is applied to the invoice in one transaction,
 * exactly once per PaymentIntent (invoicePayments.applyProviderPayment). It
 * must name a finalized or void postpaid invoice of the account in its
 * `account_id`, in the invoice's currency; anything else is rejected like a
 * malformed delivery (400 and a security event), and nothing is written.
 *
 * Hosted checkout (docs/ledger.md#hosted-checkout): a payment whose metadata
 * names a `checkout_id` must match the checkout we opened (its account,
 * invoice and currency), or it is rejected like a malformed one.
 * `checkout.session.completed` / `.expired` update the recorded session
 * once; one whose account is not the session's is rejected.
 */
export interface WebhookDeps {
  ledger: Pick<LedgerService, 'applyPaymentReversal' | 'recordWebhookRejection'>;
  /** Payments that name an invoice. */
  invoicePayments: Pick<InvoicePayments, 'applyProviderPayment'>;
  /** Hosted checkout sessions; absent, checkout events are acknowledged and ignored. */
  checkout?: Pick<TopUpCheckoutService, 'applySessionEvent' | 'checkPayment'>;
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
      await deps.ledger.recordWebhookRejection({
        reason,
        request_id: res.locals.requestId,
        source_ip: req.ip ?? null,
        user_agent: req.get('user-agent')?.slice(0, 512) ?? null,
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
    if (event.type === 'charge.refunded' || event.type === 'charge.dispute.created' || event.type === 'charge.dispute.closed') {
      const reversal = reversalOf(event);
      if (!reversal) return reject(req, res, 'malformed', 'the refund or dispute has no amount or currency');
      if (!reversal.paymentId) {
        // Not a payment intent, so not a top-up of ours: nothing was credited.
        res.json({ received: true, ignored: event.type, reason: 'not_a_topup' });
        return;
      }
      return answerReversal(deps, res, event.type, reversal);
    }
    if ((event.type === 'checkout.session.completed' || event.type === 'checkout.session.expired') && deps.checkout) {
      return answerCheckoutSession(deps.checkout, deps, res, event, (reason, detail) => reject(req, res, reason, detail));
    }
    if (event.type !== 'payment_intent.succeeded') {
      res.json({ received: true, ignored: event.type });
      return;
    }
    const intent = event.data.object as Stripe.PaymentIntent;
    const checkoutRefusal = await checkoutVerdict(deps, res, intent);
    if (checkoutRefusal === 'answered') return;
    if (checkoutRefusal) return reject(req, res, checkoutRefusal.reason, checkoutRefusal.detail);
    if (intent.metadata && typeof intent.metadata === 'object' && 'invoice_id' in intent.metadata) {
      return answerInvoicePayment(deps, res, event, intent, (reason, detail) => reject(req, res, reason, detail));
    }
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
        customerId: idOf(intent.customer),
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
      ...(result
        ? { applied: result.applied && !started.existing, entryId: result.entryId, ...(result.refused ? { refused: result.refused } : {}) }
        : { pending: true }),
    });
    if (result?.refused) {
      deps.logger.warn({ paymentId: intent.id, accountId, refused: result.refused }, 'payment not credited: its customer is not the account\'s; recorded for billing staff');
    }
  });
  return router;
}

/**
 * A payment naming a checkout is the one it was opened for. 'answered': a
 * 503 was sent (the provider delivers again); a refusal to reject; null to go on.
 */
async function checkoutVerdict(deps: WebhookDeps, res: express.Response, intent: Stripe.PaymentIntent): Promise<'answered' | { reason: string; detail: string } | null> {
  const metadata = intent.metadata && typeof intent.metadata === 'object' ? intent.metadata : {};
  if (!('checkout_id' in metadata) || !deps.checkout) return null;
  const checkoutId = metadata.checkout_id;
  const accountId = metadata.account_id;
  const invoiceId = 'invoice_id' in metadata ? metadata.invoice_id : null;
  if (typeof checkoutId !== 'string' || !UUID.test(checkoutId) || typeof accountId !== 'string' || !UUID.test(accountId) || typeof intent.currency !== 'string') {
    return { reason: 'malformed', detail: 'the payment names a checkout but has no valid checkout_id, account_id or currency' };
  }
  let verdict;
  try {
    verdict = await deps.checkout.checkPayment({ checkoutId, paymentIntentId: idOf(intent.id), accountId, invoiceId: typeof invoiceId === 'string' ? invoiceId : null, currency: intent.currency });
  } catch (err) {
    deps.logger.error({ errCode: (err as { code?: string }).code, checkoutId }, 'checkout of a payment not checked');
    sendProblem(res, 503, 'dependency_unavailable', 'the payment could not be checked; the provider will retry');
    return 'answered';
  }
  if (verdict === 'ok') return null;
  deps.logger.warn({ paymentId: idOf(intent.id), checkoutId, verdict }, 'payment naming a checkout does not match it: not credited');
  return { reason: `checkout_${verdict}`, detail: `the payment does not match the checkout it names (${verdict.replace('_', ' ')})` };
}

/** A signed checkout.session.completed / .expired: the recorded session's status, once; another account's metadata is rejected. */
async function answerCheckoutSession(
  checkout: NonNullable<WebhookDeps['checkout']>,
  deps: WebhookDeps,
  res: express.Response,
  event: Stripe.Event,
  reject: (reason: string, detail: string) => Promise<void>,
): Promise<void> {
  const e = sessionEventOf(event.type, event.data.object);
  if (!e) return reject('malformed', 'the checkout session has no valid id');
  let outcome;
  try {
    outcome = await checkout.applySessionEvent(e);
  } catch (err) {
    deps.logger.error({ errCode: (err as { code?: string }).code, sessionId: e.sessionId }, 'checkout session event not recorded');
    sendProblem(res, 503, 'dependency_unavailable', 'the checkout session could not be recorded; the provider will retry');
    return;
  }
  if (outcome.status === 'mismatch') {
    deps.logger.warn({ sessionId: e.sessionId, checkoutId: outcome.checkoutId }, 'checkout session event does not match the session we opened');
    return reject('checkout_account_mismatch', "the checkout session's metadata does not name the account it was opened for");
  }
  res.json({ received: true, type: event.type, sessionId: e.sessionId, ...outcome });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Seconds since the epoch up to the end of 9999: a date we can write. */
const MAX_EVENT_SECONDS = 253_402_300_799;

/**
 * A succeeded PaymentIntent naming an invoice: applied to it once, or the
 * whole amount credited to the account when the invoice is already paid or
 * void (the answer says which). Malformed or not matching the invoice: 400
 * and a security event, nothing applied.
 */
async function answerInvoicePayment(
  deps: WebhookDeps,
  res: express.Response,
  event: Stripe.Event,
  intent: Stripe.PaymentIntent,
  reject: (reason: string, detail: string) => Promise<void>,
): Promise<void> {
  const invoiceId = intent.metadata.invoice_id;
  const accountId = intent.metadata.account_id;
  const paymentId = idOf(intent.id);
  if (!paymentId || typeof invoiceId !== 'string' || !UUID.test(invoiceId) || typeof accountId !== 'string' || !UUID.test(accountId)) {
    return reject('malformed', 'the payment names an invoice but has no valid invoice_id, account_id or id');
  }
  const amount = Number.isSafeInteger(intent.amount_received) && intent.amount_received > 0 ? amountOf(intent.amount_received, intent.currency) : undefined;
  if (!amount || new Decimal(amount).gt(MAX_STAFF_AMOUNT)) return reject('malformed', 'the payment has no valid amount_received or currency');
  const created = event.created;
  if (!Number.isSafeInteger(created) || created <= 0 || created > MAX_EVENT_SECONDS) return reject('malformed', 'the event has no valid created time');
  let outcome;
  try {
    outcome = await deps.invoicePayments.applyProviderPayment({
      provider: 'stripe',
      paymentId,
      invoiceId,
      accountId,
      amount,
      currency: intent.currency,
      paidOn: new Date(created * 1000).toISOString().slice(0, 10),
      customerId: idOf(intent.customer),
    });
  } catch (err) {
    if (err instanceof ValidationError) return reject('malformed', 'the payment names an invoice but is not a valid payment');
    // Nothing is committed: a 503 makes the provider deliver again.
    deps.logger.error({ errCode: (err as { code?: string }).code, paymentId, invoiceId }, 'invoice payment not applied');
    sendProblem(res, 503, 'dependency_unavailable', 'the payment could not be applied; the provider will retry');
    return;
  }
  if (outcome.status === 'refused') {
    deps.logger.warn({ paymentId, invoiceId, reason: outcome.reason }, 'payment for an invoice refused: it does not match the invoice');
    return reject(`invoice_${outcome.reason}`, INVOICE_REFUSALS[outcome.reason]);
  }
  if (outcome.status === 'credited_to_account') {
    deps.logger.warn({ paymentId, invoiceId, reason: outcome.reason }, 'payment for an invoice that needs none: credited to the account');
  }
  res.json({ received: true, paymentId, ...outcome });
}

const INVOICE_REFUSALS: Record<Extract<Awaited<ReturnType<InvoicePayments['applyProviderPayment']>>, { status: 'refused' }>['reason'], string> = {
  unknown_invoice: 'the payment names an invoice that does not exist',
  account_mismatch: "the payment's account_id is not the invoice's account",
  not_collectable: 'the payment names an invoice that is not a finalized postpaid invoice',
  currency_mismatch: "the payment's currency is not the invoice's",
  customer_mismatch: "the payment's customer is not the account's",
};

/** The id of an expandable Stripe field (an id, an expanded object, or nothing); ids go into ledger keys, so only Stripe's id alphabet. */
function idOf(v: string | { id: string } | null | undefined): string | null {
  const id = typeof v === 'string' ? v : v && typeof v.id === 'string' ? v.id : null;
  return id !== null && /^[A-Za-z0-9_]{1,255}$/.test(id) ? id : null;
}

const amountOf = (minor: unknown, currency: unknown): string | undefined => {
  if (!Number.isSafeInteger(minor) || (minor as number) < 0 || typeof currency !== 'string') return undefined;
  try {
    return toAmountString(new Decimal(minor as number).div(new Decimal(10).pow(minorUnits(currency))));
  } catch {
    return undefined;
  }
};

/** A refund or dispute event as a reversal of its payment intent ('' when it has none); undefined when it is malformed. */
function reversalOf(event: Stripe.Event): PaymentReversalEvent | undefined {
  if (event.type === 'charge.refunded') {
    const charge = event.data.object as Stripe.Charge;
    const refundedTotal = amountOf(charge.amount_refunded, charge.currency);
    if (!refundedTotal) return undefined;
    return { type: 'refund', provider: 'stripe', paymentId: idOf(charge.payment_intent) ?? '', currency: charge.currency, customerId: idOf(charge.customer), refundedTotal };
  }
  const dispute = event.data.object as Stripe.Dispute;
  const amount = amountOf(dispute.amount, dispute.currency);
  if (!amount || idOf(dispute.id) === null || typeof dispute.status !== 'string') return undefined;
  return {
    type: event.type === 'charge.dispute.closed' ? 'dispute_closed' : 'dispute_opened',
    provider: 'stripe',
    paymentId: idOf(dispute.payment_intent) ?? '',
    currency: dispute.currency,
    customerId: null,
    disputeId: dispute.id,
    amount,
    status: dispute.status,
    reason: typeof dispute.reason === 'string' ? dispute.reason : 'unspecified',
  };
}

async function answerReversal(deps: WebhookDeps, res: express.Response, type: string, reversal: PaymentReversalEvent): Promise<void> {
  let outcome;
  try {
    outcome = await deps.ledger.applyPaymentReversal(reversal);
  } catch (err) {
    deps.logger.error({ errCode: (err as { code?: string }).code, paymentId: reversal.paymentId, type }, 'payment reversal not posted');
    sendProblem(res, 503, 'dependency_unavailable', 'the reversal could not be recorded; the provider will retry');
    return;
  }
  if (outcome.status === 'unknown_payment') {
    // The top-up may still be on its way (a worker down): the reversal must follow the credit, not be lost before it.
    let running: boolean;
    try {
      running = deps.temporal ? (await deps.temporal.client.workflow.getHandle(workflowIds.topUp(`stripe:${reversal.paymentId}`)).describe()).status.name === 'RUNNING' : true;
    } catch (err) {
      running = !(err instanceof WorkflowNotFoundError);
    }
    if (running) {
      sendProblem(res, 503, 'payment_not_recorded', 'the payment is not recorded yet; the provider will deliver this event again');
      return;
    }
    deps.logger.warn({ paymentId: reversal.paymentId, type }, 'reversal for a payment that never credited an account; nothing to take back');
  }
  if (outcome.status === 'refused') {
    deps.logger.warn({ paymentId: reversal.paymentId, type, reason: outcome.reason }, 'reversal refused: it does not match the recorded payment; left for billing staff');
  }
  res.json({ received: true, type, paymentId: reversal.paymentId, ...outcome });
}
