import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { dunningService, signalDunningSettled, startDunning } from '../../src/invoicing/dunning.service';
import { invoicePayments } from '../../src/invoicing/payments.service';
import { validateDunningSteps, type DunningStep } from '../../src/shared/dunning.rules';
import { staffService } from '../../src/staff/staff.service';
import { workflowIds } from '../../src/temporal/conventions';
import { webhooksService } from '../../src/webhooks/webhooks.service';
import type { DunningResult, DunningState } from '../../workflows/messages';
import { eventually } from '../helpers/eventually';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { serve } from '../helpers/servers';
import { insertUsageEvents } from '../helpers/usageEvents';
import { silentLogger, testConfig, testDb, testEnv } from '../helpers/env';
import { runCli, runCliJson } from '../helpers/cli';
import { testActivities, workflowBundle } from '../helpers/worker';

/**
 * The dunning workflow on a real worker and Temporal, with schedules of a few
 * seconds (anchor = now + seconds, offsets in ms): each step's event recorded
 * once, its email queued once and its webhook delivery fanned out; a pause
 * holds a step until staff resume; a payment before a step makes it skip and
 * ends the workflow; a settled signal after a partial payment does not; the
 * suspension suspends the account; finalizing a postpaid invoice starts its
 * dunning. The pause run is recorded as test/replay/histories/dunning.json
 * (UPDATE_REPLAY_FIXTURES=1).
 */
const { historyToJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORY = fileURLToPath(new URL('../replay/histories/dunning.json', import.meta.url));

const config = testConfig({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
const db = testDb(config);
const taskQueue = config.temporal.taskQueue;
const dunning = dunningService({ db, clock: systemClock, config });
const payments = invoicePayments({ db, clock: systemClock });
const webhooks = webhooksService({ db, clock: systemClock, config });
let postpaidInvoice: Awaited<ReturnType<typeof postpaidInvoiceFactory>>;
let connection: NativeConnection;
let clientConnection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let admin: Awaited<ReturnType<typeof serve>>;
let billingToken: string;

beforeAll(async () => {
  postpaidInvoice = await postpaidInvoiceFactory(db, config);
  connection = await NativeConnection.connect({ address: config.temporal.address! });
  worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: testActivities(config, db),
  });
  running = worker.run();
  clientConnection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  admin = await serve(createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000, temporal: { client, taskQueue } }));
  billingToken = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
});

afterAll(async () => {
  await admin?.close();
  worker?.shutdown();
  await running;
  await connection?.close();
  await clientConnection?.close();
  await db.destroy();
});

const steps = (...s: [DunningStep['kind'], number][]): DunningStep[] =>
  validateDunningSteps(s.map(([kind, ms]) => ({ kind, offsetMs: ms, name: `${kind}${ms < 0 ? '-' : '+'}${Math.abs(ms)}ms` })));

/** Starts the invoice's dunning with `schedule`, anchored `inMs` from now. */
async function start(inv: { invoiceId: string; accountId: string; dueDate: string }, schedule: DunningStep[], inMs: number, pauseRecheckMs = 600_000) {
  return startDunning(client, taskQueue, { ...inv, schedule, pauseRecheckMs, anchorMs: Date.now() + inMs });
}

const handle = (invoiceId: string) => client.workflow.getHandle(workflowIds.dunning(invoiceId));
const status = (invoiceId: string) => handle(invoiceId).query<DunningState>('dunningStatus');
const stepRows = (invoiceId: string) => db('dunning_steps').where({ invoice_id: invoiceId }).orderBy('due_at');
const events = (accountId: string) => db('account_events').where({ account_id: accountId }).whereIn('type', ['invoice.payment_due', 'invoice.overdue', 'account.suspended']).orderBy('occurred_at');
const api = (method: string, p: string, body?: unknown) =>
  fetch(`${admin.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${billingToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe('a whole schedule in seconds', () => {
  it('sends each step once (event, email, webhook delivery), suspends last, and completes', async () => {
    const inv = await postpaidInvoice('Dunning Full');
    const ep = await webhooks.registerEndpoint({ accountId: inv.accountId, url: 'http://127.0.0.1:9/hook', events: ['invoice.payment_due', 'invoice.overdue', 'account.suspended'] });
    const schedule = steps(['notice', -1_000], ['reminder', 1_000], ['reminder', 2_000], ['suspension', 3_000]);
    expect(await start(inv, schedule, 3_000)).toEqual({ workflowId: `dunning:${inv.invoiceId}`, started: true });
    // Starting again finds the running one.
    expect((await start(inv, schedule, 3_000)).started).toBe(false);

    const result = await handle(inv.invoiceId).result();
    expect(result).toEqual({
      ended: 'completed',
      steps: [
        { name: 'notice-1000ms', outcome: 'sent' },
        { name: 'reminder+1000ms', outcome: 'sent' },
        { name: 'reminder+2000ms', outcome: 'sent' },
        { name: 'suspension+3000ms', outcome: 'suspended' },
      ],
    } satisfies DunningResult);

    const rows = await stepRows(inv.invoiceId);
    expect(rows.map((r) => [r.step, r.kind, r.outcome])).toEqual([
      ['notice-1000ms', 'notice', 'sent'],
      ['reminder+1000ms', 'reminder', 'sent'],
      ['reminder+2000ms', 'reminder', 'sent'],
      ['suspension+3000ms', 'suspension', 'suspended'],
    ]);
    // Each step ran at (or after) its time.
    for (const r of rows) expect(new Date(r.done_at).getTime()).toBeGreaterThanOrEqual(new Date(r.due_at).getTime());

    const evs = await events(inv.accountId);
    expect(evs.map((e) => e.type)).toEqual(['invoice.payment_due', 'invoice.overdue', 'invoice.overdue', 'account.suspended']);
    expect(rows.map((r) => r.event_id)).toEqual(evs.map((e) => e.id));
    expect(evs[0].dedupe_key).toBe(`dunning:${inv.invoiceId}:notice-1000ms`);
    expect(evs[1].data).toMatchObject({
      accountId: inv.accountId,
      invoiceId: inv.invoiceId,
      number: inv.number,
      step: 'reminder+1000ms',
      amountDue: '119.00',
      outstanding: '119',
      currency: 'USD',
      dueDate: inv.dueDate,
      links: { credits: '/v1/credits' },
    });
    // Ids and amounts only: no name, no address.
    expect(JSON.stringify(evs.map((e) => e.data))).not.toMatch(/ap@example|Dunning Full/);

    const mails = await db('notification_outbox').whereIn('idempotency_key', evs.map((e) => `account-event:${e.id}`));
    expect(mails).toHaveLength(4);
    expect(mails.every((m) => m.recipient === 'ap@example.com')).toBe(true);
    expect(mails.map((m) => m.subject).sort()).toEqual(
      [`MixRoute: invoice ${inv.number} is due on ${inv.dueDate}`, `MixRoute: invoice ${inv.number} is overdue`, `MixRoute: invoice ${inv.number} is overdue`, 'MixRoute: API access suspended for an unpaid invoice'].sort(),
    );
    const deliveries = await db('webhook_deliveries').where({ endpoint_id: ep.id });
    expect(deliveries.map((d) => d.event_id).sort()).toEqual(evs.map((e) => e.id).sort());

    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('suspended');
    const suspension = await db('account_suspensions').where({ account_id: inv.accountId }).first();
    expect(suspension).toMatchObject({ invoice_id: inv.invoiceId, suspended_by: `dunning:${inv.invoiceId}`, reinstated_at: null });
    expect(suspension.reason).toContain(inv.number);

    // The query after the end, and a retried step sends nothing twice.
    expect(await status(inv.invoiceId)).toMatchObject({ settled: false, paused: false, next: null });
    const anchorMs = new Date(rows[0].due_at).getTime() + 1_000;
    for (const s of schedule) expect((await dunning.runStep({ invoiceId: inv.invoiceId, step: s, anchorMs })).outcome).toBe(rows.find((r) => r.step === s.name).outcome);
    expect(await events(inv.accountId)).toHaveLength(4);
    expect(await db('account_suspensions').where({ account_id: inv.accountId })).toHaveLength(1);

    // Staff see it: the account's dunning through the admin API.
    const view = (await (await api('GET', `/billing/accounts/${inv.accountId}/dunning`)).json()) as any;
    expect(view.paused).toBeNull();
    expect(view.suspension).toMatchObject({ invoiceId: inv.invoiceId, suspendedBy: `dunning:${inv.invoiceId}` });
    const mine = view.invoices.find((i: { invoiceId: string }) => i.invoiceId === inv.invoiceId);
    expect(mine.steps.map((s: { name: string; outcome: string }) => [s.name, s.outcome])).toEqual(rows.map((r) => [r.step, r.outcome]));
  });
});

describe('pause and resume', () => {
  it('holds a step while the account is paused, and runs it when staff resume (signalled), recording who and why', async () => {
    const inv = await postpaidInvoice('Dunning Paused');
    const paused = await api('POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: 'customer disputes the October usage' });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ paused: true, pause: { reason: 'customer disputes the October usage', pausedBy: expect.stringMatching(/^staff:/) } });
    // Pausing again changes nothing.
    expect(await (await api('POST', `/billing/accounts/${inv.accountId}/dunning/pause`, { reason: 'again' })).json()).toMatchObject({ paused: false, pause: { reason: 'customer disputes the October usage' } });

    // The recheck is 10 minutes: only the resume signal can wake the step within this test.
    await start(inv, steps(['reminder', 1_000], ['reminder', 2_000]), 0);
    await eventually(async () => expect(await status(inv.invoiceId)).toMatchObject({ paused: true, next: { name: 'reminder+1000ms' } }), { timeoutMs: 20_000, message: 'the first step to find dunning paused' });
    expect(await stepRows(inv.invoiceId)).toEqual([]);
    expect(await events(inv.accountId)).toEqual([]);
    const timeline = await dunning.timeline(inv.invoiceId);
    expect(timeline.paused).toBe(true);

    const resumed = await api('POST', `/billing/accounts/${inv.accountId}/dunning/resume`);
    expect(await resumed.json()).toEqual({ resumed: true, signalled: 1 });
    const result = await handle(inv.invoiceId).result();
    expect(result).toEqual({ ended: 'completed', steps: [{ name: 'reminder+1000ms', outcome: 'sent' }, { name: 'reminder+2000ms', outcome: 'sent' }] });
    expect(await events(inv.accountId)).toHaveLength(2);

    const pause = await db('dunning_pauses').where({ account_id: inv.accountId });
    expect(pause).toHaveLength(1);
    expect(pause[0]).toMatchObject({ reason: 'customer disputes the October usage', paused_by: expect.stringMatching(/^staff:/), resumed_by: expect.stringMatching(/^staff:/) });
    // Resuming again: nothing was paused.
    expect(await (await api('POST', `/billing/accounts/${inv.accountId}/dunning/resume`)).json()).toMatchObject({ resumed: false });

    if (process.env.UPDATE_REPLAY_FIXTURES) fs.writeFileSync(HISTORY, historyToJSON(await handle(inv.invoiceId).fetchHistory()));
  });
});

describe('ending early', () => {
  it('skips the next step after a payment recorded before it, and ends settled', async () => {
    const inv = await postpaidInvoice('Dunning Paid');
    await start(inv, steps(['notice', -1_000], ['reminder', 1_000], ['suspension', 2_000]), 1_500);
    await eventually(async () => expect(await stepRows(inv.invoiceId)).toHaveLength(1), { timeoutMs: 20_000, message: 'the notice' });
    const today = new Date().toISOString().slice(0, 10);
    // No signal: the step itself finds the invoice paid (the payment took the invoice's lock first).
    await payments.recordPayment(inv.invoiceId, { amount: '119.00', paidOn: today, reference: `dun-${randomUUID().slice(0, 8)}` }, 'test');
    const result = await handle(inv.invoiceId).result();
    expect(result).toEqual({ ended: 'settled', steps: [{ name: 'notice-1000ms', outcome: 'sent' }, { name: 'reminder+1000ms', outcome: 'skipped_settled' }] });
    expect((await events(inv.accountId)).map((e) => e.type)).toEqual(['invoice.payment_due']);
    expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('active');
    expect(await status(inv.invoiceId)).toMatchObject({ settled: true, next: null });
  });

  it('goes on after a settled signal for a partial payment, and ends at once on the signal for the rest', async () => {
    const inv = await postpaidInvoice('Dunning Partial');
    // The reminder is 10 minutes away: only a signal can end this workflow within the test.
    await start(inv, steps(['notice', -1_000], ['reminder', 600_000]), 1_000);
    await eventually(async () => expect(await stepRows(inv.invoiceId)).toHaveLength(1), { timeoutMs: 20_000, message: 'the notice' });
    const today = new Date().toISOString().slice(0, 10);
    await payments.recordPayment(inv.invoiceId, { amount: '50.00', paidOn: today, reference: `dun-${randomUUID().slice(0, 8)}` }, 'test');
    expect(await signalDunningSettled(client, inv.invoiceId, 'payment')).toBe(true);
    // The workflow asked and goes on waiting for its reminder.
    await eventually(
      async () => {
        const h = await handle(inv.invoiceId).fetchHistory();
        expect(h.events!.filter((e) => e.activityTaskCompletedEventAttributes).length).toBeGreaterThanOrEqual(3);
      },
      { timeoutMs: 20_000, message: 'the settled check after the partial payment' },
    );
    expect((await handle(inv.invoiceId).describe()).status.name).toBe('RUNNING');
    expect(await status(inv.invoiceId)).toMatchObject({ settled: false, next: { name: 'reminder+600000ms' } });

    await payments.recordPayment(inv.invoiceId, { amount: '69.00', paidOn: today, reference: `dun-${randomUUID().slice(0, 8)}` }, 'test');
    await signalDunningSettled(client, inv.invoiceId, 'payment');
    expect(await handle(inv.invoiceId).result()).toEqual({ ended: 'settled', steps: [{ name: 'notice-1000ms', outcome: 'sent' }] });
    expect(await stepRows(inv.invoiceId)).toHaveLength(1);
    // A workflow that ended is not signalled (no error).
    expect(await signalDunningSettled(client, inv.invoiceId, 'payment')).toBe(false);
  });
});

describe('started at finalization', () => {
  it('an invoiceAccount workflow that finalizes a postpaid invoice starts dunning:{invoiceId} with the configured schedule', async () => {
    const first = await postpaidInvoice('Dunning Model Source');
    const usage = await db('usage_events').where({ account_id: first.accountId }).first('model', 'provider', 'price_id');
    const account = await accountsService({ db, clock: systemClock }).createAccount({ name: `Dunning Start ${randomUUID().slice(0, 6)}`, country: 'DE', plan: 'postpaid', creditLimit: '1000', billingEmail: 'ap@example.com' });
    await insertUsageEvents(db, [{ account_id: account.id, occurred_at: '2026-10-15T10:00:00Z', model: usage.model, provider: usage.provider, price_id: usage.price_id, input_tokens: 1_000_000_000, output_tokens: 0, cost: '100' }]);
    const r = await client.workflow.execute('invoiceAccount', {
      workflowId: workflowIds.invoice(account.id, '2026-10'),
      taskQueue,
      args: [{ accountId: account.id, period: '2026-10', dryRun: false }],
    });
    expect(r.status).toBe('invoiced');
    const invoiceId = (r as { invoiceId: string }).invoiceId;
    const due = (await db('invoices').where({ id: invoiceId }).first()).due_date as string;
    try {
      const d = await handle(invoiceId).describe();
      expect(d.status.name).toBe('RUNNING');
      expect(d.taskQueue).toBe(taskQueue);
      const s = await eventually(async () => {
        const q = await status(invoiceId);
        expect(q.next).not.toBeNull();
        return q;
      }, { timeoutMs: 20_000, message: 'the dunning workflow to answer its query' });
      // The default schedule: a notice 3 days before the due date comes first.
      expect(s.next).toEqual({ name: config.invoicing.dunningSchedule[0]!.name, dueAtMs: Date.parse(`${due}T00:00:00Z`) + config.invoicing.dunningSchedule[0]!.offsetMs });
      // The timeline shows what comes next from the configured schedule.
      const t = await dunning.timeline(invoiceId);
      expect(t.steps.map((x) => [x.name, x.doneAt])).toEqual(config.invoicing.dunningSchedule.map((x) => [x.name, null]));
      // The backfill start (CLI `invoices dunning start`) finds it running.
      expect(await startDunning(client, taskQueue, { invoiceId, accountId: account.id, dueDate: due, schedule: config.invoicing.dunningSchedule, pauseRecheckMs: 1_000 })).toMatchObject({ started: false });
    } finally {
      await handle(invoiceId).terminate('test done').catch(() => undefined);
    }

    // The invoice run's batches start it too (a dry run starts nothing).
    const other = await accountsService({ db, clock: systemClock }).createAccount({ name: `Dunning Run ${randomUUID().slice(0, 6)}`, country: 'DE', plan: 'postpaid', creditLimit: '1000', billingEmail: 'ap@example.com' });
    await insertUsageEvents(db, [{ account_id: other.id, occurred_at: '2026-10-15T10:00:00Z', model: usage.model, provider: usage.provider, price_id: usage.price_id, input_tokens: 1_000_000_000, output_tokens: 0, cost: '100' }]);
    const run = (dryRun: boolean) =>
      client.workflow.execute('invoiceRun', {
        workflowId: `dunning-test-run:${other.id}:${dryRun}`,
        taskQueue,
        args: [{ period: '2026-10', dryRun, accountIds: [other.id], concurrency: 1, pageSize: 10 }],
      });
    expect(await run(true)).toMatchObject({ status: 'completed' });
    expect(await db('invoices').where({ account_id: other.id })).toEqual([]);
    expect(await run(false)).toMatchObject({ status: 'completed', invoiced: 1 });
    const runInvoice = (await db('invoices').where({ account_id: other.id }).first()).id as string;
    try {
      expect((await handle(runInvoice).describe()).status.name).toBe('RUNNING');
    } finally {
      await handle(runInvoice).terminate('test done').catch(() => undefined);
    }
  });
});

describe('the CLI', () => {
  it('backfills the start of an invoice finalized earlier, shows its timeline, pauses and resumes the account', async () => {
    const env = testEnv(config);
    const inv = await postpaidInvoice('Dunning CLI');
    const started = await runCliJson(['invoices', 'dunning', 'start', inv.invoiceId], env);
    expect(started).toMatchObject({ invoiceId: inv.invoiceId, workflowId: `dunning:${inv.invoiceId}`, started: true });
    try {
      expect(await runCliJson(['invoices', 'dunning', 'start', inv.invoiceId], env)).toMatchObject({ started: false });
      const t = await runCliJson(['invoices', 'dunning', inv.invoiceId], env);
      expect(t).toMatchObject({ invoiceId: inv.invoiceId, status: 'open', paused: false });
      expect(t.steps.map((x: { name: string }) => x.name)).toEqual(config.invoicing.dunningSchedule.map((x) => x.name));
      const human = await runCli(['invoices', 'dunning', inv.invoiceId], env);
      expect(human.stdout).toContain(`invoice ${inv.number}: open`);
      expect(human.stdout).toContain('notice-3d');

      const p = await runCliJson(['invoices', 'dunning', 'pause', '--account', inv.accountId, '--reason', 'waiting for the purchase order'], env);
      expect(p).toMatchObject({ paused: true, pause: { pausedBy: expect.stringMatching(/^cli:/), reason: 'waiting for the purchase order' } });
      expect((await runCliJson(['invoices', 'dunning', inv.invoiceId], env)).paused).toBe(true);
      const short = await runCli(['invoices', 'dunning', 'pause', '--account', inv.accountId, '--reason', 'no'], env);
      expect(short.code).not.toBe(0);
      expect(short.stderr).toMatch(/at least 3/);
      expect(await runCliJson(['invoices', 'dunning', 'resume', '--account', inv.accountId], env)).toEqual({ resumed: true, signalled: 1 });
      const none = await runCli(['invoices', 'dunning'], env);
      expect(none.code).not.toBe(0);
    } finally {
      await handle(inv.invoiceId).terminate('test done').catch(() => undefined);
    }
  });
});
