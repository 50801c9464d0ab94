import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileWindow } from '../../src/reconciliation/reconciliation.rules';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { invoiceAccountForPeriod } from '../../src/invoicing/invoicing.service';
import { postEntry } from '../../src/ledger/ledger.data';
import { migrationConfig } from '../../src/db/migrate';
import { checkInvoices } from '../../src/reconciliation/checks/invoicesVsUsage.data';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { accountsService } from '../../src/accounts/accounts.service';
import { migrations } from '../../migrations/index';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import { ownDatabaseUrl } from '../helpers/ownDatabase';
import { testConfig, testDb } from '../helpers/env';
import { insertUsageEvents } from '../helpers/usageEvents';

/**
 * The per-account invoiced boundary: an invoice invoices the account's hours
 * up to its period's end without marking them, and usage settled into those
 * hours afterwards goes to late rows that the next invoice takes, once.
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
const invoicing = { invoicing: config.invoicing, overdraftAllowance: new Money(0) };
let provider: string;
let model: string;
let priceId: string;

beforeAll(async () => {
  provider = `bnd-${randomUUID().slice(0, 6)}`;
  await ops.addProvider({ name: provider, baseUrl: 'http://127.0.0.1:9/v1' });
  model = `bnd-model-${randomUUID().slice(0, 6)}`;
  priceId = (await ops.addModel({ name: model, provider, upstreamModel: 'u', inputPerMtok: '0.1', outputPerMtok: '0.4', effectiveFrom: '2020-01-01T00:00:00Z' })).price!.id;
  await db.raw(`INSERT INTO tax_rates (country, rate, effective_from) VALUES ('DE', 0.19, '2020-01-01') ON CONFLICT DO NOTHING`);
});
afterAll(() => db.destroy());

async function account(): Promise<string> {
  const a = await ops.createAccount({ name: `Boundary Co ${randomUUID().slice(0, 6)}`, country: 'DE', plan: 'prepaid' });
  await postEntry(db, { accountId: a.id, kind: 'grant', contra: 'promotions', amount: new Money('100'), idempotencyKey: `bnd-grant:${a.id}`, referenceType: 'test', referenceId: 'x', actor: 'test' }, { overdraftAllowance: new Money(0) });
  return a.id as string;
}

const usage = (accountId: string, at: string, input: number) =>
  insertUsageEvents(db, [{ account_id: accountId, occurred_at: at, model, provider, price_id: priceId, input_tokens: input, output_tokens: 0, cost: '0.01' }]);
const settle = (accountId: string) => settleAccountUsage(db, accountId, { limit: 1_000, overdraftAllowance: new Money(0) });
const invoice = (accountId: string, period: string) => invoiceAccountForPeriod(db, { accountId, period, dryRun: false, now: new Date() }, invoicing);
const rows = (accountId: string) =>
  db('usage_hourly').where({ account_id: accountId }).orderBy(['hour', 'late']).select('hour', 'late', 'requests', 'input_tokens', 'invoiced_by');
const boundary = async (accountId: string) => (await db('usage_invoiced_boundaries').where({ account_id: accountId }).first())?.invoiced_until as Date | undefined;
const lines = (invoiceId: string) => db('invoice_lines').where({ invoice_id: invoiceId }).orderBy('position').select('quantity', 'late', 'usage_period', 'amount');
const mismatches = async (period: string, accountId: string) =>
  (await checkInvoices({ db, reportId: randomUUID(), window: reconcileWindow('period', period), now: new Date(), settlementLagS: 0, paymentGraceS: 0, overdraftAllowance: new Money(0) }))
    .filter((d) => d.kind === 'invoice_mismatch' && d.accountId === accountId);

describe('invoiced boundary', () => {
  it('bills usage settled after its hour was invoiced as a late line of the next invoice, exactly once; a re-run changes nothing', async () => {
    const a = await account();
    await usage(a, '2024-01-10T10:05:00Z', 1_000_000);
    await usage(a, '2024-01-10T10:30:00Z', 1_000_000);
    const jan = await invoice(a, '2024-01');
    expect(jan).toMatchObject({ status: 'invoiced', total: '0.24' });
    const janId = (jan as { invoiceId: string }).invoiceId;
    // Invoiced through the boundary: the row is not marked, the boundary is January's end.
    expect(await rows(a)).toEqual([{ hour: new Date('2024-01-10T10:00:00Z'), late: false, requests: 2, input_tokens: 2000000, invoiced_by: null }]);
    expect(await boundary(a)).toEqual(new Date('2024-02-01T00:00:00Z'));

    // Usage of the same, invoiced hour settled afterwards: a late row beside the invoiced one, never added to it.
    await usage(a, '2024-01-10T10:45:00Z', 300_000);
    await settle(a);
    await usage(a, '2024-01-10T10:50:00Z', 200_000);
    await settle(a);
    expect(await rows(a)).toEqual([
      { hour: new Date('2024-01-10T10:00:00Z'), late: false, requests: 2, input_tokens: 2000000, invoiced_by: null },
      { hour: new Date('2024-01-10T10:00:00Z'), late: true, requests: 2, input_tokens: 500000, invoiced_by: null },
    ]);

    // Running January again: the same invoice, and nothing moves.
    const before = { rows: await rows(a), boundary: await boundary(a) };
    expect(await invoice(a, '2024-01')).toMatchObject({ status: 'existing', invoiceId: janId });
    expect({ rows: await rows(a), boundary: await boundary(a) }).toEqual(before);

    // February's invoice takes the late row as a labelled line and marks it; the boundary moves to February's end.
    await usage(a, '2024-02-05T08:00:00Z', 100_000);
    const feb = await invoice(a, '2024-02');
    const febId = (feb as { invoiceId: string }).invoiceId;
    expect(await lines(febId)).toEqual([
      { quantity: 100000, late: false, usage_period: '2024-02', amount: '0.010000000000' },
      { quantity: 500000, late: true, usage_period: '2024-01', amount: '0.050000000000' },
    ]);
    expect((await rows(a)).map((r) => [r.late, r.invoiced_by])).toEqual([[false, null], [true, febId], [false, null]]);
    expect(await boundary(a)).toEqual(new Date('2024-03-01T00:00:00Z'));

    // Nothing is billed twice: March has nothing, and a re-run of February is the same invoice.
    expect(await invoice(a, '2024-03')).toMatchObject({ status: 'skipped' });
    expect(await invoice(a, '2024-02')).toMatchObject({ status: 'existing', invoiceId: febId });
    const billed = await db('invoice_lines').join('invoices', 'invoices.id', 'invoice_lines.invoice_id').where('invoices.account_id', a).sum('quantity as n').first();
    expect(billed!.n).toBe('2600000');

    // Reconciliation prices both invoices again from the rows they consumed (boundary hours and marked late rows) and agrees.
    expect(await mismatches('2024-01', a)).toEqual([]);
    expect(await mismatches('2024-02', a)).toEqual([]);
  });

  it('an earlier period invoiced after a later one takes only its late usage and leaves the boundary where it is', async () => {
    const a = await account();
    await usage(a, '2024-05-03T12:00:00Z', 1_000_000);
    expect(await invoice(a, '2024-05')).toMatchObject({ status: 'invoiced' });
    // April was never invoiced; its usage arrives now, behind May's boundary.
    await usage(a, '2024-04-20T12:00:00Z', 400_000);
    await settle(a);
    expect((await rows(a)).map((r) => [r.hour.toISOString().slice(0, 7), r.late])).toEqual([['2024-04', true], ['2024-05', false]]);
    const apr = await invoice(a, '2024-04');
    const aprId = (apr as { invoiceId: string }).invoiceId;
    expect(await lines(aprId)).toEqual([{ quantity: 400000, late: false, usage_period: '2024-04', amount: '0.040000000000' }]);
    expect(await boundary(a)).toEqual(new Date('2024-06-01T00:00:00Z'));
    expect(await mismatches('2024-04', a)).toEqual([]);
    expect(await mismatches('2024-05', a)).toEqual([]);
  });
});

describe('the boundary migration', () => {
  it('keeps old marked rows, derives each boundary from the latest invoice, turns open rows behind it into late rows, and goes back down', async () => {
    const url = ownDatabaseUrl('boundary_migration');
    await ensureDatabase(url);
    const own = testDb(testConfig({ DATABASE_URL: url }));
    const names = migrations.map(([n]) => n);
    const upTo = (last: number): Knex.MigratorConfig => ({
      ...migrationConfig,
      migrationSource: {
        getMigrations: async () => names.slice(0, last),
        getMigrationName: (n: string) => n,
        getMigration: async (n: string) => migrations.find(([m]) => m === n)![1],
      },
    });
    try {
      const boundaryAt = names.indexOf('20261126230000_usage_invoiced_boundary.ts');
      await own.migrate.latest(upTo(boundaryAt));
      // As the per-row marking left it: October invoiced and its rows marked; a late October row and a November row open.
      const [acc] = await own('accounts').insert({ name: 'Old Co', country: 'DE' }).returning('id');
      const [inv] = await own('invoices')
        .insert({
          kind: 'invoice', account_id: acc.id, period: '2025-10', status: 'finalized', series: 'MR-2025', number: 'MR-2025-000001', plan: 'prepaid', currency: 'USD',
          subtotal: '1', tax_rate: '0', tax_amount: '0', total: '1', credits_applied: '1', amount_due: '0', tax_kind: 'domestic', customer: '{}', issuer: '{}', issued_at: new Date('2025-11-02T00:00:00Z'),
        })
        .returning('id');
      const row = (hour: string, invoicedBy: string | null) => ({
        account_id: acc.id, hour: new Date(hour), model: 'm', provider: 'p', price_id: 'x', requests: 1, input_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0, cost: '1', invoiced_by: invoicedBy,
      });
      await own('usage_hourly').insert([row('2025-10-05T10:00:00Z', inv.id), row('2025-10-05T10:00:00Z', null), row('2025-11-03T10:00:00Z', null)]);
      const state = () => own('usage_hourly').where({ account_id: acc.id }).orderBy('id').select('hour', 'late', 'invoiced_by');

      await own.migrate.latest(upTo(boundaryAt + 1));
      expect(await state()).toEqual([
        { hour: new Date('2025-10-05T10:00:00Z'), late: false, invoiced_by: inv.id },
        { hour: new Date('2025-10-05T10:00:00Z'), late: true, invoiced_by: null },
        { hour: new Date('2025-11-03T10:00:00Z'), late: false, invoiced_by: null },
      ]);
      expect(await own('usage_invoiced_boundaries').where({ account_id: acc.id }).first('invoiced_until', 'invoice_id')).toEqual({ invoiced_until: new Date('2025-11-01T00:00:00Z'), invoice_id: inv.id });

      // November invoiced through the boundary (as invoiceAccountForPeriod leaves it), then down: every row it consumed is marked again.
      const [nov] = await own('invoices')
        .insert({
          kind: 'invoice', account_id: acc.id, period: '2025-11', status: 'finalized', series: 'MR-2025', number: 'MR-2025-000002', plan: 'prepaid', currency: 'USD',
          subtotal: '2', tax_rate: '0', tax_amount: '0', total: '2', credits_applied: '2', amount_due: '0', tax_kind: 'domestic', customer: '{}', issuer: '{}', issued_at: new Date('2025-12-02T00:00:00Z'),
          usage_from: new Date('2025-11-01T00:00:00Z'), usage_until: new Date('2025-12-01T00:00:00Z'),
        })
        .returning('id');
      await own('usage_hourly').where({ account_id: acc.id, late: true }).update({ invoiced_by: nov.id });
      await own('usage_invoiced_boundaries').where({ account_id: acc.id }).update({ invoiced_until: new Date('2025-12-01T00:00:00Z'), invoice_id: nov.id });
      await own.migrate.down(upTo(boundaryAt + 1));
      expect(await own('usage_hourly').where({ account_id: acc.id }).orderBy('id').pluck('invoiced_by')).toEqual([inv.id, nov.id, nov.id]);
      expect(await own.schema.hasTable('usage_invoiced_boundaries')).toBe(false);
      expect(await own.schema.hasColumn('usage_hourly', 'late')).toBe(false);
    } finally {
      await own.destroy();
      await dropDatabase(url);
    }
  });
});
