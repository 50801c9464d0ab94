import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { stripeClient } from '../shared/stripeClient';
import { z } from 'zod';
import type Decimal from 'decimal.js';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { AppError, ConflictError, DependencyUnavailableError, NotFoundError, ValidationError } from '../errors';
import { minorUnits, Money, toAmountString } from '../shared/money.rules';
import { validate } from '../shared/validate';
import { CheckoutRuleError, returnUrl, topUpAmount, type SessionEvent } from './checkout.rules';
import {
  applySessionStatus,
  checkoutAccount,
  checkoutsOf,
  findCheckout,
  findCheckoutBySession,
  insertCheckout,
  markFailed,
  markOpened,
  recordPaymentIntent,
  type CheckoutSessionRow,
} from './checkout.data';

/**
 * Hosted checkout (docs/ledger.md#hosted-checkout): a customer pays a top-up
 * (or an invoice, src/invoicing/checkout.service.ts) on the payment
 * provider's own page, a Stripe Checkout Session made with the official
 * client. We record the session before asking the provider (who opened it,
 * for which account, amount and currency), hand back its address, and credit
 * nothing here: the session's PaymentIntent carries the metadata
 * (`account_id`, `purpose`, `checkout_id`, and `invoice_id` for an invoice)
 * with which the signed `payment_intent.succeeded` webhook credits the
 * account once, as it does for every payment. The webhook checks a payment
 * that names a checkout against this record (checkPayment), and
 * `checkout.session.completed` / `.expired` update its status
 * (applySessionEvent). The return addresses are built on the configured
 * public base URL of the console; a request only picks a path on it.
 */

/** The provider refused or failed to make the session: the customer may try again later; staff see the cause in the log. */
export class CheckoutProviderError extends AppError {
  override readonly status = 502;
  override readonly code = 'payment_provider_error';
}

/** How long a session can be paid (Stripe takes 30 minutes to 24 hours). */
const SESSION_LIFETIME_S = 3_600;
const DEFAULT_SUCCESS_PATH = '/app/billing?checkout=success&session={CHECKOUT_SESSION_ID}';
const DEFAULT_CANCEL_PATH = '/app/billing?checkout=cancelled';
const PROVIDER_ID = /^[A-Za-z0-9_]{1,255}$/;

export interface CheckoutDeps {
  db: Db;
  config: { checkout: Config['checkout']; invoicing: Pick<Config['invoicing'], 'stripe'> };
  /** Seconds since the epoch; the provider's clock decides, this only sets the session's expiry. */
  now?: () => Date;
}

export interface CheckoutResult {
  /** The provider's page to send the customer to. */
  url: string;
  /** The provider's session id (cs_...). */
  sessionId: string;
  /** Our record of it. */
  checkoutId: string;
  amount: string;
  currency: string;
  expiresAt: string | null;
}

/** What a checkout is opened for; the amount is already checked. */
export interface OpenCheckout {
  accountId: string;
  purpose: 'topup' | 'invoice';
  invoiceId: string | null;
  amount: Decimal;
  minor: number;
  currency: string;
  customerId: string | null;
  /** The line's name on the provider's page. */
  label: string;
  /** More metadata for the PaymentIntent (invoice_number). */
  metadata?: Record<string, string>;
  successUrl?: unknown;
  cancelUrl?: unknown;
  actor: string;
}

export const actorInput = z.string().trim().min(1, 'actor is required').max(200);
const urlInput = z.string().max(2_000).optional();

const topUpCheckoutInput = z.strictObject({
  accountId: z.uuid({ error: 'accountId must be an account id (UUID)' }),
  // Checked by topUpAmount (a decimal string; a number is refused there, never rounded).
  amount: z.unknown(),
  successUrl: urlInput,
  cancelUrl: urlInput,
  actor: actorInput,
});

export const checkoutView = (r: CheckoutSessionRow & { payment_status?: string | null }) => ({
  checkoutId: r.id,
  purpose: r.purpose,
  invoiceId: r.invoice_id,
  sessionId: r.provider_session_id,
  status: r.status,
  amount: new Money(r.amount).toFixed(minorUnits(r.currency)),
  currency: r.currency,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  expiresAt: r.expires_at?.toISOString() ?? null,
  completedAt: r.completed_at?.toISOString() ?? null,
  ...(r.payment_status !== undefined ? { paymentStatus: r.payment_status } : {}),
});

/** A rule's refusal as the API's validation error (field and message). */
export function ruleError(err: unknown): unknown {
  return err instanceof CheckoutRuleError ? new ValidationError(`invalid input: ${err.field}: ${err.message}`, [{ field: err.field, message: err.message }]) : err;
}


/** The provider's error without its text (it can quote what was sent). */
function providerFailure(err: unknown): Error {
  if (!(err instanceof Stripe.errors.StripeError)) return err as Error;
  const what = `${err.statusCode ?? 'no answer'} ${err.rawType ?? err.type}${err.code ? ` ${err.code}` : ''}${err.param ? ` (param ${err.param})` : ''}`;
  return new CheckoutProviderError(`the payment provider did not open the checkout (${what}); try again later`);
}

export function topUpCheckoutService({ db, config, now = () => new Date() }: CheckoutDeps) {
  let client: Stripe | undefined;
  const secretKey = config.invoicing.stripe.secretKey;
  const stripe = () => {
    if (!secretKey) throw new DependencyUnavailableError('payments by card are not configured (STRIPE_SECRET_KEY)');
    return (client ??= stripeClient({ secretKey, apiUrl: config.invoicing.stripe.apiUrl }, { maxNetworkRetries: 1 }));
  };

  /** Records the checkout, asks the provider for the session, and records its id and address. */
  async function open(c: OpenCheckout): Promise<CheckoutResult> {
    let successUrl: string;
    let cancelUrl: string;
    try {
      successUrl = returnUrl(config.checkout.publicBaseUrl, c.successUrl, DEFAULT_SUCCESS_PATH, 'successUrl');
      cancelUrl = returnUrl(config.checkout.publicBaseUrl, c.cancelUrl, DEFAULT_CANCEL_PATH, 'cancelUrl');
    } catch (err) {
      throw ruleError(err);
    }
    const api = stripe();
    const id = randomUUID();
    await insertCheckout(db, {
      id,
      account_id: c.accountId,
      purpose: c.purpose,
      invoice_id: c.invoiceId,
      amount: toAmountString(c.amount),
      currency: c.currency.toUpperCase(),
      created_by: c.actor,
    });
    const metadata: Record<string, string> = {
      account_id: c.accountId,
      purpose: c.purpose,
      checkout_id: id,
      ...(c.invoiceId ? { invoice_id: c.invoiceId } : {}),
      ...c.metadata,
    };
    let session: Stripe.Checkout.Session;
    try {
      session = await api.checkout.sessions.create(
        {
          mode: 'payment',
          line_items: [{ quantity: 1, price_data: { currency: c.currency.toLowerCase(), unit_amount: c.minor, product_data: { name: c.label } } }],
          payment_intent_data: { metadata, description: c.label },
          metadata,
          client_reference_id: id,
          success_url: successUrl,
          cancel_url: cancelUrl,
          expires_at: Math.floor(now().getTime() / 1000) + SESSION_LIFETIME_S,
          ...(c.customerId ? { customer: c.customerId } : {}),
        },
        { idempotencyKey: `checkout:${id}` },
      );
    } catch (err) {
      await markFailed(db, id);
      throw providerFailure(err);
    }
    // Only the configured checkout origin: the console's CSP lets forms lead there and nowhere else, so a browser would refuse any other.
    const url = typeof session.url === 'string' && session.url.length <= 5_000 && /^https?:\/\//.test(session.url) && new URL(session.url).origin === config.checkout.providerOrigin ? session.url : null;
    if (typeof session.id !== 'string' || !PROVIDER_ID.test(session.id) || !url) {
      await markFailed(db, id);
      throw new CheckoutProviderError('the payment provider answered without a checkout session id or address; try again later');
    }
    const pi = typeof session.payment_intent === 'string' ? session.payment_intent : (session.payment_intent?.id ?? null);
    const row = await markOpened(db, id, {
      providerSessionId: session.id,
      url,
      paymentIntentId: pi && PROVIDER_ID.test(pi) ? pi : null,
      expiresAt: Number.isSafeInteger(session.expires_at) ? new Date(session.expires_at * 1000) : null,
    });
    return {
      url,
      sessionId: session.id,
      checkoutId: id,
      amount: new Money(row.amount).toFixed(minorUnits(row.currency)),
      currency: row.currency,
      expiresAt: row.expires_at?.toISOString() ?? null,
    };
  }

  /** The account a checkout is opened for: it exists and is not closed. */
  async function accountFor(accountId: string) {
    const account = await checkoutAccount(db, accountId);
    if (!account) throw new NotFoundError(`account ${accountId} not found`);
    if (account.status === 'closed') throw new ConflictError(`account ${accountId} is closed`);
    return account;
  }

  return {
    /** Whether payments by card can be made (a provider key is configured). */
    enabled: Boolean(secretKey),
    open,
    accountFor,

    /**
     * A top-up by card: `amount` is a decimal string in the account's
     * currency, within CHECKOUT_MIN_AMOUNT..CHECKOUT_MAX_AMOUNT; `successUrl` and
     * `cancelUrl` are paths on the console (or absolute addresses on its
     * public base URL). Returns the provider's page and ids.
     */
    async createTopUpCheckout(raw: unknown): Promise<CheckoutResult> {
      const input = validate(topUpCheckoutInput, raw);
      const account = await accountFor(input.accountId);
      let checked;
      try {
        checked = topUpAmount(input.amount, account.currency, { min: config.checkout.minAmount, max: config.checkout.maxAmount });
      } catch (err) {
        throw ruleError(err);
      }
      return open({
        accountId: account.id,
        purpose: 'topup',
        invoiceId: null,
        amount: checked.amount,
        minor: checked.minor,
        currency: account.currency,
        customerId: account.stripe_customer_id,
        label: 'MixRoute credit top-up',
        successUrl: input.successUrl,
        cancelUrl: input.cancelUrl,
        actor: input.actor,
      });
    },

    /** An account's checkouts, newest first (at most `limit`, 1..200). */
    async list(accountId: string, limit = 50) {
      const id = validate(z.uuid({ error: 'accountId must be an account id (UUID)' }), accountId);
      const rows = await checkoutsOf(db, id, Math.min(Math.max(Math.trunc(limit) || 50, 1), 200));
      return rows.map(checkoutView);
    },

    /** One checkout of the account by our id or the provider's session id; 404 for another account's. */
    async get(accountId: string, idOrSession: string) {
      const account = validate(z.uuid(), accountId);
      if (typeof idOrSession !== 'string' || idOrSession.length > 255) throw new NotFoundError('checkout not found');
      const row = z.uuid().safeParse(idOrSession).success ? await findCheckout(db, idOrSession) : PROVIDER_ID.test(idOrSession) ? await findCheckoutBySession(db, idOrSession) : undefined;
      if (!row || row.account_id !== account) throw new NotFoundError('checkout not found');
      return checkoutView(row);
    },

    /**
     * A signed checkout.session.completed / .expired: updates the recorded
     * session once. 'unknown_session' for a session we did not open (made
     * elsewhere at the provider); 'mismatch' when the event's account or
     * checkout id is not the one the session was opened for: nothing changes.
     */
    async applySessionEvent(e: SessionEvent): Promise<
      { status: 'unknown_session' } | { status: 'mismatch'; checkoutId: string } | { status: 'updated' | 'unchanged'; checkoutId: string; sessionStatus: string }
    > {
      const row = await findCheckoutBySession(db, e.sessionId);
      if (!row) return { status: 'unknown_session' };
      if (e.accountId !== row.account_id || (e.checkoutId !== null && e.checkoutId !== row.id)) return { status: 'mismatch', checkoutId: row.id };
      const changed = await applySessionStatus(db, row.id, e.status, e.paymentIntentId);
      return changed ? { status: 'updated', checkoutId: row.id, sessionStatus: changed.status } : { status: 'unchanged', checkoutId: row.id, sessionStatus: row.status };
    },

    /**
     * Whether a succeeded payment naming a checkout (`checkout_id` in its
     * metadata) is the one that checkout was opened for: the same account,
     * invoice (or none) and currency. Anything else must not be credited.
     * A matching payment's id is recorded on the checkout (once).
     */
    async checkPayment(p: { checkoutId: string; paymentIntentId: string | null; accountId: string; invoiceId: string | null; currency: string }): Promise<'ok' | 'unknown_checkout' | 'account_mismatch' | 'invoice_mismatch' | 'currency_mismatch'> {
      if (!z.uuid().safeParse(p.checkoutId).success) return 'unknown_checkout';
      const row = await findCheckout(db, p.checkoutId);
      if (!row) return 'unknown_checkout';
      if (row.account_id !== p.accountId.toLowerCase()) return 'account_mismatch';
      if ((row.invoice_id ?? null) !== (p.invoiceId?.toLowerCase() ?? null)) return 'invoice_mismatch';
      if (row.currency !== p.currency.toUpperCase()) return 'currency_mismatch';
      if (p.paymentIntentId && PROVIDER_ID.test(p.paymentIntentId) && row.payment_intent_id === null) await recordPaymentIntent(db, row.id, p.paymentIntentId);
      return 'ok';
    },
  };
}

export type TopUpCheckoutService = ReturnType<typeof topUpCheckoutService>;
