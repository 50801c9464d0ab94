import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock';
import { ConflictError, DependencyUnavailableError, NotFoundError, ValidationError } from '../../src/errors';
import { checkoutService } from '../../src/invoicing/checkout.service';
import { invoicingService } from '../../src/invoicing/invoicing.service';
import { CheckoutProviderError } from '../../src/ledger/checkout.service';
import { Money } from '../../src/shared/money.rules';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { paymentWebhookStack } from '../helpers/paymentWebhook';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { withTestWorker } from '../helpers/worker';

/**
 * Hosted checkout (docs/ledger.md#hosted-checkout): the official Stripe
 * client against the local stand-in (test/helpers/fakeStripe.ts), the real
 * database, the admin server's signed payment webhook and a real worker for
 * the topUp workflow. A session is opened, paid at the stand-in, and the
 * events it returns are signed and delivered as Stripe would.
 */
const SECRET = 'whsec_checkout_test_secret';
const CONSOLE = 'https://console.example.test';
const webhook = paymentWebhookStack(SECRET);
const { config, db, ops, sign } = webhook;
let fake: FakeStripe;
let checkout: ReturnType<typeof checkoutService>;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;

beforeAll(async () => {
  fake = await startFakeStripe();
  checkout = checkoutService({
    db,
    config: { checkout: { ...config.checkout, publicBaseUrl: CONSOLE, providerOrigin: new URL(fake.url).origin }, invoicing: { stripe: { secretKey: fake.secretKey, apiUrl: fake.url } } },
  });
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
});
afterAll(async () => {
  await fake.close();
});

const deliver = (event: Record<string, unknown>) => {
  const payload = JSON.stringify(event);
  return fetch(`${webhook.url}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': sign(payload) }, body: payload });
};
const sessionCalls = () => fake.calls.filter((c) => c.method === 'POST' && c.path === '/v1/checkout/sessions');
const balance = async (accountId: string) => new Money((await db('account_balances').where({ account_id: accountId }).first())?.balance ?? '0');

describe('top-up by hosted checkout', () => {
  it('opens a session for the amount in minor units, paid and delivered twice it credits the account once', async () => {
    const account = await ops.createAccount({ name: `Checkout Co ${randomUUID().slice(0, 6)}` });
    const before = sessionCalls().length;
    const opened = await checkout.createTopUpCheckout({ accountId: account.id, amount: '25.50', successUrl: '/app/billing?done=1', actor: 'customer:test-user' });
    expect(opened).toMatchObject({ amount: '25.50', currency: 'USD' });
    expect(opened.sessionId).toMatch(/^cs_test_/);
    expect(opened.url).toBe(`${fake.url}/c/pay/${opened.sessionId}`);

    const calls = sessionCalls().slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      authorization: `Bearer ${fake.secretKey}`,
      idempotencyKey: `checkout:${opened.checkoutId}`,
      form: {
        mode: 'payment',
        'line_items[0][quantity]': '1',
        'line_items[0][price_data][currency]': 'usd',
        'line_items[0][price_data][unit_amount]': '2550',
        'payment_intent_data[metadata][account_id]': account.id,
        'payment_intent_data[metadata][purpose]': 'topup',
        'payment_intent_data[metadata][checkout_id]': opened.checkoutId,
        client_reference_id: opened.checkoutId,
        success_url: `${CONSOLE}/app/billing?done=1`,
        cancel_url: `${CONSOLE}/app/billing?checkout=cancelled`,
      },
    });
    expect(calls[0]!.form['payment_intent_data[metadata][invoice_id]']).toBeUndefined();

    const row = await db('checkout_sessions').where({ id: opened.checkoutId }).first();
    expect(row).toMatchObject({ account_id: account.id, purpose: 'topup', provider_session_id: opened.sessionId, status: 'open', currency: 'USD', created_by: 'customer:test-user', invoice_id: null });
    expect(new Money(row.amount).eq('25.5')).toBe(true);
    // The session as the provider keeps it, read back with the official client.
    const stripe = new Stripe(fake.secretKey, { host: '127.0.0.1', port: Number(new URL(fake.url).port), protocol: 'http', telemetry: false });
    expect(await stripe.checkout.sessions.retrieve(opened.sessionId)).toMatchObject({ status: 'open', amount_total: 2550, payment_intent: null });

    const paid = fake.paySession(opened.sessionId);
    await withTestWorker(config, db, async () => {
      const answers = [];
      for (let i = 0; i < 2; i++) {
        const r = await deliver(paid.paymentSucceeded);
        expect(r.status).toBe(200);
        answers.push((await r.json()) as { applied?: boolean; workflowId: string });
      }
      expect(answers.map((a) => a.workflowId)).toEqual([`topup:stripe:${paid.paymentIntentId}`, `topup:stripe:${paid.paymentIntentId}`]);
      expect(answers.filter((a) => a.applied === true)).toHaveLength(1);
    });
    const entries = await db('ledger_entries').where({ account_id: account.id });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ kind: 'topup', actor: 'webhook:stripe', reference_id: `stripe:${paid.paymentIntentId}` });
    expect(new Money(entries[0].amount).eq('25.5')).toBe(true);
    expect((await balance(account.id)).eq('25.5')).toBe(true);

    // checkout.session.completed updates the record once.
    const first = await deliver(paid.sessionCompleted);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ status: 'updated', checkoutId: opened.checkoutId, sessionStatus: 'complete' });
    const again = await deliver(paid.sessionCompleted);
    expect(await again.json()).toMatchObject({ status: 'unchanged', sessionStatus: 'complete' });
    expect(await db('checkout_sessions').where({ id: opened.checkoutId }).first()).toMatchObject({ status: 'complete', payment_intent_id: paid.paymentIntentId });
    expect(await checkout.list(account.id)).toEqual([
      expect.objectContaining({ checkoutId: opened.checkoutId, purpose: 'topup', status: 'complete', amount: '25.50', paymentStatus: 'succeeded', createdBy: 'customer:test-user' }),
    ]);
    expect(await checkout.get(account.id, opened.sessionId)).toMatchObject({ checkoutId: opened.checkoutId });
    // Still one credit.
    expect((await balance(account.id)).eq('25.5')).toBe(true);
  });

  it('an expired session is recorded as expired and credits nothing', async () => {
    const account = await ops.createAccount({ name: `Expired Co ${randomUUID().slice(0, 6)}` });
    const opened = await checkout.createTopUpCheckout({ accountId: account.id, amount: '10', actor: 'customer:u' });
    const r = await deliver(fake.expireSession(opened.sessionId));
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'updated', sessionStatus: 'expired' });
    expect((await db('checkout_sessions').where({ id: opened.checkoutId }).first()).status).toBe('expired');
    expect(await db('ledger_entries').where({ account_id: account.id })).toHaveLength(0);
  });

  it('refuses bad amounts, unknown accounts and another account’s checkout with clear errors, asking the provider nothing', async () => {
    const account = await ops.createAccount({ name: `Refusals Co ${randomUUID().slice(0, 6)}` });
    const before = sessionCalls().length;
    const cases: [unknown, RegExp][] = [
      ['0', /between 5 and 10000 USD/],
      ['4.99', /between 5 and 10000 USD/],
      ['10000.01', /between 5 and 10000 USD/],
      ['12.345', /more decimal places than USD allows \(2\)/],
      ['-20', /positive decimal string/],
      ['abc', /positive decimal string/],
      [25, /positive decimal string/],
      [undefined, /positive decimal string/],
    ];
    for (const [amount, message] of cases) {
      const err = await checkout.createTopUpCheckout({ accountId: account.id, amount, actor: 'customer:u' }).catch((e: unknown) => e);
      expect(err, String(amount)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).message).toMatch(message);
      expect((err as ValidationError).fieldErrors).toEqual([expect.objectContaining({ field: 'amount' })]);
    }
    await expect(checkout.createTopUpCheckout({ accountId: randomUUID(), amount: '10', actor: 'customer:u' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(checkout.createTopUpCheckout({ accountId: account.id, amount: '10', actor: '' })).rejects.toBeInstanceOf(ValidationError);
    expect(sessionCalls().length).toBe(before);
    expect(await db('checkout_sessions').where({ account_id: account.id })).toHaveLength(0);

    const other = await ops.createAccount({ name: `Other Co ${randomUUID().slice(0, 6)}` });
    const theirs = await checkout.createTopUpCheckout({ accountId: other.id, amount: '10', actor: 'customer:o' });
    await expect(checkout.get(account.id, theirs.checkoutId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(checkout.get(account.id, theirs.sessionId)).rejects.toBeInstanceOf(NotFoundError);
    expect(await checkout.list(account.id)).toEqual([]);
  });

  it('without a provider key makes no session; a provider failure is an error and leaves a failed record', async () => {
    const account = await ops.createAccount({ name: `Provider Co ${randomUUID().slice(0, 6)}` });
    const unconfigured = checkoutService({ db, config: { checkout: config.checkout, invoicing: { stripe: { secretKey: undefined, apiUrl: fake.url } } } });
    expect(unconfigured.enabled).toBe(false);
    await expect(unconfigured.createTopUpCheckout({ accountId: account.id, amount: '10', actor: 'customer:u' })).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(await db('checkout_sessions').where({ account_id: account.id })).toHaveLength(0);

    fake.failNext(2, 'server_error');
    const err = await checkout.createTopUpCheckout({ accountId: account.id, amount: '10', actor: 'customer:u' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckoutProviderError);
    expect((err as Error).message).toMatch(/500 api_error/);
    const rows = await db('checkout_sessions').where({ account_id: account.id });
    expect(rows.map((r) => [r.status, r.provider_session_id])).toEqual([['failed', null]]);
  });
});

describe('paying an invoice by hosted checkout', () => {
  it('opens a session for what is left, and the signed webhook pays the invoice once', async () => {
    const inv = await postpaidInvoice('Checkout Invoice Co');
    const opened = await checkout.createInvoiceCheckout({ accountId: inv.accountId, invoiceId: inv.invoiceId, actor: 'customer:billing-user' });
    expect(opened).toMatchObject({ amount: '119.00' });
    const call = sessionCalls().find((c) => c.form.client_reference_id === opened.checkoutId)!;
    expect(call.form).toMatchObject({
      'line_items[0][price_data][unit_amount]': '11900',
      'payment_intent_data[metadata][invoice_id]': inv.invoiceId,
      'payment_intent_data[metadata][account_id]': inv.accountId,
      'payment_intent_data[metadata][invoice_number]': inv.number,
      'payment_intent_data[metadata][purpose]': 'invoice',
    });
    expect(await db('checkout_sessions').where({ id: opened.checkoutId }).first()).toMatchObject({ purpose: 'invoice', invoice_id: inv.invoiceId });

    const paid = fake.paySession(opened.sessionId);
    const first = await deliver(paid.paymentSucceeded);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ status: 'applied' });
    const second = await deliver(paid.paymentSucceeded);
    expect(await second.json()).toMatchObject({ status: 'already_applied' });
    const applications = await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId });
    expect(applications).toHaveLength(1);
    expect(applications[0]).toMatchObject({ source: 'stripe', reference: paid.paymentIntentId });
    expect(new Money(applications[0].amount).eq('119')).toBe(true);
    expect(await checkout.list(inv.accountId)).toEqual([expect.objectContaining({ purpose: 'invoice', paymentStatus: 'applied' })]);

    // Paid: no second checkout.
    const again = await checkout.createInvoiceCheckout({ accountId: inv.accountId, invoiceId: inv.invoiceId, actor: 'customer:billing-user' }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ConflictError);
    expect((again as Error).message).toMatch(/is paid: nothing to pay/);
  });

  it('asks for the rest after a partial payment; refuses void invoices and another account’s invoice (404)', async () => {
    const invoicing = invoicingService({ db, clock: systemClock, config: { invoicing: config.invoicing, billing: config.billing } });
    const partial = await postpaidInvoice();
    await invoicing.payments.recordPayment(partial.invoiceId, { amount: '19.00', paidOn: new Date().toISOString().slice(0, 10), reference: `CO-${randomUUID().slice(0, 8)}` }, 'test');
    expect(await checkout.createInvoiceCheckout({ accountId: partial.accountId, invoiceId: partial.invoiceId, actor: 'customer:u' })).toMatchObject({ amount: '100.00' });

    const voided = await postpaidInvoice();
    await invoicing.invoices.void({ id: voided.invoiceId, reason: 'issued in error' }, 'test');
    const before = sessionCalls().length;
    const err = await checkout.createInvoiceCheckout({ accountId: voided.accountId, invoiceId: voided.invoiceId, actor: 'customer:u' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toMatch(/is void/);

    const mine = await postpaidInvoice();
    const notMine = await checkout.createInvoiceCheckout({ accountId: mine.accountId, invoiceId: partial.invoiceId, actor: 'customer:u' }).catch((e: unknown) => e);
    expect(notMine).toBeInstanceOf(NotFoundError);
    // The same answer as for an invoice that does not exist.
    const missing = await checkout.createInvoiceCheckout({ accountId: mine.accountId, invoiceId: randomUUID(), actor: 'customer:u' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((notMine as Error).message.replace(partial.invoiceId, 'X')).toBe((missing as Error).message.replace(/[0-9a-f-]{36}/, 'X'));
    expect(sessionCalls().length).toBe(before);
  });
});
