import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { invoicingService } from '../../src/invoicing/invoicing.service';
import { systemClock } from '../../src/clock';
import { paymentWebhookStack } from '../helpers/paymentWebhook';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';

/**
 * Attacks on payments by webhook that name an invoice (docs/collections.md,
 * "Payments by webhook"). The attacker controls a payment's metadata (it is
 * set by whoever creates the PaymentIntent with the provider account's key,
 * or a leaked key) and tries to pay someone else's invoice, pay in another
 * currency, inject through the invoice id, overflow the amount, or skip the
 * signature. Each is refused with problem JSON and a security event, and
 * nothing is applied or credited.
 */
const SECRET = 'whsec_test_invoice_webhook_attacks';
const webhook = paymentWebhookStack(SECRET);
const { config, db } = webhook;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
beforeAll(async () => {
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
});

const uid = () => randomUUID().replace(/-/g, '');
const currencyOf = async (invoiceId: string) => ((await db('invoices').where({ id: invoiceId }).first()).currency as string).toLowerCase();
const payload = (intent: Record<string, unknown>) =>
  JSON.stringify({ id: `evt_${uid()}`, object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000), data: { object: { object: 'payment_intent', status: 'succeeded', customer: null, ...intent } } });

async function deliver(body: string, signature: string | null = webhook.sign(body)) {
  const res = await fetch(`${webhook.url}/webhooks/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'stripe-signature': signature }) },
    body,
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', requestId: res.headers.get('x-request-id'), body: (await res.json()) as Record<string, unknown> };
}

/** Refused: 400 problem JSON, one security event with the reason, no stack or SQL in the answer. */
async function expectRefused(answer: Awaited<ReturnType<typeof deliver>>, reason: string) {
  expect(answer.status, reason).toBe(400);
  expect(answer.type).toContain('application/problem+json');
  expect(JSON.stringify(answer.body)).not.toMatch(/at \w+ \(|SELECT|invoice_payment_applications/);
  const events = await db('security_events').where({ request_id: answer.requestId });
  expect(events, reason).toMatchObject([{ kind: 'webhook_rejected', reason, source: 'admin' }]);
}

const nothingApplied = async (invoiceId: string, accountId: string) => {
  expect(await db('invoice_payment_applications').where({ invoice_id: invoiceId })).toHaveLength(0);
  expect(await db('ledger_entries').where({ account_id: accountId }).where((q) => q.where({ reference_type: 'invoice_payment' }).orWhere({ actor: 'webhook:stripe' }))).toHaveLength(0);
  expect(await db('account_events').where({ account_id: accountId, type: 'invoice.paid' })).toHaveLength(0);
};

describe('payments by webhook that name an invoice, attacked', () => {
  it("refuses a payment naming another account's invoice, in another currency, or from another account's customer", async () => {
    const victim = await postpaidInvoice('Victim Co');
    const attacker = await postpaidInvoice('Attacker Co');
    const currency = await currencyOf(victim.invoiceId);
    const base = { amount: 100, amount_received: 100, currency };

    // The attacker's own account in account_id, the victim's invoice in invoice_id (and the other way round).
    await expectRefused(await deliver(payload({ id: `pi_${uid()}`, ...base, metadata: { invoice_id: victim.invoiceId, account_id: attacker.accountId } })), 'invoice_account_mismatch');
    await expectRefused(await deliver(payload({ id: `pi_${uid()}`, ...base, metadata: { invoice_id: attacker.invoiceId, account_id: victim.accountId } })), 'invoice_account_mismatch');
    // A currency worth less than the invoice's, paid "in full".
    const cheap = currency === 'jpy' ? 'usd' : 'jpy';
    await expectRefused(await deliver(payload({ id: `pi_${uid()}`, amount: 11900, amount_received: 11900, currency: cheap, metadata: { invoice_id: victim.invoiceId, account_id: victim.accountId } })), 'invoice_currency_mismatch');
    // An invoice that does not exist.
    await expectRefused(await deliver(payload({ id: `pi_${uid()}`, ...base, metadata: { invoice_id: randomUUID(), account_id: victim.accountId } })), 'invoice_unknown_invoice');
    // Paid by another account's customer while the victim's account has its own.
    await db('accounts').where({ id: victim.accountId }).update({ stripe_customer_id: `cus_${uid()}` });
    await expectRefused(await deliver(payload({ id: `pi_${uid()}`, ...base, customer: `cus_${uid()}`, metadata: { invoice_id: victim.invoiceId, account_id: victim.accountId } })), 'invoice_customer_mismatch');

    await nothingApplied(victim.invoiceId, victim.accountId);
    await nothingApplied(attacker.invoiceId, attacker.accountId);
  });

  it('refuses a credit note named as the invoice', async () => {
    const inv = await postpaidInvoice();
    const invoicing = invoicingService({ db, clock: systemClock, config });
    const { creditNoteId } = await invoicing.invoices.void({ id: inv.invoiceId, reason: 'issued in error' }, 'test');
    await expectRefused(
      await deliver(payload({ id: `pi_${uid()}`, amount: 11900, amount_received: 11900, currency: await currencyOf(inv.invoiceId), metadata: { invoice_id: creditNoteId, account_id: inv.accountId } })),
      'invoice_not_collectable',
    );
    expect(await db('ledger_entries').where({ account_id: inv.accountId, reference_type: 'invoice_payment' })).toHaveLength(0);
  });

  it('refuses ids that are not UUIDs, amounts that are huge, negative or not integers, and ids outside Stripe\'s alphabet', async () => {
    const inv = await postpaidInvoice();
    const currency = await currencyOf(inv.invoiceId);
    const meta = { invoice_id: inv.invoiceId, account_id: inv.accountId };
    const cases: Record<string, unknown>[] = [
      { id: `pi_${uid()}`, amount_received: 100, currency, metadata: { ...meta, invoice_id: "' OR 1=1 --" } },
      { id: `pi_${uid()}`, amount_received: 100, currency, metadata: { ...meta, invoice_id: '../../billing/invoices' } },
      { id: `pi_${uid()}`, amount_received: 100, currency, metadata: { ...meta, invoice_id: '' } },
      { id: `pi_${uid()}`, amount_received: 100, currency, metadata: { ...meta, account_id: 'not-an-account' } },
      { id: `pi_${uid()}`, amount_received: 100, currency, metadata: { invoice_id: inv.invoiceId } },
      { id: `pi_${uid()}`, amount_received: 1e20, currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: 9_000_000_000_000_000, currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: 100_000_000_100 * 100, currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: -11900, currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: 0, currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: 119.5, currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: '11900', currency, metadata: meta },
      { id: `pi_${uid()}`, amount_received: 11900, currency: 'xxx', metadata: meta },
      { id: `pi_${uid()}`, amount_received: 11900, metadata: meta },
      { id: 'pi_1; DROP TABLE invoices', amount_received: 11900, currency, metadata: meta },
      { amount_received: 11900, currency, metadata: meta },
    ];
    for (const intent of cases) await expectRefused(await deliver(payload(intent)), 'malformed');
    // A created time no date can hold.
    const badTime = JSON.stringify({ ...JSON.parse(payload({ id: `pi_${uid()}`, amount_received: 11900, currency, metadata: meta })), created: 1e15 });
    await expectRefused(await deliver(badTime), 'malformed');
    await nothingApplied(inv.invoiceId, inv.accountId);
  });

  it('refuses an unsigned or badly signed delivery before reading it', async () => {
    const inv = await postpaidInvoice();
    const body = payload({ id: `pi_${uid()}`, amount_received: 11900, currency: await currencyOf(inv.invoiceId), metadata: { invoice_id: inv.invoiceId, account_id: inv.accountId } });
    await expectRefused(await deliver(body, null), 'unsigned');
    await expectRefused(await deliver(body, webhook.sign(body, { secret: 'whsec_attacker' })), 'bad_signature');
    await expectRefused(await deliver(body.replace('11900', '1190000'), webhook.sign(body)), 'bad_signature');
    await nothingApplied(inv.invoiceId, inv.accountId);
    // The genuine delivery still pays it: the refusals above left nothing behind that blocks it.
    expect((await deliver(body)).body).toMatchObject({ status: 'applied', paymentStatus: 'paid' });
  });
});
