import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { billingPeriod } from '../../src/invoicing/invoice.rules';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { invoiceAccountForPeriod } from '../../src/invoicing/invoicing.service';
import type { Db } from '../../src/db/knex';
import { postEntry } from '../../src/ledger/ledger.data';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { reconciliationService } from '../../src/reconciliation/reconciliation.service';
import { accountsService } from '../../src/accounts/accounts.service';
import { ensureSchedules, productionSchedules } from '../../src/temporal/schedules';
import { runCli, runCliJson } from '../helpers/cli';
import { silentLogger, testConfig, testEnv } from '../helpers/env';
import { serve } from '../helpers/servers';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { withTestWorker } from '../helpers/worker';
import { insertUsageEvents } from '../helpers/usageEvents';
import { completeRegisterEntry } from '../helpers/registerEntry';
import { staffService } from '../../src/staff/staff.service';

/**
 * Reconciliation plants each kind of discrepancy directly in the database and
 * checks that each is found, that only the safe ones are repaired, and that a
 * second run finds nothing new and repairs nothing twice.
 *
 * Reconciliation looks at every account (balances) and every payment of its
 * window, so this file has a database of its own: other files' data cannot
 * show up in its reports, and its repairs cannot touch their accounts.
 */
const { historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORIES = fileURLToPath(new URL('../replay/histories/', import.meta.url));

const config = testConfig({ DATABASE_URL: ownDatabaseUrl('reconcile'), RECONCILE_SETTLEMENT_LAG_S: '60', RECONCILE_PAYMENT_GRACE_S: '60' });
let db: Db;
let connection: Connection;
let client: Client;

const PERIOD = '2026-10';
const DAY = '2026-10-14';
const at = (hhmm: string) => new Date(`${DAY}T${hhmm}:00Z`);

interface World {
  provider: string;
  model: string;
  priceId: string;
  accounts: Record<'clean' | 'invoiced' | 'unsettled' | 'missingDeduction' | 'tampered' | 'paid', string>;
  missingDeductionKey: string;
  missingDeductionCost: string;
  unpaidPayment: string;
  gapNumber: string;
  tamperedInvoice: string;
}
let world: World;

beforeAll(async () => {
  ({ db, connection, client } = await openOwnStack(config));
}, 120_000);

afterAll(async () => {
  await closeOwnStack(config, { db, connection });
});

let seq = 0;
async function events(accountId: string, times: string[], opts: { cost?: string; settledKey?: string } = {}) {
  const rows = times.map((t) => ({
    request_id: `req-reconcile-${++seq}`,
    occurred_at: at(t),
    finished_at: new Date(at(t).getTime() + 1_000),
    account_id: accountId,
    model: world0.model,
    provider: world0.provider,
    upstream_model: 'up-model',
    price_id: world0.priceId,
    input_tokens: 1_000,
    cache_read_tokens: 200,
    output_tokens: 500,
    cost: opts.cost ?? '0.25',
    latency_ms: 40,
    ...(opts.settledKey ? { settled_at: at(t), settlement_key: opts.settledKey } : {}),
  }));
  await insertUsageEvents(db, rows);
}

const world0 = { provider: '', model: '', priceId: '' };

async function plant(): Promise<World> {
  const ops = accountsService({ db, clock: systemClock });
  const tag = randomUUID().slice(0, 8);
  world0.provider = `prov-${tag}`;
  world0.model = `model-${tag}`;
  await ops.addProvider({ name: world0.provider, baseUrl: 'http://127.0.0.1:9', apiKeyEnv: 'PROVIDER_UNUSED_API_KEY' });
  // Complete in the register: the register check finds nothing here (reconciliation-register.test.ts plants its own).
  await completeRegisterEntry(db, world0.provider);
  await ops.addModel({ name: world0.model, provider: world0.provider, upstreamModel: 'up-model', inputPerMtok: '2.5', outputPerMtok: '10', cachedInputPerMtok: '1.25', effectiveFrom: '2020-01-01T00:00:00Z' });
  world0.priceId = (await db('prices as p').join('models as m', 'm.id', 'p.model_id').where('m.public_name', world0.model).first('p.id')).id;
  await db('tax_rates').insert({ country: 'DE', rate: '0.19', effective_from: '2020-01-01' });

  const account = async (name: string) => {
    const a = await ops.createAccount({ name, country: 'DE' });
    await postEntry(db, { accountId: a.id, kind: 'grant', contra: 'promotions', amount: new Money('100'), idempotencyKey: `grant:${a.id}`, referenceType: 'test', referenceId: a.id, actor: 'test' }, { overdraftAllowance: new Money(0) });
    return a.id as string;
  };
  const accounts = {
    clean: await account('Clean'),
    invoiced: await account('Invoiced'),
    unsettled: await account('Unsettled'),
    missingDeduction: await account('Missing deduction'),
    tampered: await account('Tampered balance'),
    paid: await account('Paid'),
  };
  const settle = (id: string) => settleAccountUsage(db, id, { limit: 1_000, overdraftAllowance: new Money(0) });

  // Clean books: usage settled the normal way, a top-up with its payment and entry.
  await events(accounts.clean, ['01:00', '01:30', '02:00']);
  await settle(accounts.clean);
  await db('payments').insert({ provider: 'stripe', provider_payment_id: `pi_ok_${tag}`, account_id: accounts.clean, amount: '20', currency: 'USD', status: 'succeeded', received_at: at('03:00') });
  await postEntry(db, { accountId: accounts.clean, kind: 'topup', contra: 'cash', amount: new Money('20'), idempotencyKey: `topup:stripe:pi_ok_${tag}`, referenceType: 'payment', referenceId: `stripe:pi_ok_${tag}`, actor: 'test' }, { overdraftAllowance: new Money(0) });

  // 1. A succeeded payment that never became a top-up entry.
  const unpaidPayment = `pi_lost_${tag}`;
  await db('payments').insert({ provider: 'stripe', provider_payment_id: unpaidPayment, account_id: accounts.paid, amount: '50', currency: 'USD', status: 'succeeded', received_at: at('04:00') });

  // 2. An old event no settlement picked up.
  await events(accounts.unsettled, ['05:00'], { cost: '0.5' });

  // 3. A settled batch (events marked, usage_hourly written) whose deduction is missing.
  const missingDeductionKey = `usage:${accounts.missingDeduction}:planted`;
  await events(accounts.missingDeduction, ['06:00', '06:10'], { cost: '0.75', settledKey: missingDeductionKey });
  await db.raw(
    `INSERT INTO usage_hourly (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
     SELECT account_id, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model, provider, price_id::text, count(*),
            sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost)
       FROM usage_events WHERE settlement_key = ? GROUP BY 1, 2, 3, 4, 5`,
    [missingDeductionKey],
  );

  // 4. A balance changed behind the ledger's back.
  await db.raw(`UPDATE account_balances SET balance = balance + 5 WHERE account_id = ?`, [accounts.tampered]);

  // 5. Invoices of the period: #1, a burned number (#2), #3 whose usage was changed after it was issued.
  await events(accounts.invoiced, ['07:00', '07:05']);
  const invoicing = { invoicing: config.invoicing, overdraftAllowance: new Money(0) };
  const issuedAt = new Date('2026-11-02T09:00:00Z');
  const first = await invoiceAccountForPeriod(db, { accountId: accounts.clean, period: PERIOD, dryRun: false, now: issuedAt }, invoicing);
  expect(first).toMatchObject({ status: 'invoiced', number: 'MR-2026-000001' });
  await db.raw(`UPDATE invoice_sequences SET next_number = next_number + 1 WHERE series = 'MR-2026'`);
  const third = await invoiceAccountForPeriod(db, { accountId: accounts.invoiced, period: PERIOD, dryRun: false, now: issuedAt }, invoicing);
  expect(third).toMatchObject({ status: 'invoiced', number: 'MR-2026-000003' });
  // The rows #3 consumed: the account's hours up to the period's end, invoiced through its boundary (no per-row mark).
  await db.raw(`UPDATE usage_hourly SET output_tokens = output_tokens + 1000 WHERE account_id = ? AND hour < ?`, [accounts.invoiced, billingPeriod(PERIOD).end]);

  return {
    provider: world0.provider,
    model: world0.model,
    priceId: world0.priceId,
    accounts,
    missingDeductionKey,
    missingDeductionCost: '1.5',
    unpaidPayment,
    gapNumber: 'MR-2026-000002',
    tamperedInvoice: 'MR-2026-000003',
  };
}

const ledgerCount = async () => Number((await db('ledger_entries').count('* as n').first())!.n);
const kinds = (r: { discrepancies: { kind: string; resolution: string }[] }) => r.discrepancies.map((d) => `${d.kind}:${d.resolution}`).sort();

describe('reconciliation', () => {
  // First, before anything is planted: the balances check covers every account, whatever the window.
  it('reports a day with nothing wrong as clean, and the daily schedule reconciles the day before', async () => {
    await withTestWorker(config, db, async () => {
      const svc = reconciliationService({ db, clock: systemClock, client, taskQueue: config.temporal.taskQueue });
      const clean = await svc.wait(await svc.start({ day: '2026-10-20' }, 'staff:test'));
      expect(clean).toMatchObject({ verdict: 'clean', found: 0, label: '2026-10-20' });

      // The schedule's action, started by hand: it works out the previous UTC day itself.
      const [daily] = productionSchedules(config);
      const handle = await client.workflow.start(daily!.workflowType, { taskQueue: config.temporal.taskQueue, workflowId: `reconcile:test-daily-${randomUUID()}`, args: daily!.args });
      const result = await handle.result();
      const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
      expect(result).toMatchObject({ scope: 'day', label: yesterday, verdict: 'clean' });
      const report = await db('reconciliation_reports').where({ id: result.reportId }).first();
      expect(report).toMatchObject({ trigger: 'schedule', requested_by: 'system:schedule', label: yesterday });
    });
  });

  it('finds every planted discrepancy, repairs only the safe ones, and a second run finds nothing new and repairs nothing twice', async () => {
    world = await plant();
    const env = testEnv(config);
    // What the provider says: our metering of the day, three input tokens more.
    const ours = await db('usage_events')
      .where({ provider: world.provider })
      .first(db.raw('sum(input_tokens + cache_read_tokens + cache_write_tokens)::int AS input'), db.raw('sum(cache_read_tokens)::int AS cached'), db.raw('sum(output_tokens)::int AS output'));
    const csv = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'statement-')), 'statement.csv');
    fs.writeFileSync(csv, `day,model,input_tokens,cached_tokens,output_tokens,cost\n${DAY},up-model,${ours.input + 3},${ours.cached},${ours.output},1.23\n`);
    const imported = await runCliJson(['provider-statements', 'import', '--provider', world.provider, csv], env);
    expect(imported).toMatchObject({ provider: world.provider, rows: 1, days: [DAY] });

    await withTestWorker(config, db, async () => {
      const svc = reconciliationService({ db, clock: systemClock, client, taskQueue: config.temporal.taskQueue });
      const started = await svc.start({ period: PERIOD }, 'staff:test');
      expect(started.started).toBe(true);
      const result = await svc.wait(started);
      expect(result).toMatchObject({ reportId: started.reportId, verdict: 'needs_attention', repaired: 2 });

      if (process.env.UPDATE_REPLAY_FIXTURES) {
        fs.writeFileSync(path.join(HISTORIES, 'reconcile.json'), historyToJSON(await client.workflow.getHandle(started.workflowId, started.reportId).fetchHistory()));
      }

      const first = await svc.get({ id: started.reportId });
      expect(kinds(first)).toEqual(
        [
          'balance_mismatch:needs_attention',
          'invoice_mismatch:needs_attention',
          'invoice_number_gap:needs_attention',
          'payment_without_topup:needs_attention',
          'provider_usage_mismatch:needs_attention',
          'unsettled_usage:repaired',
          'usage_deduction_missing:repaired',
          // The invoiced usage_hourly rows were changed: they no longer match their events either.
          'usage_hourly_mismatch:needs_attention',
        ].sort(),
      );
      expect(first.counts).toEqual({ discrepancies: 8, repaired: 2, needsAttention: 6, new: 8 });
      const by = (kind: string) => first.discrepancies.find((d) => d.kind === kind)!;
      expect(by('payment_without_topup')).toMatchObject({ subject: `stripe:${world.unpaidPayment}`, accountId: world.accounts.paid, expected: '50.000000000000', actual: '0.000000000000' });
      expect(by('balance_mismatch')).toMatchObject({ accountId: world.accounts.tampered, expected: '100.000000000000', actual: '105.000000000000', difference: '5.000000000000' });
      expect(by('invoice_number_gap')).toMatchObject({ subject: world.gapNumber });
      expect(by('invoice_mismatch')).toMatchObject({ subject: world.tamperedInvoice, accountId: world.accounts.invoiced });
      expect(by('usage_hourly_mismatch')).toMatchObject({ accountId: world.accounts.invoiced });
      expect(by('provider_usage_mismatch').details).toMatchObject({ provider: world.provider, day: DAY, model: 'up-model', tokens: { difference: { input: 3, cached: 0, output: 0 } } });
      expect(by('usage_deduction_missing')).toMatchObject({ subject: world.missingDeductionKey, repairRef: world.missingDeductionKey, expected: '-1.500000000000' });
      expect(by('unsettled_usage')).toMatchObject({ accountId: world.accounts.unsettled, expected: '0.500000000000' });

      // The safe repairs went through the ledger, each under its own key and naming the report.
      const repairs = await db('ledger_entries').where({ actor: 'system:reconcile' }).orderBy('id');
      expect(repairs.map((e) => [e.account_id, e.kind, new Money(e.amount).toString(), e.reason])).toEqual(
        expect.arrayContaining([
          [world.accounts.unsettled, 'usage', '-0.5', `reconciliation report ${started.reportId}`],
          [world.accounts.missingDeduction, 'usage', '-1.5', `reconciliation report ${started.reportId}`],
        ]),
      );
      expect(repairs).toHaveLength(2);
      expect(await db('usage_events').where({ account_id: world.accounts.unsettled }).whereNull('settled_at').count('* as n').first()).toEqual({ n: 0 });
      // The unsafe ones were not touched.
      expect((await db('account_balances').where({ account_id: world.accounts.tampered }).first()).balance).toBe('105.000000000000');
      expect(await db('ledger_entries').where({ account_id: world.accounts.paid, kind: 'topup' })).toEqual([]);
      expect((await db('account_balances').where({ account_id: world.accounts.missingDeduction }).first()).balance).toBe('98.500000000000');

      // Again, from the CLI: the same problems, none new, no repair, not one more ledger entry.
      const entriesBefore = await ledgerCount();
      const second = await runCliJson(['reconcile', '--period', PERIOD], env);
      expect(second.id).not.toBe(started.reportId);
      expect(second.verdict).toBe('needs_attention');
      expect(second.counts).toEqual({ discrepancies: 6, repaired: 0, needsAttention: 6, new: 0 });
      expect(second.discrepancies.every((d: { new: boolean; firstReportId: string }) => !d.new && d.firstReportId === started.reportId)).toBe(true);
      expect(await ledgerCount()).toBe(entriesBefore);

      // Listed newest first; the human form says what needs attention.
      const list = await runCliJson(['reconcile-reports', 'list', '--period', PERIOD], env);
      expect(list.items.map((r: { id: string }) => r.id)).toEqual([second.id, started.reportId]);
      const shown = await runCli(['reconcile-reports', 'show', started.reportId, '--needs-attention'], env);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toContain('verdict: NEEDS ATTENTION');
      expect(shown.stdout).toContain(`payment_without_topup`);
      expect(shown.stdout).not.toContain('unsettled_usage');
    });
  });

  it('registers the daily schedule once however often the system starts', async () => {
    const defs = productionSchedules(config);
    expect(defs.map((d) => d.scheduleId)).toContain('reconcile-daily');
    // A task queue of this test's own: the schedule must not start runs for other files.
    const id = `reconcile-daily-${randomUUID().slice(0, 8)}`;
    const mine = defs.filter((d) => d.scheduleId === 'reconcile-daily').map((d) => ({ ...d, scheduleId: id }));
    await ensureSchedules(client, mine, config.temporal.taskQueue);
    await ensureSchedules(client, mine, config.temporal.taskQueue);
    const found = [];
    for await (const s of client.schedule.list()) if (s.scheduleId === id) found.push(s);
    expect(found).toHaveLength(1);
    const d = await client.schedule.getHandle(id).describe();
    expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcile' });
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
    await client.schedule.getHandle(id).delete();
  });

  it('refuses bad input with a clear one-line error (CLI) and problem JSON (admin API), and runs from the API', async () => {
    const env = testEnv(config);
    for (const args of [['reconcile', '--day', '2026-02-30'], ['reconcile', '--day', '2026-10-01', '--period', '2026-10'], ['reconcile']]) {
      const r = await runCli([...args, '--no-wait'], env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^error: invalid input: day/);
    }
    const badCsv = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'statement-')), 'bad.csv');
    fs.writeFileSync(badCsv, `day,model,input_tokens,cached_tokens,output_tokens,cost\n2026-10-40,m,1,0,1,0.1\n2026-10-14,m,5,9,1,-1\n`);
    const bad = await runCli(['provider-statements', 'import', '--provider', world.provider, badCsv], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('line 2: day must be a date YYYY-MM-DD');
    expect(bad.stderr).toContain('line 3: cached_tokens is part of input_tokens');
    expect(bad.stderr).toContain('line 3: cost must be a non-negative decimal');
    expect(await db('provider_statements').where({ day: '2026-10-14', model: 'm' })).toEqual([]);

    const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000, temporal: { client, taskQueue: config.temporal.taskQueue } });
    const s = await serve(app);
    const { token } = await staffService({ db }).createStaffToken({ role: 'billing' });
    const call = (method: string, p: string, body?: string, type = 'application/json') =>
      fetch(s.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': type } : {}) }, body });
    try {
      const invalid = await call('POST', '/billing/reconciliations', JSON.stringify({ day: '2026-13-01' }));
      expect(invalid.status).toBe(400);
      expect(invalid.headers.get('content-type')).toContain('application/problem+json');
      expect(((await invalid.json()) as { detail: string }).detail).toContain('day');

      const statement = await call('POST', `/billing/provider-statements?provider=${world.provider}`, `day,model,input_tokens,cached_tokens,output_tokens,cost\n2026-10-21,up-model,0,0,0,0\n`, 'text/csv');
      expect(statement.status).toBe(201);
      expect(await statement.json()).toMatchObject({ rows: 1, days: ['2026-10-21'] });

      await withTestWorker(config, db, async () => {
        const started = await call('POST', '/billing/reconciliations', JSON.stringify({ day: '2026-10-21' }));
        expect(started.status).toBe(202);
        const { reportId, workflowId } = (await started.json()) as { reportId: string; workflowId: string };
        expect(workflowId).toBe('reconcile:day:2026-10-21');
        await client.workflow.getHandle(workflowId, reportId).result();
        const report = await call('GET', `/billing/reconciliation-reports/${reportId}`);
        expect(report.status).toBe(200);
        // Nothing on that day; the tampered balance of the first test is still there (balances are checked whatever the window), and not new.
        const body = (await report.json()) as { discrepancies: { kind: string; new: boolean }[] };
        expect(body).toMatchObject({ id: reportId, status: 'finished', verdict: 'needs_attention', scope: 'day', label: '2026-10-21', counts: { discrepancies: 1, new: 0 } });
        expect(body.discrepancies).toMatchObject([{ kind: 'balance_mismatch', new: false }]);
      });
      const missing = await call('GET', `/billing/reconciliation-reports/${randomUUID()}`);
      expect(missing.status).toBe(404);
    } finally {
      await s.close();
    }
  });
});
