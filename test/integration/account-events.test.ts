import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { accountsService } from '../../src/accounts/accounts.service';
import { recordTopUp } from '../../src/ledger/ledger.service';
import { settleAccountUsage, settleShardUsage } from '../../src/metering/metering.service';
import { shardOf } from '../../src/metering/shards.rules';
import { recordBalanceMovements } from '../../src/notifications/events.data';
import { accountEventsService } from '../../src/notifications/events.service';
import { invoiceAccountForPeriod, invoicingService } from '../../src/invoicing/invoicing.service';
import { runCli, runCliJson } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * Account events (docs/notifications.md) decided where the money moves:
 * settlement (per account and a shard pass), top-ups and invoicing, each
 * once per crossing however often the same change is decided, with an email
 * queued in the outbox for the billing address.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock, config });
const mailbox = fs.mkdtempSync(path.join(os.tmpdir(), 'account-events-'));
const alerts = accountEventsService({ db, mail: { ...config.mail, smtpUrl: undefined, mailboxDir: mailbox } });
const overdraftAllowance = new Money(0);
let provider: string;
let model: string;
let priceId: string;

beforeAll(async () => {
  provider = `evt-${randomUUID().slice(0, 6)}`;
  await ops.addProvider({ name: provider, baseUrl: 'http://127.0.0.1:9/v1' });
  model = `evt-model-${randomUUID().slice(0, 6)}`;
  priceId = (await ops.addModel({ name: model, provider, upstreamModel: 'u', inputPerMtok: '0.1', outputPerMtok: '0.4', effectiveFrom: '2020-01-01T00:00:00Z' })).price!.id;
  await db.raw(`INSERT INTO tax_rates (country, rate, effective_from) VALUES ('DE', 0.19, '2020-01-01') ON CONFLICT DO NOTHING`);
});
afterAll(async () => {
  await db.destroy();
  fs.rmSync(mailbox, { recursive: true, force: true });
});

async function account(opts: { email?: string | null; thresholds?: string[] } = {}) {
  const email = opts.email === undefined ? `billing-${randomUUID().slice(0, 6)}@example.test` : opts.email;
  const a = await ops.createAccount({ name: `Events Co ${randomUUID().slice(0, 6)}`, plan: 'prepaid', country: 'DE', ...(email ? { billingEmail: email } : {}) });
  if (opts.thresholds) await alerts.setAlertSettings({ accountId: a.id, settings: { lowBalanceThresholds: opts.thresholds } });
  const key = await ops.createKey({ accountId: a.id, name: 'events' });
  return { id: a.id as string, email, keyId: key.id as string };
}

const topUp = (accountId: string, amount: string, paymentId = randomUUID()) =>
  recordTopUp(db, { paymentId, provider: 'manual', accountId, amount, currency: 'USD', kind: 'topup', actor: 'test' }, { overdraftAllowance });
const usage = (accountId: string, keyId: string, costs: string[]) =>
  insertUsageEvents(db, costs.map((cost) => ({ account_id: accountId, api_key_id: keyId, occurred_at: new Date(), model, provider, price_id: priceId, cost })));
const events = (accountId: string) => db('account_events').where({ account_id: accountId }).orderBy('occurred_at').select('id', 'type', 'data', 'dedupe_key');
const typesOf = async (accountId: string) => (await events(accountId)).map((e) => e.type as string).sort();
const outbox = (eventIds: string[]) => db('notification_outbox').whereIn('idempotency_key', eventIds.map((id) => `account-event:${id}`)).select('idempotency_key', 'recipient', 'subject', 'body', 'sent_at');

describe('account events', () => {
  it('a top-up fires topup.succeeded and balance.recovered, once, with an email to the billing address', async () => {
    const a = await account({ thresholds: ['5'] });
    const paymentId = randomUUID();
    await topUp(a.id, '10', paymentId);
    expect(await typesOf(a.id)).toEqual(['balance.recovered', 'topup.succeeded']);
    // The same payment delivered again credits nothing and fires nothing.
    await topUp(a.id, '10', paymentId);
    expect(await typesOf(a.id)).toEqual(['balance.recovered', 'topup.succeeded']);

    const rows = await events(a.id);
    const topup = rows.find((e) => e.type === 'topup.succeeded')!;
    expect(topup.data).toMatchObject({ amount: '10', balance: '10', currency: 'USD', paymentReference: `manual:${paymentId}`, links: { credits: '/v1/credits' } });
    expect(rows.find((e) => e.type === 'balance.recovered')!.data).toMatchObject({ threshold: '5', balance: '10' });
    // Ids, amounts and links only: the billing address is the envelope's, never the event's.
    expect(JSON.stringify(rows.map((e) => e.data))).not.toContain(a.email!);

    const mails = await outbox(rows.map((e) => e.id));
    expect(mails).toHaveLength(2);
    expect(mails.every((m) => m.recipient === a.email && m.sent_at === null)).toBe(true);
    expect(mails.map((m) => m.subject).sort()).toEqual(['MixRoute: balance recovered', 'MixRoute: top-up of 10 USD credited']);
  });

  it('settlement that crosses a threshold fires balance.low once, however often the crossing is decided', async () => {
    const a = await account({ thresholds: ['5'] });
    await topUp(a.id, '10');
    await usage(a.id, a.keyId, ['2', '4']);
    const r = await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    expect(r.events).toBe(2);
    expect(await typesOf(a.id)).toEqual(['balance.low', 'balance.recovered', 'topup.succeeded']);
    const low = (await events(a.id)).find((e) => e.type === 'balance.low')!;
    expect(low.data).toMatchObject({ threshold: '5', balance: '4' });

    // A retried settlement finds nothing left; the same ledger entry decided again inserts nothing.
    expect((await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance })).events).toBe(0);
    const entry = await db('ledger_entries').where({ account_id: a.id, kind: 'usage' }).first();
    const again = await db.transaction((trx) =>
      recordBalanceMovements(trx, [{ accountId: a.id, entryKey: entry.idempotency_key, entryId: entry.id, amount: new Money(entry.amount), balanceAfter: new Money(entry.balance_after) }]),
    );
    expect(again).toEqual([]);
    expect((await events(a.id)).filter((e) => e.type === 'balance.low')).toHaveLength(1);

    // Spending more below the threshold is no new crossing; reaching zero is.
    await usage(a.id, a.keyId, ['1']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    expect(await typesOf(a.id)).toEqual(['balance.low', 'balance.recovered', 'topup.succeeded']);
    await usage(a.id, a.keyId, ['3']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance: new Money(1) });
    expect(await typesOf(a.id)).toEqual(['balance.depleted', 'balance.low', 'balance.recovered', 'topup.succeeded']);

    // A top-up back over the threshold recovers; spending below it again is a second crossing.
    await topUp(a.id, '10');
    await usage(a.id, a.keyId, ['6']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    const all = await typesOf(a.id);
    expect(all.filter((t) => t === 'balance.low')).toHaveLength(2);
    expect(all.filter((t) => t === 'balance.recovered')).toHaveLength(2);
  });

  it('a shard pass decides the same events for every account it settles, key limits included', async () => {
    const [a, b] = [await account({ thresholds: ['5'] }), await account({ thresholds: ['5'] })];
    await topUp(a.id, '10');
    await topUp(b.id, '10');
    await usage(a.id, a.keyId, ['6']);
    await usage(b.id, b.keyId, ['1']);
    await db('api_keys').where({ id: b.keyId }).update({ spend_limit: '1', limit_window: 'monthly' });
    const shards = config.billing.settlementShards;
    for (const acc of [a, b]) await settleShardUsage(db, { shard: shardOf(acc.id, shards), shards, accounts: [acc.id], limit: 100 });
    expect(await typesOf(a.id)).toEqual(['balance.low', 'balance.recovered', 'topup.succeeded']);
    expect(await typesOf(b.id)).toEqual(['balance.recovered', 'key.limit_reached', 'key.limit_threshold', 'topup.succeeded']);
    expect((await events(a.id)).find((e) => e.type === 'balance.low')!.data).toMatchObject({ balance: '4' });
  });

  it('a key crossing a percent of its limit fires once per window, and key.limit_reached at 100 %', async () => {
    const a = await account();
    await topUp(a.id, '100');
    await db('api_keys').where({ id: a.keyId }).update({ spend_limit: '10', limit_window: 'daily' });
    await usage(a.id, a.keyId, ['5']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    expect((await typesOf(a.id)).filter((t) => t.startsWith('key.'))).toEqual([]);

    await usage(a.id, a.keyId, ['3.5']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    await usage(a.id, a.keyId, ['0.5']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    const keyEvents = (await events(a.id)).filter((e) => e.type.startsWith('key.'));
    expect(keyEvents.map((e) => e.type)).toEqual(['key.limit_threshold']);
    expect(keyEvents[0]!.data).toMatchObject({ keyId: a.keyId, percent: 80, limit: '10', spent: '8.5', window: 'daily', links: { key: `/v1/keys/${a.keyId}` } });

    await usage(a.id, a.keyId, ['2']);
    await settleAccountUsage(db, a.id, { limit: 100, overdraftAllowance });
    expect((await typesOf(a.id)).filter((t) => t.startsWith('key.'))).toEqual(['key.limit_reached', 'key.limit_threshold']);
  });

  it('no email when alerts are off or there is no billing address; the event is recorded all the same', async () => {
    const off = await account({ thresholds: ['5'] });
    await alerts.setAlertSettings({ accountId: off.id, settings: { emailAlerts: false } });
    const none = await account({ email: null });
    await topUp(off.id, '10');
    await topUp(none.id, '10');
    const ids = [...(await events(off.id)), ...(await events(none.id))].map((e) => e.id);
    expect(ids).toHaveLength(4);
    expect(await outbox(ids)).toEqual([]);
  });

  it('queued event emails are sent once and their bodies cleared', async () => {
    const a = await account();
    await topUp(a.id, '3');
    const ids = (await events(a.id)).map((e) => e.id);
    expect(await outbox(ids)).toHaveLength(2);
    while ((await alerts.sendQueuedEmails()) > 0);
    const sent = await outbox(ids);
    expect(sent.every((m) => m.sent_at !== null && m.body === '')).toBe(true);
    const files = fs.readdirSync(mailbox).map((f) => JSON.parse(fs.readFileSync(path.join(mailbox, f), 'utf8')) as { to: string; subject: string; key: string });
    const mine = files.filter((f) => ids.some((id) => f.key === `account-event:${id}`));
    expect(mine).toHaveLength(2);
    expect(mine.every((f) => f.to === a.email)).toBe(true);
  });

  it('finalizing an invoice fires invoice.finalized; voiding it fires credit_note.created', async () => {
    const a = await account();
    await topUp(a.id, '10');
    await usage(a.id, a.keyId, ['1']);
    const period = new Date().toISOString().slice(0, 7);
    const inv = await invoiceAccountForPeriod(db, { accountId: a.id, period, dryRun: false, now: new Date() }, { invoicing: config.invoicing, overdraftAllowance });
    expect(inv.status).toBe('invoiced');
    const invoiceId = (inv as { invoiceId: string }).invoiceId;
    // Asked again, the invoice exists: no second event.
    await invoiceAccountForPeriod(db, { accountId: a.id, period, dryRun: false, now: new Date() }, { invoicing: config.invoicing, overdraftAllowance });
    const finalized = (await events(a.id)).filter((e) => e.type === 'invoice.finalized');
    expect(finalized).toHaveLength(1);
    expect(finalized[0]!.data).toMatchObject({ invoiceId, period, currency: 'USD' });

    const invoicing = invoicingService({ db, clock: systemClock, config });
    const voided = await invoicing.invoices.void({ id: invoiceId, reason: 'test void' }, 'staff:test');
    const notes = (await events(a.id)).filter((e) => e.type === 'credit_note.created');
    expect(notes).toHaveLength(1);
    expect(notes[0]!.data).toMatchObject({ creditNoteId: voided.creditNoteId, invoiceId, number: voided.creditNoteNumber });
    expect(JSON.stringify(notes[0]!.data)).not.toContain('test void');
  });

  it('staff settings: bounded thresholds, clear errors, and the account\'s events listed newest first', async () => {
    const a = await account();
    await expect(alerts.setAlertSettings({ accountId: a.id, settings: { lowBalanceThresholds: ['1', '2', '3', '4', '5', '6'] } })).rejects.toThrow(/at most 5/);
    await expect(alerts.setAlertSettings({ accountId: a.id, settings: { lowBalanceThresholds: ['-1'] } })).rejects.toThrow(/more than 0/);
    await expect(alerts.setAlertSettings({ accountId: a.id, settings: {} })).rejects.toThrow(/lowBalanceThresholds, emailAlerts or both/);
    await expect(alerts.getAlertSettings({ accountId: randomUUID() })).rejects.toThrow(/does not exist/);
    expect(await alerts.getAlertSettings({ accountId: a.id })).toMatchObject({ lowBalanceThresholds: [], emailAlerts: true, updatedAt: null });
    expect(await alerts.setAlertSettings({ accountId: a.id, settings: { lowBalanceThresholds: ['10', '2.5', '10.00'] } })).toMatchObject({ lowBalanceThresholds: ['10', '2.5'], emailAlerts: true });
    expect(await alerts.setAlertSettings({ accountId: a.id, settings: { emailAlerts: false } })).toMatchObject({ lowBalanceThresholds: ['10', '2.5'], emailAlerts: false });

    await topUp(a.id, '20');
    await topUp(a.id, '1');
    const page1 = await alerts.listEvents({ accountId: a.id, query: { limit: '2' } });
    expect(page1.items).toHaveLength(2);
    const page2 = await alerts.listEvents({ accountId: a.id, query: { limit: '2', before: page1.nextPage!.before } });
    expect([...page1.items, ...page2.items].map((e) => e.type).sort()).toEqual(['balance.recovered', 'topup.succeeded', 'topup.succeeded']);
    expect(new Set([...page1.items, ...page2.items].map((e) => e.id)).size).toBe(3);
    const only = await alerts.listEvents({ accountId: a.id, query: { type: 'balance.recovered' } });
    expect(only.items.map((e) => e.type)).toEqual(['balance.recovered']);
    await expect(alerts.listEvents({ accountId: a.id, query: { before: 'nope' } })).rejects.toThrow(/nextPage.before/);
  });

  it('the CLI shows and sets the settings and lists events; bad input is a one-line error', async () => {
    const a = await account();
    const env = testEnv(config);
    expect(await runCliJson(['accounts', 'alerts', a.id, '--threshold', '50', '10', '--email-alerts', 'off'], env)).toMatchObject({ lowBalanceThresholds: ['50', '10'], emailAlerts: false });
    expect(await runCliJson(['accounts', 'alerts', a.id], env)).toMatchObject({ lowBalanceThresholds: ['50', '10'], emailAlerts: false });
    expect(await runCliJson(['accounts', 'alerts', a.id, '--no-thresholds'], env)).toMatchObject({ lowBalanceThresholds: [], emailAlerts: false });
    await topUp(a.id, '5');
    const listed = await runCliJson(['accounts', 'events', a.id, '--type', 'topup.succeeded'], env);
    expect(listed.items.map((e: { type: string }) => e.type)).toEqual(['topup.succeeded']);
    const bad = await runCli(['accounts', 'alerts', a.id, '--threshold', '-5'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('more than 0');
  });
});
