import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import type { Db } from '../../src/db/knex';
import { migrateLatest } from '../../src/db/migrate';
import { staffService } from '../../src/staff/staff.service';
import { workflowIds } from '../../src/temporal/conventions';
import { ensureWebhookDispatcher } from '../../src/webhooks/dispatcher';
import { webhooksService } from '../../src/webhooks/webhooks.service';
import type { DunningResult, InvoiceAccountResult } from '../../workflows/messages';
import { mailbox } from '../helpers/dsrStack';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { eventually } from '../helpers/eventually';
import { startFakeStripe, type FakeStripe } from '../helpers/fakeStripe';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, type Customer } from '../helpers/gateway';
import { ownDatabaseUrl } from '../helpers/ownDatabase';
import { serve } from '../helpers/servers';
import { insertUsageEvents } from '../helpers/usageEvents';
import { testActivities, workflowBundle } from '../helpers/worker';

/**
 * Collections end to end (issue 23's "done"): a postpaid customer's invoice is
 * finalized by the `invoiceAccount` workflow, which starts its
 * `dunning:{invoiceId}` and asks the payment provider (a local stand-in for
 * Stripe's API) for a PaymentIntent. The dunning schedule runs through the
 * production path (DUNNING_SCHEDULE, relative to the due date) with offsets
 * set so that its steps fall seconds from now: the notice, two reminders
 * (the invoice is overdue in the aging report on those days), then the
 * suspension, after which the gateway refuses the customer's model calls
 * with `account_suspended`. The customer pays the PaymentIntent; Stripe's
 * signed webhook pays the invoice, reinstates the account, and its calls are
 * served again. Every collection email reaches the mailbox once and every
 * event reaches the customer's webhook endpoint once.
 */

const PERIOD = '2026-10';
const TERMS_DAYS = 7;
const DAY_MS = 86_400_000;
const STRIPE_KEY = 'sk_test_collections_e2e_0001';
const PAYMENT_SECRET = 'whsec_collections_e2e';
const BILLING_EMAIL = 'ap@collections-e2e.example';
const COLLECTION_EVENTS = ['invoice.payment_due', 'invoice.overdue', 'account.suspended', 'invoice.paid', 'account.reinstated'] as const;

/** The due date of an invoice issued today, and its anchor (00:00 UTC). */
const today = new Date().toISOString().slice(0, 10);
const dueDate = new Date(Date.parse(`${today}T00:00:00Z`) + TERMS_DAYS * DAY_MS).toISOString().slice(0, 10);
const anchorMs = Date.parse(`${dueDate}T00:00:00Z`);
/** Steps at these many seconds from the start of the file, written as offsets (seconds) from the due date. */
function scheduleAt(startMs: number, secondsFromStart: number[]): string {
  const kinds = ['notice', 'reminder', 'reminder', 'suspension'];
  return secondsFromStart.map((s, i) => `${kinds[i]}@-${Math.round((anchorMs - startMs) / 1000) - s}s`).join(',');
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

let config: Config;
let db: Db;
let stripe: FakeStripe;
let upstream: FakeUpstream;
let customer: Customer;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let admin: { url: string; close: () => Promise<void> };
let connection: NativeConnection;
let clientConnection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let billingToken: string;
let endpointSecret: string;
let receiverServer: http.Server;
let receiverUrl: string;
const received: Received[] = [];

beforeAll(async () => {
  stripe = await startFakeStripe({ secretKey: STRIPE_KEY });
  receiverServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiverServer.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiverServer.address() as AddressInfo).port}/hooks/mixroute`;

  const settings = {
    DATABASE_URL: ownDatabaseUrl('collections_e2e'),
    DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-collections-')),
    INVOICE_PAYMENT_TERMS_DAYS: String(TERMS_DAYS),
    STRIPE_SECRET_KEY: STRIPE_KEY,
    STRIPE_API_URL: stripe.url,
    PAYMENT_WEBHOOK_SECRET: PAYMENT_SECRET,
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_DISPATCH_POLL_MS: '100',
  };
  config = testConfig(settings);
  db = testDb(config);
  await ensureDatabase(config.databaseUrl);
  await migrateLatest(db);
  await db.raw(`INSERT INTO tax_rates (country, rate, effective_from) VALUES ('DE', 0.19, '2020-01-01') ON CONFLICT DO NOTHING`);

  upstream = await startFakeUpstream();
  customer = await createCustomer(db, upstream.url, { plan: 'postpaid', creditLimit: '1000', credit: '0' });
  await db('accounts').where({ id: customer.accountId }).update({ country: 'DE', billing_email: BILLING_EMAIL });
  const price = await db('prices').join('models', 'models.id', 'prices.model_id').where('models.public_name', customer.model).first('prices.id');
  // October's usage: 40 M input tokens at 2.50/Mtok = 100.00, + 19 % VAT = 119.00.
  await insertUsageEvents(db, [
    { account_id: customer.accountId, api_key_id: customer.keyId, occurred_at: '2026-10-15T10:00:00Z', model: customer.model, provider: customer.provider, price_id: price.id, input_tokens: 40_000_000, output_tokens: 0, cost: '100' },
  ]);
  endpointSecret = (
    await webhooksService({ db, clock: systemClock, config }).registerEndpoint({ accountId: customer.accountId, url: receiverUrl, events: [...COLLECTION_EVENTS] })
  ).secret;

  // The schedule, set last (the slow set-up is done): notice 8 s from now, reminders at 11 s and 14 s, suspension at 17 s.
  const bundle = await workflowBundle();
  config = testConfig({ ...settings, TEMPORAL_TASK_QUEUE: config.temporal.taskQueue, DUNNING_SCHEDULE: scheduleAt(Date.now(), [8, 11, 14, 17]) });
  connection = await NativeConnection.connect({ address: config.temporal.address! });
  worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: bundle,
    activities: testActivities(config, db),
  });
  running = worker.run();
  clientConnection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  await ensureWebhookDispatcher(client, config.temporal.taskQueue, { roundMs: 2_000 });

  gw = await startTestGateway({ DATABASE_URL: config.databaseUrl }, config);
  admin = await serve(
    createAdminApp({ db, billing: config.billing, config, temporal: { client, taskQueue: config.temporal.taskQueue }, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 }),
  );
  billingToken = (await staffService({ db }).createStaffToken({ role: 'billing', name: 'collections e2e' })).token;
});

afterAll(async () => {
  await client?.workflow.getHandle(workflowIds.webhookDispatcher(config.temporal.taskQueue)).terminate('test done').catch(() => undefined);
  worker?.shutdown();
  await running;
  await connection?.close();
  await clientConnection?.close();
  await gw?.stop();
  await admin?.close();
  await upstream?.close();
  await stripe?.close();
  await new Promise((resolve) => receiverServer?.close(resolve));
  await db?.destroy();
  if (config) await dropDatabase(config.databaseUrl);
});

async function staff(pathname: string): Promise<any> {
  const res = await fetch(admin.url + pathname, { headers: { authorization: `Bearer ${billingToken}` } });
  expect(res.status).toBe(200);
  return res.json();
}

async function modelCall(): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'hello' }] }),
  });
  return { status: res.status, body: await res.json() };
}

/** The events the customer's endpoint received, verified with its secret as a customer would. */
function deliveries(): { id: string; type: string; data: Record<string, unknown> }[] {
  const wh = new Webhook(endpointSecret);
  return received.map((r) => {
    const msg = wh.verify(r.body, {
      'webhook-id': String(r.headers['webhook-id']),
      'webhook-timestamp': String(r.headers['webhook-timestamp']),
      'webhook-signature': String(r.headers['webhook-signature']),
    }) as { type: string; data: Record<string, unknown> };
    return { id: String(r.headers['webhook-id']), type: msg.type, data: msg.data };
  });
}

const collectionMails = () => mailbox(config).filter((m) => m.to === BILLING_EMAIL);

describe('an unpaid postpaid invoice, from finalization to reinstatement', () => {
  let invoiceId: string;
  let intentId: string;

  it('finalizing the invoice starts its dunning and asks the payment provider for a PaymentIntent naming it', async () => {
    const result = (await client.workflow.execute('invoiceAccount', {
      workflowId: workflowIds.invoice(customer.accountId, PERIOD),
      taskQueue: config.temporal.taskQueue,
      args: [{ accountId: customer.accountId, period: PERIOD, dryRun: false }],
    })) as InvoiceAccountResult;
    expect(result).toMatchObject({ status: 'invoiced', total: '119.00' });
    invoiceId = (result as { invoiceId: string }).invoiceId;

    const status = await staff(`/billing/invoices/${invoiceId}/payments`);
    expect(status.dueDate).toBe(dueDate);
    expect(status.payment).toMatchObject({ status: 'open', outstanding: '119.00', amountPaid: '0.00' });

    const request = await eventually(async () => {
      const row = await db('invoice_payment_requests').where({ invoice_id: invoiceId }).first();
      expect(row).toBeDefined();
      return row;
    }, { timeoutMs: 20_000, message: 'the payment request' });
    intentId = request.provider_id;
    const intent = stripe.intents.get(intentId)!;
    expect(intent).toMatchObject({ amount: 11_900, currency: 'usd', metadata: { invoice_id: invoiceId, account_id: customer.accountId } });
    expect(stripe.calls.filter((c) => c.method === 'POST' && c.path === '/v1/payment_intents')).toHaveLength(1);
    expect((await client.workflow.getHandle(workflowIds.dunning(invoiceId)).describe()).status.name).toBe('RUNNING');
    // Served while in good standing.
    expect((await modelCall()).status).toBe(200);
  });

  it('sends the notice and the reminders, then suspends the account: the gateway refuses it with account_suspended', async () => {
    const result = (await client.workflow.getHandle(workflowIds.dunning(invoiceId)).result()) as DunningResult;
    expect(result).toEqual({
      ended: 'completed',
      steps: [
        { name: expect.stringMatching(/^notice-/), outcome: 'sent' },
        { name: expect.stringMatching(/^reminder-/), outcome: 'sent' },
        { name: expect.stringMatching(/^reminder-/), outcome: 'sent' },
        { name: expect.stringMatching(/^suspension-/), outcome: 'suspended' },
      ],
    });
    expect((await db('accounts').where({ id: customer.accountId }).first()).status).toBe('suspended');

    // On the reminders' days (after the due date) the invoice is overdue in the aging report.
    const eightDaysLate = new Date(anchorMs + 8 * DAY_MS).toISOString().slice(0, 10);
    const aging = await staff(`/billing/receivables/aging?asOf=${eightDaysLate}&accountId=${customer.accountId}`);
    expect(aging.accounts).toEqual([expect.objectContaining({ accountId: customer.accountId, days1to30: '119.00', current: '0.00', total: '119.00' })]);

    const dunning = await staff(`/billing/accounts/${customer.accountId}/dunning`);
    expect(dunning.suspension).toMatchObject({ invoiceId });

    // Within the key cache's TTL (at most 5 s), with room for a loaded machine.
    const refused = await eventually(async () => {
      const r = await modelCall();
      expect(r.status).toBe(403);
      return r;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    expect(refused.body.error).toMatchObject({ code: 'account_suspended' });
    expect(refused.body.error.message).toMatch(/billing/i);
  });

  it('the customer pays the PaymentIntent: the signed webhook pays the invoice and reinstates the account within seconds', async () => {
    const event = stripe.succeededEvent(intentId);
    const payload = JSON.stringify(event);
    const signature = new Stripe('sk_test_unused').webhooks.generateTestHeaderString({ payload, secret: PAYMENT_SECRET });
    for (let i = 0; i < 3; i++) {
      // Stripe delivers at least once: the same event three times pays once.
      const res = await fetch(`${admin.url}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, body: payload });
      expect(res.status).toBe(200);
    }
    const status = await staff(`/billing/invoices/${invoiceId}/payments`);
    expect(status.payment).toMatchObject({ status: 'paid', outstanding: '0.00', amountPaid: '119.00' });
    expect(status.applications).toEqual([expect.objectContaining({ source: 'stripe', reference: intentId, amount: '119.00' })]);
    expect((await db('accounts').where({ id: customer.accountId }).first()).status).toBe('active');
    // The usage credit comes back with the payment (net of tax, once): October's 100.00 is paid for, so the
    // balance is back to what this month's calls cost (a fraction of a cent), not −100.
    const credits = await db('ledger_entries').where({ account_id: customer.accountId, reference_type: 'invoice_usage_credit' });
    expect(credits.map((e) => Number(e.amount))).toEqual([100]);
    const { rows } = await db.raw(`SELECT COALESCE(sum(amount), 0)::numeric AS balance FROM ledger_entries WHERE account_id = ?`, [customer.accountId]);
    expect(Number(rows[0].balance)).toBeGreaterThan(-0.01);
    const aging = await staff(`/billing/receivables/aging?accountId=${customer.accountId}`);
    expect(aging.accounts).toEqual([]);

    const served = await eventually(async () => {
      const r = await modelCall();
      expect(r.status).toBe(200);
      return r;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    expect(served.body.choices).toBeDefined();
  });

  it('sent every collection email and webhook exactly once', async () => {
    const expected = { 'invoice.payment_due': 1, 'invoice.overdue': 2, 'account.suspended': 1, 'invoice.paid': 1, 'account.reinstated': 1 };
    const count = (types: string[]) => Object.fromEntries(COLLECTION_EVENTS.map((t) => [t, types.filter((x) => x === t).length]));

    const events = await db('account_events').where({ account_id: customer.accountId }).whereIn('type', [...COLLECTION_EVENTS]);
    expect(count(events.map((e) => e.type))).toEqual(expected);

    // Webhooks: each event delivered once (one webhook-id per event, no repeats).
    const got = await eventually(() => {
      const d = deliveries();
      expect(d.length).toBeGreaterThanOrEqual(6);
      return d;
    }, { timeoutMs: 30_000 });
    expect(count(got.map((d) => d.type))).toEqual(expected);
    expect(new Set(got.map((d) => d.id)).size).toBe(got.length);
    expect(got.every((d) => d.data.accountId === customer.accountId)).toBe(true);

    // Emails: one per event, to the billing address (alert emails are on by default; these go regardless).
    const mails = await eventually(() => {
      const m = collectionMails();
      expect(m.length).toBeGreaterThanOrEqual(7);
      return m;
    }, { timeoutMs: 30_000 });
    const subjects = mails.map((m) => m.subject);
    expect(subjects.filter((s) => /is due on/.test(s))).toHaveLength(1);
    expect(subjects.filter((s) => /is overdue/.test(s))).toHaveLength(2);
    expect(subjects.filter((s) => /suspended/.test(s))).toHaveLength(1);
    expect(subjects.filter((s) => /paid$/.test(s))).toHaveLength(1);
    expect(subjects.filter((s) => /reinstated/.test(s))).toHaveLength(1);
    expect(subjects.filter((s) => /issued/.test(s))).toHaveLength(1); // invoice.finalized
    // Nothing is left to send, and what was queued is what arrived: no second copy is waiting.
    await eventually(async () => expect(await db('notification_outbox').where({ recipient: BILLING_EMAIL }).whereNull('sent_at').first()).toBeUndefined(), { timeoutMs: 30_000 });
    expect(await db('notification_outbox').where({ recipient: BILLING_EMAIL })).toHaveLength(mails.length);
    await eventually(async () => {
      const queued = await db('webhook_deliveries')
        .join('webhook_endpoints', 'webhook_endpoints.id', 'webhook_deliveries.endpoint_id')
        .where('webhook_endpoints.account_id', customer.accountId)
        .select('webhook_deliveries.status');
      expect(queued.map((d) => d.status)).toEqual(got.map(() => 'succeeded'));
    }, { timeoutMs: 30_000 });
    expect(deliveries()).toHaveLength(got.length);
    expect(collectionMails()).toHaveLength(mails.length);
  });
});
