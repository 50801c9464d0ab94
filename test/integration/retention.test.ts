import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { accountsService } from '../../src/accounts/accounts.service';
import { productionSchedules } from '../../src/temporal/schedules';
import { DEFAULT_POLICIES, type Policy } from '../../src/retention/retention.rules';
import { runCli, runCliJson } from '../helpers/cli';
import { testConfig, testEnv } from '../helpers/env';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { withTestWorker } from '../helpers/worker';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * Metadata expiry against a database of its own (it drops usage_events
 * partitions, which would pull other files' data from under them): it
 * expires exactly what the policies allow, never what is held or unbilled,
 * and a second run expires nothing.
 */
const { historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORIES = fileURLToPath(new URL('../replay/histories/', import.meta.url));

const config = testConfig({ DATABASE_URL: ownDatabaseUrl('retention'), RETENTION_BATCH_SIZE: '100' });
const env = testEnv(config, { RETENTION_BATCH_SIZE: '100' });
let db: Db;
let connection: Connection;
let client: Client;

const DAY = 86_400_000;
const now = Date.now();
const dayOf = (t: number) => new Date(t).toISOString().slice(0, 10);
const monthOf = (t: number) => new Date(t).toISOString().slice(0, 7);
// Old and billed: its month has been reconciled.
const oldDay = now - 100 * DAY;
// Old too, but in the month before, which nobody reconciled.
const unreconciledDay = Date.parse(`${monthOf(oldDay)}-01T12:00:00Z`) - 15 * DAY;
const tenDaysAgo = now - 10 * DAY;
const yesterday = now - 1 * DAY;

let accounts: { billed: string; held: string; unbilled: string; lateUnbilled: string };
let seq = 0;

async function event(accountId: string, at: number, extra: Record<string, unknown> = {}) {
  const id = `req-ret-${++seq}`;
  await insertUsageEvents(db, [
    {
      request_id: id,
      occurred_at: new Date(at),
      finished_at: new Date(at + 500),
      settled_at: new Date(at + 1_000),
      account_id: accountId,
      input_tokens: 100,
      output_tokens: 50,
      latency_ms: 20,
      source_ip: '198.51.100.77',
      user_agent: 'curl/8.5',
      ...extra,
    },
  ]);
  return id;
}

beforeAll(async () => {
  ({ db, connection, client } = await openOwnStack(config));

  const ops = accountsService({ db, clock: systemClock });
  accounts = {
    billed: (await ops.createAccount({ name: 'Billed' })).id,
    held: (await ops.createAccount({ name: 'Held' })).id,
    unbilled: (await ops.createAccount({ name: 'Unbilled' })).id,
    lateUnbilled: (await ops.createAccount({ name: 'Late unbilled' })).id,
  };
  for (const a of Object.values(accounts)) {
    await event(a, oldDay);
    await event(a, oldDay + 60_000);
    await event(a, unreconciledDay);
  }
  // Not settled yet, however old: billing still needs it.
  await event(accounts.billed, oldDay + 120_000, { settled_at: null });
  // Unbilled: cost in usage_hourly that no invoice took yet, from before the events.
  await db('usage_hourly').insert({
    account_id: accounts.unbilled, hour: new Date(Math.floor((oldDay - 3_600_000) / 3_600_000) * 3_600_000), model: 'm', provider: 'p', price_id: '',
    requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 1, reasoning_tokens: 0, cost: '0.5',
  });
  // Billed through its invoiced boundary: cost from before the events, not marked, but invoiced.
  const hourBefore = (t: number, hours: number) => new Date((Math.floor(t / 3_600_000) - hours) * 3_600_000);
  await db('usage_hourly').insert({
    account_id: accounts.billed, hour: hourBefore(oldDay, 2), model: 'm', provider: 'p', price_id: '',
    requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 1, reasoning_tokens: 0, cost: '0.5',
  });
  await db('usage_invoiced_boundaries').insert({ account_id: accounts.billed, invoiced_until: hourBefore(oldDay, 1) });
  // Unbilled although behind its boundary: a late row no invoice took yet.
  await db('usage_hourly').insert({
    account_id: accounts.lateUnbilled, hour: hourBefore(oldDay, 2), model: 'm', provider: 'p', price_id: '', late: true,
    requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 1, reasoning_tokens: 0, cost: '0.5',
  });
  await db('usage_invoiced_boundaries').insert({ account_id: accounts.lateUnbilled, invoiced_until: new Date(oldDay + DAY) });
  await db('reconciliation_reports').insert({
    id: randomUUID(), workflow_id: 'test', scope: 'period', label: monthOf(oldDay), window_start: new Date(), window_end: new Date(),
    trigger: 'staff', requested_by: 'test', status: 'finished', verdict: 'clean',
  });
  await event(accounts.billed, tenDaysAgo, { source_ip: '2001:db8:abcd:12:1:2:3:4' });
  await event(accounts.held, tenDaysAgo);
  await event(accounts.billed, yesterday);

  const user = await ops.createUser({ accountId: accounts.billed, name: 'Ann', email: 'ann@example.com' });
  const heldUser = await ops.createUser({ accountId: accounts.held, name: 'Hal', email: 'hal@example.com' });
  await db('security_events').insert([
    { kind: 'rate_limited', reason: 'old', account_id: accounts.billed, occurred_at: new Date(now - 400 * DAY), source: 'gateway' },
    { kind: 'rate_limited', reason: 'old-held', account_id: accounts.held, occurred_at: new Date(now - 400 * DAY), source: 'gateway' },
    { kind: 'rate_limited', reason: 'recent', account_id: accounts.billed, occurred_at: new Date(now - 10 * DAY), source: 'gateway' },
  ]);
  await db('login_records').insert([
    { user_id: user.id, at: new Date(now - 200 * DAY), success: true },
    { user_id: heldUser.id, at: new Date(now - 200 * DAY), success: true },
    { user_id: user.id, at: new Date(now - 1 * DAY), success: true },
  ]);
  // Customer console sessions go with the sign-in records, counted from their expiry or sign-out.
  const session = (id: string, accountId: string, userId: string, created: number, expires: number, revoked: number | null) => ({
    id_hash: id, user_id: userId, account_id: accountId, csrf_token: `csrf-${id}`, created_at: new Date(now - created * DAY),
    expires_at: new Date(now - expires * DAY), revoked_at: revoked === null ? null : new Date(now - revoked * DAY), user_agent: 'Firefox', ip_prefix: '198.51.100.0/24',
  });
  await db('customer_sessions').insert([
    session('sess-expired-old', accounts.billed, user.id, 201, 200, null),
    session('sess-revoked-old', accounts.billed, user.id, 200, 100, 190),
    session('sess-expired-held', accounts.held, heldUser.id, 201, 200, null),
    session('sess-expired-recent', accounts.billed, user.id, 2, 1, null),
    session('sess-revoked-recent', accounts.billed, user.id, 11, -1, 10),
  ]);
  await db('notification_outbox').insert({ idempotency_key: 'old-mail', recipient: 'ann@example.com', subject: 's', body: 'b', created_at: new Date(now - 100 * DAY), sent_at: new Date(now - 100 * DAY) });
  const [closed] = await db('dsr_requests')
    .insert({
      type: 'deletion', channel: 'staff', subject_email: null, subject_email_hash: 'x', jurisdiction: 'gdpr', received_at: new Date(now - 800 * DAY), due_date: dayOf(now - 770 * DAY),
      due_at: new Date(now - 769 * DAY), extension_notice_by: new Date(now - 769 * DAY), status: 'completed', closed_at: new Date(now - 780 * DAY), created_by: 'test',
    })
    .returning('id');
  await db('dsr_events').insert({ request_id: closed.id, actor: 'test', action: 'closed', idempotency_key: 'closed' });
  await db('erasure_evidence').insert({ request_id: closed.id, category: 'users', rows: 1, action: 'pseudonymized' });
}, 120_000);

afterAll(async () => {
  await closeOwnStack(config, { db, connection });
});

const eventsOf = async (accountId: string, day: number) =>
  Number((await db('usage_events').where({ account_id: accountId }).where('occurred_at', '>=', new Date(Date.parse(`${dayOf(day)}T00:00:00Z`))).where('occurred_at', '<', new Date(Date.parse(`${dayOf(day)}T00:00:00Z`) + DAY)).count('* as n').first())!.n);
const partition = async (day: number) => (await db.raw(`SELECT to_regclass(?) AS t`, [`usage_events_${dayOf(day).replaceAll('-', '')}`])).rows[0].t;

describe('metadata expiry', () => {
  it('expires exactly what the policies allow, keeps what is held or unbilled, and expires nothing the second time', async () => {
    const hold = await runCliJson(['legal-holds', 'add', '--account', accounts.held, '--reason', 'court order 4 O 123/26'], env);
    expect(hold).toMatchObject({ accountId: accounts.held, createdBy: expect.stringMatching(/^cli:/) });

    await withTestWorker(config, db, async () => {
      const run = await runCliJson(['retention', 'run'], env);
      if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(path.join(HISTORIES, 'metadataExpiry.json'), historyToJSON(await client.workflow.getHandle(run.workflowId, run.id).fetchHistory()));
      const by = (c: string) => run.categories.find((x: { category: string }) => x.category === c);

      // The billed day's partition is gone; what had to stay lives on in the default partition.
      expect(await partition(oldDay)).toBeNull();
      expect(await eventsOf(accounts.billed, oldDay)).toBe(1); // the unsettled one
      expect(await eventsOf(accounts.held, oldDay)).toBe(2);
      expect(await eventsOf(accounts.unbilled, oldDay)).toBe(2);
      expect(await eventsOf(accounts.lateUnbilled, oldDay)).toBe(2);
      // Kept: the held account's two; unbilled: the two unbilled accounts' two each, the unsettled one, and the unreconciled month's four.
      expect(by('usage_events')).toMatchObject({ expiredPartitions: 1, expiredRows: 2, keptHold: 2, keptUnbilled: 2 + 2 + 1 + 4 });
      // The month nobody reconciled: all of it waits.
      expect(await partition(unreconciledDay)).not.toBeNull();
      for (const a of Object.values(accounts)) expect(await eventsOf(a, unreconciledDay)).toBe(1);

      // Minimised after a week: addresses truncated, User-Agent gone, tokens and cost kept; held and recent ones untouched.
      const minimised = await db('usage_events').where({ account_id: accounts.billed }).where('occurred_at', '>=', new Date(tenDaysAgo - 1000)).where('occurred_at', '<', new Date(tenDaysAgo + 1000)).first();
      expect(minimised).toMatchObject({ source_ip: '2001:db8:abcd::/48', user_agent: null, input_tokens: 100, cost: '0.010000000000' });
      expect(await db('usage_events').where({ account_id: accounts.held }).where('occurred_at', '>=', new Date(tenDaysAgo - 1000)).where('occurred_at', '<', new Date(tenDaysAgo + 1000)).first()).toMatchObject({ source_ip: '198.51.100.77', user_agent: 'curl/8.5' });
      expect(await db('usage_events').where('occurred_at', '>=', new Date(yesterday - 1000)).where('occurred_at', '<', new Date(yesterday + 1000)).first()).toMatchObject({ source_ip: '198.51.100.77', user_agent: 'curl/8.5' });
      const truncatedV4 = await db('usage_events_retained').where({ account_id: accounts.unbilled }).first('source_ip', 'user_agent');
      expect(truncatedV4).toEqual({ source_ip: '198.51.100.0/24', user_agent: null });

      expect((await db('security_events').orderBy('reason').pluck('reason'))).toEqual(['old-held', 'recent']);
      expect(await db('login_records').count('* as n').first()).toEqual({ n: 2 });
      expect(await db('customer_sessions').orderBy('id_hash').pluck('id_hash')).toEqual(['sess-expired-held', 'sess-expired-recent', 'sess-revoked-recent']);
      expect(await db('notification_outbox').where({ idempotency_key: 'old-mail' })).toEqual([]);
      expect(await db('dsr_requests').where({ created_by: 'test' })).toEqual([]);
      expect(await db('erasure_evidence').where({ category: 'users' }).count('* as n').first()).toEqual({ n: 1 });

      // Recorded per category, and listed.
      const listed = await runCliJson(['retention', 'runs'], env);
      expect(listed[0]).toMatchObject({ id: run.id, status: 'finished' });
      expect(listed[0].categories.map((c: { category: string }) => c.category)).toEqual(expect.arrayContaining(['usage_events', 'usage_events.network', 'security_events', 'login_records', 'invoices']));

      // Again: nothing new to expire.
      const second = await runCliJson(['retention', 'run'], env);
      expect(second.id).not.toBe(run.id);
      for (const c of second.categories) expect([c.category, c.expiredRows, c.expiredPartitions]).toEqual([c.category, 0, 0]);

      // The hold ends: its rows go at the next run (the unbilled ones still wait).
      const released = await runCliJson(['legal-holds', 'release', hold.id, '--reason', 'case closed'], env);
      expect(released.releasedAt).not.toBeNull();
      const third = await runCliJson(['retention', 'run'], env);
      expect(await eventsOf(accounts.held, oldDay)).toBe(0);
      expect(await eventsOf(accounts.unbilled, oldDay)).toBe(2);
      expect(await eventsOf(accounts.lateUnbilled, oldDay)).toBe(2);
      expect(third.categories.find((c: { category: string }) => c.category === 'usage_events').expiredRows).toBe(2);
      expect((await db('security_events').pluck('reason'))).toEqual(['recent']);
      expect(await db('customer_sessions').orderBy('id_hash').pluck('id_hash')).toEqual(['sess-expired-recent', 'sess-revoked-recent']);
    });
  });

  it('policies are listed with their basis; changing one needs a reason and is recorded', async () => {
    const policies = await runCliJson(['retention', 'policies'], env);
    // The migrations seed what retention.rules.ts documents as the defaults.
    const byCategory = (a: { category: string }, b: { category: string }) => a.category.localeCompare(b.category);
    expect(policies.map(({ category, period, unit, action }: Policy) => ({ category, period, unit, action })).sort(byCategory)).toEqual([...DEFAULT_POLICIES].sort(byCategory));
    expect(policies.find((p: { category: string }) => p.category === 'invoices')).toMatchObject({ period: 8, unit: 'years_after_year_end', legalBasis: expect.stringContaining('§ 257') });
    const bad = await runCli(['retention', 'set', '--category', 'login_records', '--period', '0', '--reason', 'no'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('period must be at least 1');
    expect(await runCliJson(['retention', 'set', '--category', 'login_records', '--period', '120', '--reason', 'shorter after DPIA'], env)).toMatchObject({ period: 120, previous: 180 });
    expect(await db('retention_policy_changes').where({ category: 'login_records' }).first()).toMatchObject({ old_period: 180, new_period: 120, reason: 'shorter after DPIA', changed_by: expect.stringMatching(/^cli:/) });
  });

  it('deletes billing records past their statutory period, carries the ledger forward, and finishes what deletion requests had to keep', async () => {
    const ops = accountsService({ db, clock: systemClock });
    const gone = (await ops.createAccount({ name: 'Gone Customer' })).id; // erased subject's closed account
    const ongoing = (await ops.createAccount({ name: 'Ongoing' })).id;
    const held = (await ops.createAccount({ name: 'Held Billing' })).id;
    await db('accounts').where({ id: gone }).update({ status: 'closed', vat_id: 'DE123456789' });
    const at = (iso: string) => new Date(iso);
    let n = 0;
    const invoice = async (accountId: string, issued: string, extra: Record<string, unknown> = {}) => {
      const [row] = await db('invoices')
        .insert({
          kind: 'invoice', account_id: accountId, period: `${issued.slice(0, 7)}-${++n}`, status: 'finalized', series: 'MR-OLD', number: `MR-OLD-${randomUUID()}`, plan: 'prepaid', currency: 'USD',
          subtotal: '1', tax_rate: '0', tax_amount: '0', total: '1', credits_applied: '1', amount_due: '0', tax_kind: 'reverse_charge', customer: JSON.stringify({ name: 'Gone Customer', vatId: 'DE123456789' }),
          issuer: '{}', issued_at: at(issued), created_at: at(issued), ...extra,
        })
        .returning('id');
      await db('invoice_lines').insert({ invoice_id: row.id, position: 1, description: 'm input', model: 'm', kind: 'input', quantity: 1, unit_price_per_mtok: '1', amount: '1', usage_period: issued.slice(0, 7) });
      return row.id as string;
    };
    const creditNote = async (accountId: string, voids: string, issued: string) => invoice(accountId, issued, { kind: 'credit_note', voids_invoice_id: voids, total: '-1' });
    const entry = async (accountId: string, kind: string, amount: string, created: string, extra: Record<string, unknown> = {}) =>
      (await db('ledger_entries').insert({ account_id: accountId, kind, contra: kind === 'usage' ? 'revenue' : kind === 'topup' ? 'cash' : 'adjustments', amount, idempotency_key: randomUUID(), reference_type: 'test', reference_id: 'x', actor: 'test', balance_after: '0', created_at: at(created), ...extra }).returning('id'))[0].id as string;

    // The erased subject's closed account: everything from 2014-2015.
    const inv2014 = await invoice(gone, '2014-03-01T00:00:00Z');
    await db('usage_hourly').insert({ account_id: gone, hour: at('2014-02-01T10:00:00Z'), model: 'm', provider: 'p', price_id: 'old', requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0, cost: '1', invoiced_by: inv2014 });
    const inv2015 = await invoice(gone, '2015-03-01T00:00:00Z', { usage_from: at('2014-03-01T00:00:00Z'), usage_until: at('2015-03-01T00:00:00Z') });
    // 2015's usage as the boundary leaves it: its normal hours unmarked, a late row of 2014 marked.
    const hourly = (accountId: string, hour: string, extra: Record<string, unknown> = {}) =>
      db('usage_hourly').insert({ account_id: accountId, hour: at(hour), model: 'm', provider: 'p', price_id: 'old', requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0, cost: '1', ...extra });
    await hourly(gone, '2015-02-01T10:00:00Z');
    await hourly(gone, '2014-02-01T10:00:00Z', { late: true, invoiced_by: inv2015 });
    await db('usage_invoiced_boundaries').insert({ account_id: gone, invoiced_until: at('2015-03-01T00:00:00Z'), invoice_id: inv2015 });
    await creditNote(gone, inv2015, '2015-04-01T00:00:00Z');
    await db('payments').insert({ provider: 'stripe', provider_payment_id: `pi_old_${randomUUID()}`, account_id: gone, amount: '100', currency: 'USD', status: 'succeeded', received_at: at('2014-01-05T00:00:00Z') });
    await entry(gone, 'topup', '100', '2014-01-05T00:00:00Z');
    await entry(gone, 'usage', '-30', '2014-06-01T00:00:00Z');
    await db('account_balances').insert({ account_id: gone, balance: '70' }).onConflict('account_id').merge();
    const [request] = await db('dsr_requests')
      .insert({
        type: 'deletion', channel: 'staff', subject_email: null, subject_email_hash: 'y', jurisdiction: 'gdpr', received_at: new Date(now - 20 * DAY), due_date: dayOf(now + 10 * DAY),
        due_at: new Date(now + 10 * DAY), extension_notice_by: new Date(now + 10 * DAY), status: 'completed', closed_at: new Date(now - 10 * DAY), created_by: 'test-kept',
      })
      .returning('id');
    const keptAt = at('2016-06-01T00:00:00Z');
    await db('dsr_kept_records').insert(
      [['invoices', 3], ['payments', 1], ['ledger_entries', 2], ['tax_data', 1]].map(([category, rows]) => ({ request_id: request.id, account_id: gone, category, rows, kept_at: keptAt })),
    );
    // The erased subject's recent usage: two events billed (settled, month reconciled), one not settled yet.
    const erased = await ops.createUser({ accountId: gone, name: 'Olga', email: 'olga@example.com' });
    await db('users').where({ id: erased.id }).update({ name: 'erased', email: `erased-${erased.id}@erased.invalid`, erased_at: new Date() });
    await db('reconciliation_reports').insert({
      id: randomUUID(), workflow_id: 'test-erased', scope: 'period', label: monthOf(tenDaysAgo), window_start: new Date(), window_end: new Date(),
      trigger: 'staff', requested_by: 'test', status: 'finished', verdict: 'clean',
    });
    await event(gone, tenDaysAgo + 1_000, { user_id: erased.id });
    await event(gone, tenDaysAgo + 2_000, { user_id: erased.id });
    const unsettled = await event(gone, tenDaysAgo + 3_000, { user_id: erased.id, settled_at: null });
    await db('dsr_kept_records').insert({ request_id: request.id, account_id: gone, category: 'usage_metadata', subject_user_id: erased.id, rows: 3, kept_at: new Date() });

    // An account still in business: a 2016 invoice whose credit note is recent stays; a reversed 2014 entry stays with its recent reversal.
    const inv2016 = await invoice(ongoing, '2016-05-01T00:00:00Z', { usage_from: at('2016-04-01T00:00:00Z'), usage_until: at('2016-05-01T00:00:00Z') });
    await hourly(ongoing, '2016-04-10T10:00:00Z');
    await db('usage_invoiced_boundaries').insert({ account_id: ongoing, invoiced_until: at('2016-05-01T00:00:00Z'), invoice_id: inv2016 });
    await creditNote(ongoing, inv2016, new Date(now - 30 * DAY).toISOString());
    await entry(ongoing, 'topup', '10', '2014-01-05T00:00:00Z');
    const adj = await entry(ongoing, 'adjustment', '7', '2014-02-01T00:00:00Z');
    await entry(ongoing, 'reversal', '-7', new Date(now - 30 * DAY).toISOString(), { reverses_entry_id: adj });
    await db('account_balances').insert({ account_id: ongoing, balance: '10' }).onConflict('account_id').merge();

    // Under a legal hold: nothing goes.
    await invoice(held, '2014-03-01T00:00:00Z');
    await entry(held, 'topup', '5', '2014-01-05T00:00:00Z');
    await db('account_balances').insert({ account_id: held, balance: '5' }).onConflict('account_id').merge();
    const hold = await runCliJson(['legal-holds', 'add', '--account', held, '--reason', 'tax audit 2014'], env);

    const sumsAgree = async (accountId: string) => {
      const b = await db('account_balances').where({ account_id: accountId }).first('balance');
      const s = await db('ledger_entries').where({ account_id: accountId }).sum('amount as s').first();
      return Number(b!.balance) === Number(s!.s);
    };

    await withTestWorker(config, db, async () => {
      const run = await runCliJson(['retention', 'run'], env);
      const by = (c: string) => run.categories.find((x: { category: string }) => x.category === c);
      // Invoices (8 years from the year's end): 2014, 2015 and its credit note; not 2016's (its note is recent), not the held account's.
      expect(by('invoices')).toMatchObject({ expiredRows: 3, keptHold: 1, keptOther: 1 });
      expect(await db('invoices').where({ account_id: gone })).toEqual([]);
      expect(await db('invoice_lines').whereIn('invoice_id', [inv2014, inv2015])).toEqual([]);
      expect(await db('usage_hourly').where({ account_id: gone })).toEqual([]);
      expect(await db('invoices').where({ account_id: ongoing }).count('* as n').first()).toEqual({ n: 2 });
      expect(await db('usage_hourly').where({ account_id: ongoing }).count('* as n').first()).toEqual({ n: 1 });
      expect(by('payments')).toMatchObject({ expiredRows: 1, keptHold: 0 });
      // Ledger (10 years): 2014's entries go, their sum is carried forward; the reversed one stays with its reversal.
      expect(by('ledger_entries')).toMatchObject({ expiredRows: 3, keptHold: 1 });
      expect(await db('ledger_entries').where({ account_id: gone }).select('kind', 'amount')).toEqual([{ kind: 'carried_forward', amount: '70.000000000000' }]);
      expect((await db('ledger_entries').where({ account_id: ongoing }).orderBy('id').pluck('kind'))).toEqual(['adjustment', 'reversal', 'carried_forward']);
      for (const a of [gone, ongoing, held]) expect(await sumsAgree(a)).toBe(true);
      expect(await db('ledger_entries').where({ account_id: held }).count('* as n').first()).toEqual({ n: 1 });

      // The deletion request's kept records are finished: evidence with counts, the trail says so, the closed account's VAT id is gone.
      expect(await db('dsr_kept_records').where({ request_id: request.id }).whereNull('erased_at').pluck('category')).toEqual(['usage_metadata']);
      expect(await db('erasure_evidence').where({ request_id: request.id, action: 'erased_after_retention' }).orderBy('category').select('category', 'rows')).toEqual([
        { category: 'invoices', rows: 3 }, { category: 'ledger_entries', rows: 2 }, { category: 'payments', rows: 1 }, { category: 'tax_data', rows: 1 },
      ]);
      const trail = await db('dsr_events').where({ request_id: request.id, action: 'kept_records_erased' }).orderBy('id');
      expect(trail.map((e) => [e.actor, e.detail.category, e.detail.rows])).toEqual(expect.arrayContaining([['system:retention', 'invoices', 3], ['system:retention', 'payments', 1], ['system:retention', 'ledger_entries', 2], ['system:retention', 'tax_data', 1]]));
      expect(JSON.stringify(trail)).not.toContain('DE123456789');
      expect((await db('accounts').where({ id: gone }).first('vat_id'))!.vat_id).toBeNull();
      // The erased subject's billed usage is gone at once (not after 90 days); the unsettled event waits, and so does its kept record.
      expect(by('usage_events.erased_subjects')).toMatchObject({ expiredRows: 2, keptUnbilled: 1 });
      expect(await db('usage_events').where({ user_id: erased.id }).pluck('request_id')).toEqual([unsettled]);
      expect(await db('dsr_kept_records').where({ request_id: request.id, category: 'usage_metadata' }).first()).toMatchObject({ erased_at: null });

      // Again: nothing new (a lone carry-forward is not folded again), and the trail is not repeated.
      const second = await runCliJson(['retention', 'run'], env);
      for (const c of second.categories) expect([c.category, c.expiredRows]).toEqual([c.category, 0]);
      expect(await db('ledger_entries').where({ account_id: gone }).count('* as n').first()).toEqual({ n: 1 });
      expect(await db('dsr_events').where({ request_id: request.id, action: 'kept_records_erased' }).count('* as n').first()).toEqual({ n: 4 });

      // Once settled it goes too, and the trail says the usage metadata is erased.
      await db('usage_events').where({ request_id: unsettled }).update({ settled_at: new Date() });
      const third = await runCliJson(['retention', 'run'], env);
      expect(third.categories.find((c: { category: string }) => c.category === 'usage_events.erased_subjects')).toMatchObject({ expiredRows: 1, keptUnbilled: 0 });
      expect(await db('usage_events').where({ user_id: erased.id })).toEqual([]);
      expect(await db('dsr_events').where({ request_id: request.id, action: 'kept_records_erased' }).orderBy('id').pluck('detail')).toContainEqual({ category: 'usage_metadata', accountId: gone, rows: 3 });
    });
    await runCliJson(['legal-holds', 'release', hold.id, '--reason', 'audit closed'], env);
  });

  it('is scheduled daily, skipping overlaps', () => {
    const daily = productionSchedules(config).find((s) => s.scheduleId === 'metadata-expiry-daily');
    expect(daily).toMatchObject({ workflowType: 'metadataExpiry', at: { hour: 3, minute: 30 } });
  });
});
