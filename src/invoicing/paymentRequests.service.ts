import Stripe from 'stripe';
import { stripeClient } from '../shared/stripeClient';
import { z } from 'zod';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { NotFoundError } from '../errors';
import { minorUnits, Money, toAmountString } from '../shared/money.rules';
import { validate } from '../shared/validate';
import { findPaymentRequest, insertPaymentRequest, invoiceToRequest, type PaymentRequestRow } from './paymentRequests.data';
import { paymentFacts } from './payments.data';
import { amountOutstanding } from './paymentStatus.rules';

/**
 * Payment requests of postpaid invoices (docs/collections.md): a Stripe
 * PaymentIntent for what is outstanding on a finalized postpaid invoice, made
 * with the official client, its metadata naming the invoice (`invoice_id`,
 * `account_id`, `invoice_number`) so that the payment webhook applies the
 * payment to it. One per invoice: the provider call carries the idempotency
 * key `invoice-payment-request:{invoiceId}` and the row is UNIQUE by invoice,
 * so a retried request makes one intent and one row. The intent's
 * client_secret is never stored. The dunning workflow asks first.
 */

export type PaymentRequestStatus = 'created' | 'existing' | 'not_configured' | 'nothing_due';

export interface PaymentRequestOutcome {
  status: PaymentRequestStatus;
  /** The provider's id of the request (a PaymentIntent id); null when none was made. */
  providerId: string | null;
}

/** The provider refused the request (a 4xx other than 409/429): asking again cannot help; staff must look (a key, the amount). */
export class PaymentProviderRejectedError extends Error {
  override name = 'PaymentProviderRejectedError';
}

/** The provider could not be reached or failed (a connection error, a timeout, 429, 409, 5xx): asking again may work. */
export class PaymentProviderUnavailableError extends Error {
  override name = 'PaymentProviderUnavailableError';
}

const invoiceIdInput = z.uuid({ error: 'invoiceId must be an invoice id (UUID)' });


/** A provider error as one of ours; its text stays out (it can quote what was sent), its type and status are kept. */
function providerError(err: unknown): Error {
  if (!(err instanceof Stripe.errors.StripeError)) return err as Error;
  const status = err.statusCode;
  const what = `${status ?? 'no answer'} ${err.type}${err.code ? ` ${err.code}` : ''}${err.param ? ` (param ${err.param})` : ''}`;
  if (status !== undefined && status >= 400 && status < 500 && status !== 409 && status !== 429) {
    return new PaymentProviderRejectedError(`the payment provider refused the payment request: ${what}`);
  }
  return new PaymentProviderUnavailableError(`the payment provider did not create the payment request: ${what}`);
}

export const paymentRequestView = (r: PaymentRequestRow) => ({
  provider: r.provider,
  providerId: r.provider_id,
  amount: new Money(r.amount).toFixed(minorUnits(r.currency)),
  currency: r.currency,
  createdAt: r.created_at.toISOString(),
});

export function paymentRequests({ db, config }: { db: Db; config: { invoicing: Pick<Config['invoicing'], 'stripe'> } }) {
  let client: Stripe | undefined;
  const stripe = (secretKey: string) => (client ??= stripeClient({ secretKey, apiUrl: config.invoicing.stripe.apiUrl }, { maxNetworkRetries: 0 }));

  return {
    /**
     * Asks the payment provider for the invoice's payment, once: 'existing'
     * when it was asked before (whatever is outstanding now), 'nothing_due'
     * when the invoice is not a finalized postpaid invoice with something
     * outstanding (paid, void, written off), 'not_configured' without
     * STRIPE_SECRET_KEY. Throws PaymentProviderRejectedError (do not retry)
     * or PaymentProviderUnavailableError (retry).
     */
    async request(invoiceId: string): Promise<PaymentRequestOutcome> {
      const id = validate(invoiceIdInput, invoiceId);
      const earlier = await findPaymentRequest(db, id);
      if (earlier) return { status: 'existing', providerId: earlier.provider_id };

      const inv = await invoiceToRequest(db, id);
      if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
      if (inv.kind !== 'invoice' || inv.plan !== 'postpaid' || inv.status !== 'finalized') return { status: 'nothing_due', providerId: null };
      const facts = (await paymentFacts(db, [id])).get(id)!;
      const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
      if (facts.writtenOff || outstanding.lte(0)) return { status: 'nothing_due', providerId: null };

      const secretKey = config.invoicing.stripe.secretKey;
      if (!secretKey) return { status: 'not_configured', providerId: null };

      const minor = outstanding.times(10 ** minorUnits(inv.currency));
      let intent: Stripe.PaymentIntent;
      try {
        intent = await stripe(secretKey).paymentIntents.create(
          {
            amount: minor.toNumber(),
            currency: inv.currency.toLowerCase(),
            description: `Invoice ${inv.number}`,
            metadata: { invoice_id: inv.id, account_id: inv.account_id, invoice_number: inv.number ?? '' },
            ...(inv.stripe_customer_id ? { customer: inv.stripe_customer_id } : {}),
          },
          { idempotencyKey: `invoice-payment-request:${inv.id}` },
        );
      } catch (err) {
        throw providerError(err);
      }
      if (typeof intent.id !== 'string' || !/^[A-Za-z0-9_]{1,255}$/.test(intent.id)) {
        throw new PaymentProviderUnavailableError('the payment provider answered without a payment intent id');
      }
      const row = await insertPaymentRequest(db, {
        invoice_id: inv.id,
        account_id: inv.account_id,
        provider: 'stripe',
        provider_id: intent.id,
        amount: toAmountString(outstanding),
        currency: inv.currency,
      });
      if (!row) {
        // Asked at the same moment by another attempt: the same key made the same intent.
        const other = await findPaymentRequest(db, id);
        return { status: 'existing', providerId: other?.provider_id ?? intent.id };
      }
      return { status: 'created', providerId: intent.id };
    },

    /** The invoice's payment request, if any (for staff). */
    async get(invoiceId: string) {
      const row = await findPaymentRequest(db, validate(invoiceIdInput, invoiceId));
      return row ? paymentRequestView(row) : null;
    },
  };
}

export type PaymentRequests = ReturnType<typeof paymentRequests>;
