import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { ValidationError } from '../../src/errors';
import { checkoutService } from '../../src/invoicing/checkout.service';
import { Money } from '../../src/shared/money.rules';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { silentLogger, testConfig } from '../helpers/env';
import { paymentWebhookStack } from '../helpers/paymentWebhook';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';
import { withTestWorker } from '../helpers/worker';

/**
 * An attacker at the hosted checkout's boundaries (docs/ledger.md#hosted-checkout):
 * a customer choosing where the provider sends people back (an open
 * redirect to a phishing page), amounts meant to break the conversion to
 * minor units, and payment events whose metadata names an account other than
 * the one the checkout was opened for.
 */
const SECRET = 'whsec_checkout_security_secret';
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

const deliver = (event: unknown) => {
  const payload = JSON.stringify(event);
  return fetch(`${webhook.url}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': sign(payload) }, body: payload });
};
const sessionCalls = () => fake.calls.filter((c) => c.method === 'POST' && c.path === '/v1/checkout/sessions');
const account = async (name: string) => (await ops.createAccount({ name: `${name} ${randomUUID().slice(0, 6)}` })).id as string;
const entries = (accountId: string) => db('ledger_entries').where({ account_id: accountId });
const rejections = async () => Number((await db('security_events').where({ kind: 'webhook_rejected' }).count({ n: '*' }))[0]!.n);
/** A copy of an event with its object's metadata changed. */
const withMetadata = (event: Record<string, unknown>, change: Record<string, string>) => {
  const e = structuredClone(event) as { id: string; data: { object: { metadata: Record<string, string> } } };
  e.id = `evt_${randomUUID().replace(/-/g, '')}`;
  Object.assign(e.data.object.metadata, change);
  return e;
};

describe('return addresses: nothing from a request chooses a host', () => {
  it('refuses success and cancel addresses on another host, scheme or outside the console, and asks the provider nothing', async () => {
    const id = await account('Redirect Co');
    const before = sessionCalls().length;
    const hostile = [
      'https://evil.example/app/billing',
      '//evil.example/app/billing',
      '/\\evil.example/app',
      '\\\\evil.example\\app',
      'https://console.example.test.evil.example/app',
      'https://console.example.test@evil.example/app',
      'https://user:pw@console.example.test/app',
      'http://console.example.test/app/billing',
      'https://console.example.test:8443/app/billing',
      'javascript:alert(document.cookie)',
      'data:text/html,<script>alert(1)</script>',
      ' https://evil.example',
      `/app/${'a'.repeat(3_000)}`,
    ];
    for (const url of hostile) {
      for (const field of ['successUrl', 'cancelUrl'] as const) {
        const err = await checkout.createTopUpCheckout({ accountId: id, amount: '10', actor: 'customer:u', [field]: url }).catch((e: unknown) => e);
        expect(err, `${field} ${url.slice(0, 60)}`).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).fieldErrors[0]?.field, url).toBe(field);
      }
    }
    expect(sessionCalls().length).toBe(before);
    expect(await db('checkout_sessions').where({ account_id: id })).toHaveLength(0);
  });

  it('builds the addresses it sends on the configured console base URL', async () => {
    const id = await account('Redirect Ok Co');
    const opened = await checkout.createTopUpCheckout({ accountId: id, amount: '10', actor: 'customer:u', successUrl: '/app/billing?x=1', cancelUrl: `${CONSOLE}/app/billing` });
    const call = sessionCalls().find((c) => c.form.client_reference_id === opened.checkoutId)!;
    expect(new URL(call.form.success_url!).origin).toBe(CONSOLE);
    expect(call.form.cancel_url).toBe(`${CONSOLE}/app/billing`);
    // Without addresses: the console's billing page, with the provider's placeholder for the session id left as is.
    const plain = await checkout.createTopUpCheckout({ accountId: id, amount: '10', actor: 'customer:u' });
    const sent = sessionCalls().find((c) => c.form.client_reference_id === plain.checkoutId)!;
    expect(sent.form.success_url).toBe(`${CONSOLE}/app/billing?checkout=success&session={CHECKOUT_SESSION_ID}`);
  });
});

describe('amounts', () => {
  it('refuses too many decimals, negative, huge, exponent, NaN and non-string amounts before anything is written or sent', async () => {
    const id = await account('Amounts Co');
    const before = sessionCalls().length;
    const bad: unknown[] = ['10.001', '10.0000000000000000001', '-10', '+10', '1e3', '1E+3', 'NaN', 'Infinity', '0x10', ' 10', '10 ', '1,000', '10.', '.5', '99999999999999999999', '1'.repeat(50), 10, 10.5, Number.NaN, null, {}, ['10'], '0', '0.00'];
    for (const amount of bad) {
      const err = await checkout.createTopUpCheckout({ accountId: id, amount, actor: 'customer:u' }).catch((e: unknown) => e);
      expect(err, JSON.stringify(amount)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).fieldErrors[0]?.field).toBe('amount');
      expect((err as Error).message).not.toMatch(/at .*\.ts:\d+/);
    }
    expect(sessionCalls().length).toBe(before);
    expect(await db('checkout_sessions').where({ account_id: id })).toHaveLength(0);
  });

  it('the largest amount allowed is sent exactly in minor units', async () => {
    const id = await account('Exact Co');
    const opened = await checkout.createTopUpCheckout({ accountId: id, amount: '9999.99', actor: 'customer:u' });
    const call = sessionCalls().find((c) => c.form.client_reference_id === opened.checkoutId)!;
    expect(call.form['line_items[0][price_data][unit_amount]']).toBe('999999');
  });
});

describe('payment events naming another account', () => {
  it('a payment of a checkout whose metadata names another account (or an invoice) credits nobody; the genuine one credits the session’s account once', async () => {
    const victim = await account('Session Owner Co');
    const beneficiary = await account('Beneficiary Co');
    const opened = await checkout.createTopUpCheckout({ accountId: victim, amount: '50', actor: 'customer:u' });
    const paid = fake.paySession(opened.sessionId);
    const inv = await postpaidInvoice('Someone Else Co');
    const before = await rejections();

    const forged = [
      withMetadata(paid.paymentSucceeded, { account_id: beneficiary }),
      withMetadata(paid.paymentSucceeded, { account_id: inv.accountId, invoice_id: inv.invoiceId }),
      withMetadata(paid.paymentSucceeded, { invoice_id: inv.invoiceId }),
      withMetadata(paid.paymentSucceeded, { checkout_id: randomUUID() }),
      withMetadata(paid.paymentSucceeded, { checkout_id: 'not-a-uuid' }),
    ];
    for (const e of forged) {
      const r = await deliver(e);
      expect(r.status, JSON.stringify(e.data.object.metadata)).toBe(400);
      expect(((await r.json()) as { type: string }).type).toMatch(/webhook_rejected/);
    }
    expect(await rejections()).toBe(before + forged.length);
    expect(await entries(beneficiary)).toHaveLength(0);
    expect(await entries(victim)).toHaveLength(0);
    expect(await db('invoice_payment_applications').where({ invoice_id: inv.invoiceId })).toHaveLength(0);

    await withTestWorker(config, db, async () => {
      expect((await deliver(paid.paymentSucceeded)).status).toBe(200);
    });
    const credited = await entries(victim);
    expect(credited).toHaveLength(1);
    expect(new Money(credited[0].amount).eq('50')).toBe(true);
    expect(await entries(beneficiary)).toHaveLength(0);
  });

  it('a checkout.session event whose metadata names another account is rejected and changes nothing', async () => {
    const owner = await account('Session Co');
    const other = await account('Not The Owner Co');
    const opened = await checkout.createTopUpCheckout({ accountId: owner, amount: '20', actor: 'customer:u' });
    const paid = fake.paySession(opened.sessionId);
    const forged = [
      withMetadata(paid.sessionCompleted, { account_id: other }),
      { ...withMetadata(paid.sessionCompleted, {}), data: { object: { ...(paid.sessionCompleted.data as { object: object }).object, client_reference_id: randomUUID() } } },
    ];
    for (const e of forged) {
      const r = await deliver(e);
      expect(r.status).toBe(400);
    }
    expect((await db('checkout_sessions').where({ id: opened.checkoutId }).first()).status).toBe('open');
    // A session we never opened is acknowledged and ignored.
    const stranger = withMetadata(paid.sessionCompleted, {}) as unknown as { data: { object: { id: string } } };
    stranger.data.object.id = `cs_test_${randomUUID().replace(/-/g, '')}`;
    const r = await deliver(stranger);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'unknown_session' });
    expect(await entries(owner)).toHaveLength(0);
    expect(await entries(other)).toHaveLength(0);
  });
});

describe('where the browser is sent: only the configured checkout origin', () => {
  it('a checkout address on any other origin is not handed to the browser: the checkout fails and nothing is opened', async () => {
    // The provider (here the stand-in) answers with a page on its own origin; the console expects Stripe's.
    const strict = checkoutService({
      db,
      config: { checkout: { ...config.checkout, publicBaseUrl: CONSOLE, providerOrigin: 'https://checkout.stripe.com' }, invoicing: { stripe: { secretKey: fake.secretKey, apiUrl: fake.url } } },
    });
    const accountId = await account('Origin Co');
    const err = await strict.createTopUpCheckout({ accountId, amount: '10', actor: 'customer:u' }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('CheckoutProviderError');
    expect(await db('checkout_sessions').where({ account_id: accountId }).pluck('status')).toEqual(['failed']);
  });

  it('the customer console lets forms lead to that origin (CSP form-action), the staff console to its own origin only', async () => {
    const cfg = testConfig({ STRIPE_SECRET_KEY: fake.secretKey, STRIPE_API_URL: fake.url });
    const app = createAdminApp({ db, billing: cfg.billing, config: cfg, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
    const { url, close } = await serve(app);
    try {
      const formAction = async (path: string) => /form-action ([^;]+)/.exec((await fetch(url + path, { redirect: 'manual' })).headers.get('content-security-policy') ?? '')?.[1];
      expect(await formAction('/app/login')).toBe(`'self' ${new URL(fake.url).origin}`);
      expect(await formAction('/console/login')).toBe("'self'");
    } finally {
      await close();
    }
  });
});
