import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentRequestActivities } from '../../activities/paymentRequests';
import { systemClock } from '../../src/clock';
import { invoicingService } from '../../src/invoicing/invoicing.service';
import { PaymentProviderUnavailableError, paymentRequests } from '../../src/invoicing/paymentRequests.service';
import { testConfig, testDb } from '../helpers/env';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';

/**
 * Payment requests (docs/collections.md, "Payment requests"): the official
 * Stripe client against a local server that speaks Stripe's PaymentIntents
 * API (test/helpers/fakeStripe.ts), the real database. One intent and one row
 * per invoice however often it is asked, none without a key or with nothing
 * due, transient provider failures retried, refusals not.
 */
let fake: FakeStripe;
const config = testConfig();
const db = testDb(config);
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
const withKey = () => ({ ...config.invoicing, stripe: { secretKey: fake.secretKey, apiUrl: fake.url } });
const today = () => new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  fake = await startFakeStripe();
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
});
afterAll(async () => {
  await fake.close();
  await db.destroy();
});

const creates = (invoiceId: string) => fake.calls.filter((c) => c.method === 'POST' && c.path === '/v1/payment_intents' && c.form['metadata[invoice_id]'] === invoiceId);
const rows = (invoiceId: string) => db('invoice_payment_requests').where({ invoice_id: invoiceId });

describe('payment requests of postpaid invoices', () => {
  it('creates one PaymentIntent for what is outstanding, with the invoice in its metadata; asked again, the same one', async () => {
    const inv = await postpaidInvoice();
    const { requestInvoicePayment } = paymentRequestActivities({ paymentRequests: paymentRequests({ db, config: { invoicing: withKey() } }) });

    const first = await requestInvoicePayment({ invoiceId: inv.invoiceId });
    expect(first.status).toBe('created');
    expect(first.providerId).toMatch(/^pi_/);
    const again = await requestInvoicePayment({ invoiceId: inv.invoiceId });
    expect(again).toEqual({ status: 'existing', providerId: first.providerId });

    const calls = creates(inv.invoiceId);
    expect(calls).toHaveLength(1);
    const currency = (await db('invoices').where({ id: inv.invoiceId }).first()).currency as string;
    expect(calls[0]).toMatchObject({
      authorization: `Bearer ${fake.secretKey}`,
      idempotencyKey: `invoice-payment-request:${inv.invoiceId}`,
      form: {
        amount: '11900',
        currency: currency.toLowerCase(),
        'metadata[invoice_id]': inv.invoiceId,
        'metadata[account_id]': inv.accountId,
        'metadata[invoice_number]': inv.number,
      },
    });
    const stored = await rows(inv.invoiceId);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ provider: 'stripe', provider_id: first.providerId, account_id: inv.accountId, currency });
    expect(Number(stored[0].amount)).toBe(119);
    // The intent's client secret is never kept.
    expect(JSON.stringify(stored[0])).not.toContain('secret');

    // Staff see it with the invoice's payments (GET /billing/invoices/{id}/payments).
    const invoicing = invoicingService({ db, clock: systemClock, config: { invoicing: withKey(), billing: config.billing } });
    expect((await invoicing.payments.get(inv.invoiceId)).paymentRequest).toMatchObject({ provider: 'stripe', providerId: first.providerId, amount: '119.00', currency });
  });

  it('asked twice at once (a retried activity beside the first): one intent at the provider, one row', async () => {
    const inv = await postpaidInvoice();
    const service = paymentRequests({ db, config: { invoicing: withKey() } });
    const results = await Promise.all([service.request(inv.invoiceId), service.request(inv.invoiceId), service.request(inv.invoiceId)]);
    const ids = new Set(results.map((r) => r.providerId));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.status === 'created').length).toBeLessThanOrEqual(1);
    expect(await rows(inv.invoiceId)).toHaveLength(1);
    // Every call reached the provider with the one key; the provider made one intent.
    expect(new Set(creates(inv.invoiceId).map((c) => c.idempotencyKey))).toEqual(new Set([`invoice-payment-request:${inv.invoiceId}`]));
    expect([...fake.intents.values()].filter((i) => i.metadata.invoice_id === inv.invoiceId)).toHaveLength(1);
  });

  it('asks for the rest after a partial payment, and for nothing once paid or void', async () => {
    const invoicing = invoicingService({ db, clock: systemClock, config: { invoicing: withKey(), billing: config.billing } });
    const service = paymentRequests({ db, config: { invoicing: withKey() } });

    const partial = await postpaidInvoice();
    await invoicing.payments.recordPayment(partial.invoiceId, { amount: '19.00', paidOn: today(), reference: `PR-${randomUUID().slice(0, 8)}` }, 'test');
    expect((await service.request(partial.invoiceId)).status).toBe('created');
    expect(creates(partial.invoiceId)[0]!.form.amount).toBe('10000');

    const paid = await postpaidInvoice();
    await invoicing.payments.recordPayment(paid.invoiceId, { amount: '119.00', paidOn: today(), reference: `PR-${randomUUID().slice(0, 8)}` }, 'test');
    expect(await service.request(paid.invoiceId)).toEqual({ status: 'nothing_due', providerId: null });

    const voided = await postpaidInvoice();
    await invoicing.invoices.void({ id: voided.invoiceId, reason: 'issued in error' }, 'test');
    expect(await service.request(voided.invoiceId)).toEqual({ status: 'nothing_due', providerId: null });

    for (const id of [paid.invoiceId, voided.invoiceId]) {
      expect(creates(id)).toHaveLength(0);
      expect(await rows(id)).toHaveLength(0);
    }
  });

  it('without STRIPE_SECRET_KEY makes no request', async () => {
    const inv = await postpaidInvoice();
    const { requestInvoicePayment } = paymentRequestActivities({ paymentRequests: paymentRequests({ db, config: { invoicing: { stripe: { secretKey: undefined, apiUrl: fake.url } } } }) });
    expect(await requestInvoicePayment({ invoiceId: inv.invoiceId })).toEqual({ status: 'not_configured', providerId: null });
    expect(creates(inv.invoiceId)).toHaveLength(0);
    expect(await rows(inv.invoiceId)).toHaveLength(0);
  });

  it('a provider failure (5xx, a dropped connection) is retryable and the retry makes the one intent; a refusal (bad key) is not retryable', async () => {
    const inv = await postpaidInvoice();
    const { requestInvoicePayment } = paymentRequestActivities({ paymentRequests: paymentRequests({ db, config: { invoicing: withKey() } }) });

    fake.failNext(1, 'server_error');
    const failed = await requestInvoicePayment({ invoiceId: inv.invoiceId }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(PaymentProviderUnavailableError);
    expect(failed).not.toBeInstanceOf(ApplicationFailure);
    // The client itself retries a closed connection once (with the same key); both dropped, the activity's retry takes over.
    fake.failNext(2, 'drop');
    expect(await requestInvoicePayment({ invoiceId: inv.invoiceId }).catch((e: unknown) => e)).toBeInstanceOf(PaymentProviderUnavailableError);
    expect(creates(inv.invoiceId).slice(-2).map((c) => c.status)).toEqual([-1, -1]);
    expect(await rows(inv.invoiceId)).toHaveLength(0);
    expect((await requestInvoicePayment({ invoiceId: inv.invoiceId })).status).toBe('created');
    expect(await rows(inv.invoiceId)).toHaveLength(1);
    expect(new Set(creates(inv.invoiceId).map((c) => c.idempotencyKey))).toEqual(new Set([`invoice-payment-request:${inv.invoiceId}`]));

    const other = await postpaidInvoice();
    const badKey = paymentRequestActivities({ paymentRequests: paymentRequests({ db, config: { invoicing: { stripe: { secretKey: 'sk_test_wrong', apiUrl: fake.url } } } }) });
    const refused = await badKey.requestInvoicePayment({ invoiceId: other.invoiceId }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect(refused).toMatchObject({ type: 'PaymentProviderRejected', nonRetryable: true });
    // The provider's error text (which quotes the key) is not carried into the failure (workflow history).
    expect((refused as Error).message).not.toContain('sk_test_wrong');
    expect(await rows(other.invoiceId)).toHaveLength(0);

    const unknown = await requestInvoicePayment({ invoiceId: randomUUID() }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ type: 'NotFound', nonRetryable: true });
  });
});
