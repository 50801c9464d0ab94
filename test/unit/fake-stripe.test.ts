import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripeClient } from '../../src/shared/stripeClient';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';

/**
 * The local stand-in for Stripe's API (test/helpers/fakeStripe.ts) answers
 * the official client as Stripe does: what the payment-request tests rely on.
 */
let fake: FakeStripe;
let stripe: Stripe;
beforeAll(async () => {
  fake = await startFakeStripe();
  stripe = stripeClient({ secretKey: fake.secretKey, apiUrl: fake.url }, { maxNetworkRetries: 0 });
});
afterAll(() => fake.close());

describe('the fake Stripe API', () => {
  it('creates and reads a PaymentIntent with its metadata; the same idempotency key returns the same intent', async () => {
    const params = { amount: 11900, currency: 'eur', metadata: { invoice_id: 'inv-1', account_id: 'acc-1' } };
    const a = await stripe.paymentIntents.create(params, { idempotencyKey: 'k-1' });
    expect(a).toMatchObject({ object: 'payment_intent', amount: 11900, currency: 'eur', status: 'requires_payment_method', metadata: params.metadata, customer: null });
    expect(a.id).toMatch(/^pi_/);
    expect((await stripe.paymentIntents.create(params, { idempotencyKey: 'k-1' })).id).toBe(a.id);
    expect((await stripe.paymentIntents.retrieve(a.id)).metadata).toEqual(params.metadata);
    expect(fake.calls.filter((c) => c.idempotencyKey === 'k-1')).toHaveLength(2);
  });

  it('answers errors as Stripe does: a key reused with other parameters, a bad amount, a bad key, an unknown intent', async () => {
    await stripe.paymentIntents.create({ amount: 100, currency: 'eur' }, { idempotencyKey: 'k-2' });
    await expect(stripe.paymentIntents.create({ amount: 200, currency: 'eur' }, { idempotencyKey: 'k-2' })).rejects.toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    await expect(stripe.paymentIntents.create({ amount: 0, currency: 'eur' })).rejects.toMatchObject({ type: 'StripeInvalidRequestError', statusCode: 400, param: 'amount' });
    const wrong = stripeClient({ secretKey: 'sk_test_wrong', apiUrl: fake.url }, { maxNetworkRetries: 0 });
    await expect(wrong.paymentIntents.create({ amount: 100, currency: 'eur' })).rejects.toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    await expect(stripe.paymentIntents.retrieve('pi_unknown')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});
