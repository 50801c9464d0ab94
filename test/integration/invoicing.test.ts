import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, untilTrue } from '../helpers/eventually';
import { Money } from '../../src/shared/money.rules';
import { systemClock } from '../../src/clock';
import { postEntry } from '../../src/ledger/ledger.data';
import { accountsService } from '../../src/accounts/accounts.service';
import { BIN, runCli, runCliJson } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { withTestWorker } from '../helpers/worker';
import { createAdminApp } from '../../src/admin/app';
import { silentLogger } from '../helpers/env';
import { serve } from '../helpers/servers';
import { insertUsageEvents } from '../helpers/usageEvents';
import { staffService } from '../../src/staff/staff.service';

const { historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORIES = fileURLToPath(new URL('../replay/histories/', import.meta.url));

const config = testConfig({ INVOICE_RUN_CONCURRENCY: '4', INVOICE_RUN_PAGE_SIZE: '10' });
const env = testEnv(config, { INVOICE_RUN_CONCURRENCY: '4', INVOICE_RUN_PAGE_SIZE: '10' });
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let connection: Connection;
let client: Client;
let providerName: string;
let model: string;
let priceMarch1: string;
let priceMarch15: string;

beforeAll(async () => {
  connection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection, namespace: config.temporal.namespace });
  providerName = `inv-${randomUUID().slice(0, 6)}`;
  await ops.addProvider({ name: providerName, baseUrl: 'http://127.0.0.1:9/v1' });
  model = `inv-model-${randomUUID().slice(0, 6)}`;
  const a = await ops.addModel({ name: model, provider: providerName, upstreamModel: 'u', inputPerMtok: '0.15', cachedInputPerMtok: '0.075', outputPerMtok: '0.6', effectiveFrom: '2020-01-01T00:00:00Z' });
  const b = await ops.addModel({ name: model, provider: providerName, upstreamModel: 'u', inputPerMtok: '0.1', outputPerMtok: '0.4', effectiveFrom: '2025-03-15T00:00:00Z' });
  priceMarch1 = a.price!.id;
  priceMarch15 = b.price!.id;
  await runCliJson(['tax-rates', 'set', '--country', 'DE', '--rate', '0.19', '--from', '2020-01-01'], env);
  await runCliJson(['tax-rates', 'set', '--country', 'FR', '--rate', '0.20', '--from', '2020-01-01'], env);
});
afterAll(async () => {
  await connection.close();
  await db.destroy();
});

/** Unsettled usage events at `at`, as the gateway would have recorded them. */
async function usage(accountId: string, at: string, priceId: string, tokens: { input: number; cached?: number; output: number }, cost = '0.01') {
  await insertUsageEvents(db, [
    {
      occurred_at: at,
      account_id: accountId,
      model,
      provider: providerName,
      price_id: priceId,
      input_tokens: tokens.input,
      cache_read_tokens: tokens.cached ?? 0,
      output_tokens: tokens.output,
      cost,
      latency_ms: 5,
    },
  ]);
}

async function account(fields: { country?: string; vatId?: string; plan?: 'prepaid' | 'postpaid'; credit?: string }) {
  const a = await ops.createAccount({
    name: `Invoice Co ${randomUUID().slice(0, 6)}`,
    ...(fields.country ? { country: fields.country } : {}),
    ...(fields.vatId ? { vatId: fields.vatId } : {}),
    plan: fields.plan ?? 'prepaid',
    billingEmail: 'billing@example.com',
  });
  if (fields.credit) {
    await postEntry(db, { accountId: a.id, kind: 'grant', contra: 'promotions', amount: new Money(fields.credit), idempotencyKey: `inv-grant:${a.id}`, referenceType: 'test', referenceId: 'x', actor: 'test' }, { overdraftAllowance: new Money(0) });
  }
  return a.id as string;
}

/** Every invoice number of a series, sorted: must be 1..N with no gap and no duplicate. */
async function expectGapless(series: string) {
  const numbers = (await db('invoices').where({ series }).whereNotNull('number').pluck('number')).map((n: string) => Number(n.slice(series.length + 1))).sort((a, b) => a - b);
  expect(numbers).toEqual(numbers.map((_, i) => i + 1));
}
const SERIES = `MR-${new Date().getUTCFullYear()}`;

describe('invoice run', () => {
  it('invoices a period with tax, price history and failures reported; a re-run after fixing data invoices just that account', async () => {
    const de = await account({ country: 'DE', credit: '100' });
    const fr = await account({ country: 'FR', vatId: 'FR12345678901', plan: 'postpaid' });
    const us = await account({ country: 'US', plan: 'postpaid' });
    const broken = await account({ plan: 'postpaid' }); // no country: bad tax data
    for (const id of [de, fr, us, broken]) {
      await usage(id, '2025-03-03T10:15:00Z', priceMarch1, { input: 1_234_567, cached: 200_000, output: 50_000 });
      await usage(id, '2025-03-20T08:00:00Z', priceMarch15, { input: 1_000_000, output: 1_000_000 });
    }
    const period = '2025-03';
    const accounts = [de, fr, us, broken];
    await withTestWorker(config, db, async () => {
      const run = await runCliJson(['invoice-run', 'start', '--period', period, ...accounts.flatMap((a) => ['--account', a]), '--wait'], env);
      expect(run.state).toMatchObject({ status: 'completed_with_failures', total: 4, done: 3, failed: 1, invoiced: 3, skipped: 0 });
      expect(run.state.failures).toEqual([{ accountId: broken, reason: expect.stringMatching(/country/i) }]);

      // Findable in the Web UI by its search attributes.
      await eventually(
        async () => {
          const found: string[] = [];
          for await (const wf of client.workflow.list({ query: `MixrouteKind = 'invoice-run' AND BillingPeriod = '${period}' AND ProcessStatus = 'completed_with_failures'` })) found.push(wf.workflowId);
          expect(found).toContain(run.workflowId);
        },
        { timeoutMs: 10_000, intervalMs: 200, message: 'visibility to find the run by its search attributes' },
      );

      const again = await runCliJson(['invoice-run', 'start', '--period', period, ...accounts.flatMap((a) => ['--account', a])], env);
      expect(again.started).toBe(false);
      expect(again.workflowId).toBe(run.workflowId);

      const deInvoice = await runCliJson(['invoices', 'list', '--period', period, '--account', de], env);
      expect(deInvoice).toHaveLength(1);
      const shown = await runCliJson(['invoices', 'show', deInvoice[0].id], env);
      // Events carry uncached input: 1,234,567 at 0.15 = 0.18518505 -> 0.19; 200,000 cached at 0.075 = 0.015 -> 0.02; 50,000 output at 0.6 = 0.03;
      // after the price change: 1,000,000 input at 0.1 = 0.10; 1,000,000 output at 0.4 = 0.40
      expect(shown.lines.map((l: { kind: string; quantity: number; amount: string }) => [l.kind, l.quantity, l.amount])).toEqual([
        ['input', 1_234_567, '0.19'],
        ['cached_input', 200_000, '0.02'],
        ['output', 50_000, '0.03'],
        ['input', 1_000_000, '0.10'],
        ['output', 1_000_000, '0.40'],
      ]);
      // 0.74 + 19 % (0.1406 -> 0.14); prepaid: paid by credits, nothing due.
      expect(shown.totals).toMatchObject({ subtotal: '0.74', taxRate: '0.19', taxAmount: '0.14', total: '0.88', amountDue: '0.00', creditsApplied: '0.88' });
      expect(shown.number).toMatch(new RegExp(`^${SERIES}-\\d{6}$`));
      const frInvoice = await runCliJson(['invoices', 'show', (await runCliJson(['invoices', 'list', '--period', period, '--account', fr], env))[0].id], env);
      expect(frInvoice).toMatchObject({ taxKind: 'reverse_charge', totals: { taxAmount: '0.00', total: '0.74', amountDue: '0.74' } });
      expect(frInvoice.taxNote).toContain('FR12345678901');
      expect(frInvoice.dueDate).toBeTruthy();
      const usInvoice = await runCliJson(['invoices', 'show', (await runCliJson(['invoices', 'list', '--period', period, '--account', us], env))[0].id], env);
      expect(usInvoice.taxKind).toBe('outside_scope');

      // Fix the data, run the period again: only the failed account is invoiced.
      await db('accounts').where({ id: broken }).update({ country: 'DE' });
      const rerun = await runCliJson(['invoice-run', 'start', '--period', period, ...accounts.flatMap((a) => ['--account', a]), '--rerun', '--wait'], env);
      expect(rerun.state).toMatchObject({ status: 'completed', done: 4, failed: 0, invoiced: 1, existing: 3 });
      // And once more: nothing changes.
      const count = async () => Number((await db('invoices').whereIn('account_id', accounts).count('* as n').first())!.n);
      expect(await count()).toBe(4);
      await runCliJson(['invoice-run', 'start', '--period', period, ...accounts.flatMap((a) => ['--account', a]), '--rerun', '--wait'], env);
      expect(await count()).toBe(4);

      if (process.env.UPDATE_REPLAY_FIXTURES) {
        fs.writeFileSync(path.join(HISTORIES, 'invoiceRun.json'), historyToJSON(await client.workflow.getHandle(run.workflowId, undefined).fetchHistory()));
        // invoiceAccount.json is recorded by workflows.test.ts: runs invoice in batches and start no invoiceAccount.
      }

      // Late usage for March arrives after March was invoiced: it is billed on April's invoice, labelled.
      await usage(de, '2025-03-31T23:59:00Z', priceMarch15, { input: 500_000, output: 0 });
      await usage(de, '2025-04-02T12:00:00Z', priceMarch15, { input: 100_000, output: 0 });
      const april = await runCliJson(['invoice-run', 'start', '--period', '2025-04', '--account', de, '--wait'], env);
      expect(april.state).toMatchObject({ invoiced: 1 });
      const aprilInvoice = await runCliJson(['invoices', 'show', (await runCliJson(['invoices', 'list', '--period', '2025-04', '--account', de], env))[0].id], env);
      const late = aprilInvoice.lines.filter((l: { late: boolean }) => l.late);
      expect(late).toHaveLength(1);
      expect(late[0]).toMatchObject({ quantity: 500_000, usagePeriod: '2025-03', amount: '0.05' });
      expect(late[0].description).toMatch(/late usage from 2025-03/i);
    });
    await expectGapless(SERIES);
  });

  it('refuses a period that has not ended plus its grace window, unless forced', async () => {
    const period = new Date().toISOString().slice(0, 7);
    const r = await runCli(['invoice-run', 'start', '--period', period], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/can be invoiced from .* use force/);
  });

  it('dry run reports totals without writing anything', async () => {
    const a = await account({ country: 'DE', plan: 'postpaid' });
    await usage(a, '2025-05-10T10:00:00Z', priceMarch15, { input: 2_000_000, output: 0 });
    await withTestWorker(config, db, async () => {
      const dry = await runCliJson(['invoice-run', 'start', '--period', '2025-05', '--account', a, '--dry-run', '--wait'], env);
      expect(dry.state).toMatchObject({ dryRun: true, status: 'completed', done: 1, invoiced: 0, totals: { USD: '0.24' } });
    });
    expect(await db('invoices').where({ account_id: a })).toHaveLength(0);
  });
});

describe('invoices', () => {
  it('are immutable once finalized, download as PDF and HTML, and are voided by a credit note', async () => {
    const a = await account({ country: 'DE', plan: 'postpaid' });
    await usage(a, '2025-07-10T10:00:00Z', priceMarch15, { input: 3_000_000, output: 100_000 });
    await withTestWorker(config, db, async () => {
      await runCliJson(['invoice-run', 'start', '--period', '2025-07', '--account', a, '--wait'], env);
    });
    const [inv] = await runCliJson(['invoices', 'list', '--account', a], env);
    await expect(db('invoices').where({ id: inv.id }).update({ total: '0' })).rejects.toThrow(/immutable/);
    await expect(db('invoice_lines').where({ invoice_id: inv.id }).delete()).rejects.toThrow(/cannot change/);

    const admin = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
    const s = await serve(admin);
    try {
      const token = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
      const pdf = await fetch(`${s.url}/billing/invoices/${inv.id}.pdf`, { headers: { authorization: `Bearer ${token}` } });
      expect(pdf.status).toBe(200);
      expect(pdf.headers.get('content-type')).toBe('application/pdf');
      expect(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString()).toBe('%PDF-');
      const html = await (await fetch(`${s.url}/billing/invoices/${inv.id}.html`, { headers: { authorization: `Bearer ${token}` } })).text();
      expect(html).toContain(inv.number);
    } finally {
      await s.close();
    }
    const out = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'inv-')), 'invoice.pdf');
    const dl = await runCliJson(['invoices', 'download', inv.id, '--out', out], env);
    expect(dl.bytes).toBeGreaterThan(1000);
    expect(fs.readFileSync(out).subarray(0, 5).toString()).toBe('%PDF-');

    const voided = await runCliJson(['invoices', 'void', inv.id, '--reason', 'wrong customer data'], env);
    expect(voided.creditNoteNumber).toMatch(/^CN-\d{4}-\d{6}$/);
    const after = await runCliJson(['invoices', 'show', inv.id], env);
    expect(after).toMatchObject({ status: 'void', voidedBy: voided.creditNoteId });
    const cn = await runCliJson(['invoices', 'show', voided.creditNoteId], env);
    expect(cn).toMatchObject({ kind: 'credit_note', status: 'finalized', voidsInvoiceId: inv.id });
    expect(cn.totals.total).toBe(`-${after.totals.total}`);
    const twice = await runCli(['invoices', 'void', inv.id, '--reason', 'again please'], env);
    expect(twice.code).toBe(1);
  });
});

describe('invoice run under faults', () => {
  it('completes with exactly one invoice per account and no gap in numbers when the worker is killed mid-run', async () => {
    const period = '2025-06';
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const a = await account({ country: 'DE', plan: 'postpaid' });
      await usage(a, '2025-06-15T12:00:00Z', priceMarch15, { input: 1_000_000 + i, output: 1_000 });
      ids.push(a);
    }
    // A restarted worker that dies on its own would leave the run waiting until the test times out:
    // say so, with the end of its log, instead of failing silently.
    let stopping = false;
    const startWorker = () => {
      const child = spawn(process.execPath, [BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      let log = '';
      for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4_000)));
      const exited = new Promise((r) => child.once('exit', r));
      void exited.then((code) => {
        if (!stopping) console.error(`worker ${child.pid} exited (${String(code)}) during the run; its log ended with:\n${log}`);
      });
      return { child, exited };
    };
    let worker = startWorker();
    const started = await runCliJson(['invoice-run', 'start', '--period', period, ...ids.flatMap((a) => ['--account', a])], env);
    const invoiced = async () => Number((await db('invoices').whereIn('account_id', ids).count('* as n').first())!.n);
    await untilTrue(async () => (await invoiced()) >= 5, { timeoutMs: 60_000, message: 'the first worker to issue five invoices' });
    stopping = true;
    worker.child.kill('SIGKILL');
    await worker.exited;
    stopping = false;
    expect(await invoiced()).toBeLessThan(40);
    worker = startWorker();
    try {
      const state = await client.workflow.getHandle(started.workflowId).result();
      expect(state).toMatchObject({ status: 'completed', total: 40, done: 40, failed: 0 });
      expect(await invoiced()).toBe(40);
      const perAccount = await db('invoices').whereIn('account_id', ids).groupBy('account_id').havingRaw('count(*) > 1').select('account_id');
      expect(perAccount).toEqual([]);
      await expectGapless(SERIES);
      const rerun = await runCliJson(['invoice-run', 'start', '--period', period, ...ids.flatMap((a) => ['--account', a]), '--rerun', '--wait'], env);
      expect(rerun.state).toMatchObject({ invoiced: 0, existing: 40 });
      expect(await invoiced()).toBe(40);
    } finally {
      stopping = true;
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });
});
