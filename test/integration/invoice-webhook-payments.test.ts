import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { suspendAccount } from '../../src/invoicing/suspension.data';
import { Money } from '../../src/shared/money.rules';
import { staffService } from '../../src/staff/staff.service';
import { workflowIds } from '../../src/temporal/conventions';
import { eventually } from '../helpers/eventually';
import { paymentWebhookStack } from '../helpers/paymentWebhook';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';

/**
 * Payments by webhook (docs/collections.md, "Payments by webhook"): a signed
 * `payment_intent.succeeded` whose metadata names an invoice pays it, through
 * the admin server's real webhook route, the real database and a real
 * Temporal (the invoice's dunning workflow is told). Delivered ten times,
 * applied once; the invoice.paid event and its email once; the rest of an
 * overpayment credited to the ledger once; a suspended account reinstated.
 */
const SECRET = 'whsec_test_invoice_webhook_payments';
const webhook = paymentWebhookStack(SECRET);
const { config, db } = webhook;
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
let connection: Connection;
let client: Client;
let token: string;

beforeAll(async () => {
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
  connection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection, namespace: config.temporal.namespace });
  token = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
});
afterAll(async () => {
  await connection.close();
});

type Inv = Awaited<ReturnType<typeof postpaidInvoice>>;
const uid = () => randomUUID().replace(/-/g, '');
const currencyOf = async (invoiceId: string) => ((await db('invoices').where({ id: invoiceId }).first()).currency as string).toLowerCase();
const DAY = '2026-11-20';
const CREATED = Math.floor(Date.parse(`${DAY}T10:00:00Z`) / 1000);

/** A payment_intent.succeeded as Stripe sends it for an intent we created for the invoice. */
async function paymentOf(inv: Inv, cents: number, paymentId = `pi_${uid()}`) {
  return JSON.stringify({
    id: `evt_${uid()}`,
    object: 'event',
    type: 'payment_intent.succeeded',
    created: CREATED,
    data: {
      object: {
        id: paymentId,
        object: 'payment_intent',
        amount: cents,
        amount_received: cents,
        currency: await currencyOf(inv.invoiceId),
        customer: null,
        status: 'succeeded',
        metadata: { invoice_id: inv.invoiceId, account_id: inv.accountId, invoice_number: inv.number },
      },
    },
  });
}
async function deliver(payload: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${webhook.url}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': webhook.sign(payload) }, body: payload });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
async function admin(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(webhook.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
const applications = (invoiceId: string) => db('invoice_payment_applications').where({ invoice_id: invoiceId }).orderBy('created_at');
const events = (accountId: string, type: string) => db('account_events').where({ account_id: accountId, type });
const paymentCredits = (accountId: string) => db('ledger_entries').where({ account_id: accountId, reference_type: 'invoice_payment' }).orderBy('id');
const status = async (invoiceId: string) => (await admin('GET', `/billing/invoices/${invoiceId}/payments`)).body;

/** A dunning workflow for the invoice on a queue no worker polls: it stays running, and its history shows the signals it got. */
async function dunningWorkflow(inv: Inv) {
  const handle = await client.workflow.start('dunning', {
    workflowId: workflowIds.dunning(inv.invoiceId),
    taskQueue: `no-worker-${randomUUID()}`,
    args: [{ invoiceId: inv.invoiceId, accountId: inv.accountId, anchorMs: Date.parse(`${inv.dueDate}T00:00:00Z`), steps: [], pauseRecheckMs: 60_000 }],
  });
  return {
    /** The causes of the dunningSettled signals it received. */
    async settledSignals(): Promise<string[]> {
      const history = await handle.fetchHistory();
      return (history.events ?? []).flatMap((e) => {
        const a = e.workflowExecutionSignaledEventAttributes;
        if (a?.signalName !== 'dunningSettled') return [];
        return [(defaultPayloadConverter.fromPayload(a.input!.payloads![0]!) as { cause: string }).cause];
      });
    },
    terminate: () => handle.terminate('test done'),
  };
}

describe('payments by webhook that name an invoice', () => {
  it('delivered ten times, pays the invoice once: one application, invoice.paid and its email once, dunning told', async () => {
    const inv = await postpaidInvoice();
    const dunning = await dunningWorkflow(inv);
    const paymentId = `pi_${uid()}`;
    const payload = await paymentOf(inv, 11900, paymentId);

    const answers = [...(await Promise.all(Array.from({ length: 5 }, () => deliver(payload))))];
    for (let i = 0; i < 5; i++) answers.push(await deliver(payload));
    for (const a of answers) expect(a.status).toBe(200);
    expect(answers.filter((a) => a.body.status === 'applied')).toHaveLength(1);
    expect(answers.filter((a) => a.body.status === 'already_applied')).toHaveLength(9);
    expect(answers[9]!.body).toMatchObject({ received: true, paymentId, invoiceId: inv.invoiceId, amount: '119.00', creditedToAccount: '0.00', paymentStatus: 'paid' });

    const rows = await applications(inv.invoiceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ source: 'stripe', reference: paymentId, paid_on: DAY, recorded_by: 'webhook:stripe', account_id: inv.accountId, credit_entry_id: null });
    expect(new Money(rows[0].amount).eq(119) && new Money(rows[0].received_amount).eq(119)).toBe(true);
    expect((await status(inv.invoiceId)).payment).toMatchObject({ status: 'paid', amountPaid: '119.00', outstanding: '0.00' });

    const paid = await events(inv.accountId, 'invoice.paid');
    expect(paid).toHaveLength(1);
    expect(paid[0].data).toMatchObject({ invoiceId: inv.invoiceId, number: inv.number, amountPaid: '119.00' });
    expect(await db('notification_outbox').where({ idempotency_key: `account-event:${paid[0].id}` })).toHaveLength(1);
    // Not a top-up: nothing credited to the ledger.
    expect(await paymentCredits(inv.accountId)).toHaveLength(0);
    expect(await db('ledger_entries').where({ account_id: inv.accountId, kind: 'topup' })).toHaveLength(0);

    await eventually(async () => expect(await dunning.settledSignals()).toEqual(['payment']), { timeoutMs: 10_000, message: 'the dunning workflow to be told once' });
    await dunning.terminate();
  });

  it('a partial payment, then the rest: partially paid, then paid with invoice.paid once', async () => {
    const inv = await postpaidInvoice();
    expect((await deliver(await paymentOf(inv, 5000))).body).toMatchObject({ status: 'applied', amount: '50.00', paymentStatus: 'partially_paid' });
    expect(await events(inv.accountId, 'invoice.paid')).toHaveLength(0);
    expect((await status(inv.invoiceId)).payment).toMatchObject({ status: 'partially_paid', amountPaid: '50.00', outstanding: '69.00' });

    const rest = await paymentOf(inv, 6900);
    expect((await deliver(rest)).body).toMatchObject({ status: 'applied', amount: '69.00', paymentStatus: 'paid' });
    expect((await deliver(rest)).body).toMatchObject({ status: 'already_applied' });
    expect(await applications(inv.invoiceId)).toHaveLength(2);
    expect(await events(inv.accountId, 'invoice.paid')).toHaveLength(1);
    expect((await status(inv.invoiceId)).payment).toMatchObject({ status: 'paid', amountPaid: '119.00' });
  });

  it('an overpayment credits the rest to the ledger once; a payment for a paid or void invoice is credited whole, once', async () => {
    const inv = await postpaidInvoice();
    const paymentId = `pi_${uid()}`;
    const over = await paymentOf(inv, 15000, paymentId);
    const answers = await Promise.all([deliver(over), deliver(over), deliver(over)]);
    expect(answers.filter((a) => a.body.status === 'applied')).toHaveLength(1);
    expect(answers.find((a) => a.body.status === 'applied')!.body).toMatchObject({ amount: '119.00', creditedToAccount: '31.00', creditEntryId: expect.any(Number) });
    let credits = await paymentCredits(inv.accountId);
    expect(credits).toHaveLength(1);
    expect(credits[0]).toMatchObject({ kind: 'adjustment', idempotency_key: `invoice-overpayment:stripe:${paymentId}`, reference_id: `stripe:${paymentId}`, actor: 'webhook:stripe' });
    expect(new Money(credits[0].amount).eq(31)).toBe(true);
    expect((await applications(inv.invoiceId))[0].credit_entry_id).toBe(credits[0].id);

    // Paid already: another payment for it is credited to the account whole, once.
    const late = await paymentOf(inv, 2000);
    expect((await deliver(late)).body).toMatchObject({ status: 'credited_to_account', reason: 'invoice_paid', creditedToAccount: '20.00' });
    expect((await deliver(late)).body).toMatchObject({ status: 'already_credited', reason: 'invoice_paid' });
    credits = await paymentCredits(inv.accountId);
    expect(credits.map((c) => new Money(c.amount).toString())).toEqual(['31', '20']);
    expect(await applications(inv.invoiceId)).toHaveLength(1);
    expect(await events(inv.accountId, 'invoice.paid')).toHaveLength(1);

    // Void: the same.
    const voided = await postpaidInvoice();
    expect((await admin('POST', `/billing/invoices/${voided.invoiceId}/void`, { reason: 'issued in error' })).status).toBe(201);
    const afterVoid = await paymentOf(voided, 11900);
    expect((await deliver(afterVoid)).body).toMatchObject({ status: 'credited_to_account', reason: 'invoice_void', creditedToAccount: '119.00' });
    expect((await deliver(afterVoid)).body).toMatchObject({ status: 'already_credited' });
    expect(await paymentCredits(voided.accountId)).toHaveLength(1);
    expect(await applications(voided.invoiceId)).toHaveLength(0);
  });

  it('paying the invoice a suspended account was suspended for reinstates it, once', async () => {
    const inv = await postpaidInvoice();
    await db.transaction((trx) => suspendAccount(trx, { accountId: inv.accountId, invoiceId: inv.invoiceId, reason: 'unpaid invoice', actor: 'system:dunning' }));
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('suspended');

    // Part of it: still suspended.
    expect((await deliver(await paymentOf(inv, 1900))).body).toMatchObject({ status: 'applied' });
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('suspended');

    const rest = await paymentOf(inv, 10000);
    for (let i = 0; i < 3; i++) expect((await deliver(rest)).status).toBe(200);
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('active');
    const reinstated = await events(inv.accountId, 'account.reinstated');
    expect(reinstated).toHaveLength(1);
    expect(await db('notification_outbox').where({ idempotency_key: `account-event:${reinstated[0].id}` })).toHaveLength(1);
    expect(await db('account_suspensions').where({ account_id: inv.accountId })).toMatchObject([{ reinstated_by: 'system:payment', invoice_id: inv.invoiceId }]);
    expect(await events(inv.accountId, 'invoice.paid')).toHaveLength(1);
  });

  it('a bank transfer that pays, a write-off and a void through the admin API tell the dunning workflow; the transfer records invoice.paid and reinstates', async () => {
    const paidByTransfer = await postpaidInvoice();
    const writtenOff = await postpaidInvoice();
    const voided = await postpaidInvoice();
    const workflows = await Promise.all([paidByTransfer, writtenOff, voided].map(dunningWorkflow));
    await db.transaction((trx) => suspendAccount(trx, { accountId: voided.accountId, invoiceId: voided.invoiceId, reason: 'unpaid invoice', actor: 'system:dunning' }));

    const today = new Date().toISOString().slice(0, 10);
    const transfer = await admin('POST', `/billing/invoices/${paidByTransfer.invoiceId}/payments`, { amount: '119.00', paidOn: today, reference: `TR-${uid().slice(0, 10)}` });
    expect(transfer.status).toBe(201);
    expect(transfer.body.invoice.payment.status).toBe('paid');
    expect(await events(paidByTransfer.accountId, 'invoice.paid')).toHaveLength(1);
    expect((await admin('POST', `/billing/invoices/${writtenOff.invoiceId}/write-off`, { reason: 'customer insolvent' })).status).toBe(201);
    expect((await admin('POST', `/billing/invoices/${voided.invoiceId}/void`, { reason: 'issued in error' })).status).toBe(201);
    // Voided with a credit note, nothing is unpaid: the account it was suspended for is active again.
    expect((await db('accounts').where({ id: voided.accountId }).first()).status).toBe('active');

    await eventually(
      async () => expect(await Promise.all(workflows.map((w) => w.settledSignals()))).toEqual([['payment'], ['write_off'], ['void']]),
      { timeoutMs: 10_000, message: 'each dunning workflow to be told once' },
    );
    await Promise.all(workflows.map((w) => w.terminate()));
  });
});
