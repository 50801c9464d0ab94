import { spawn, type ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock';
import { dunningService, startDunning } from '../../src/invoicing/dunning.service';
import { validateDunningSteps, type DunningStep } from '../../src/shared/dunning.rules';
import { workflowIds } from '../../src/temporal/conventions';
import { BIN } from '../helpers/cli';
import { untilTrue } from '../helpers/eventually';
import { postpaidInvoiceFactory } from '../helpers/postpaidInvoice';
import { testConfig, testDb, testEnv } from '../helpers/env';

/**
 * The worker is killed (SIGKILL) in the middle of dunning runs and a new one
 * started: every step of every invoice runs exactly once: one dunning_steps
 * row, one account event and one queued email each; none twice, none skipped.
 * One invoice's step is caught inside its transaction by the kill (the test
 * holds the invoice's row lock): it rolls back and is retried once, after the
 * activity's start-to-close timeout (30 s).
 */
const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
let connection: Connection;
let client: Client;

beforeAll(async () => {
  connection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection, namespace: config.temporal.namespace });
});

afterAll(async () => {
  await connection?.close();
  await db.destroy();
});

// A worker process of its own that dies on its own would leave the test waiting: say so, with the end of its log.
let stopping = false;
function startWorker(): { child: ChildProcess; exited: Promise<unknown> } {
  const child = spawn(process.execPath, [BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4_000)));
  const exited = new Promise((r) => child.once('exit', r));
  void exited.then((code) => {
    if (!stopping) console.error(`worker ${child.pid} exited (${String(code)}) during the test; its log ended with:\n${log}`);
  });
  return { child, exited };
}

// Six steps 1.5 s apart, the first 1 s after the start.
const SCHEDULE: DunningStep[] = validateDunningSteps(
  ([['notice', -2_000], ['reminder', 1_000], ['reminder', 2_500], ['reminder', 4_000], ['reminder', 5_500], ['suspension', 7_000]] as const).map(([kind, ms]) => ({
    kind,
    offsetMs: ms,
    name: `${kind}${ms < 0 ? '-' : '+'}${Math.abs(ms)}ms`,
  })),
);
const INVOICES = 3;

describe('dunning under a killed worker', () => {
  it('runs every step of every invoice exactly once across a SIGKILL of the worker', async () => {
    const postpaidInvoice = await postpaidInvoiceFactory(db, config);
    const invoices = [];
    for (let i = 0; i < INVOICES; i++) invoices.push(await postpaidInvoice(`Dunning Kill ${i}`));
    // One more invoice whose first step is caught inside its transaction when the worker dies:
    // the test holds its row lock, so the step's activity waits in lockInvoice until after the kill.
    const held = await postpaidInvoice('Dunning Kill held');
    const lock = await db.transaction();
    await lock('invoices').where({ id: held.invoiceId }).forUpdate().first('id');
    const lockPid = Number((await lock.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    invoices.push(held);
    const ids = invoices.map((i) => i.invoiceId);
    const rows = async () => Number((await db('dunning_steps').whereIn('invoice_id', ids).count('* as n').first())!.n);
    const waitingOnLock = async () => Number((await db.raw('SELECT count(*) AS n FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))', [lockPid])).rows[0].n);

    let worker = startWorker();
    const anchorMs = Date.now() + 3_000;
    try {
      for (const inv of invoices) await startDunning(client, config.temporal.taskQueue, { ...inv, schedule: SCHEDULE, pauseRecheckMs: 600_000, anchorMs });
      await untilTrue(async () => (await rows()) >= INVOICES * 2 && (await waitingOnLock()) > 0, {
        timeoutMs: 60_000,
        intervalMs: 50,
        message: 'two steps of each invoice, and the held invoice step waiting in its transaction, before the kill',
      });
      stopping = true;
      worker.child.kill('SIGKILL');
      await worker.exited;
      stopping = false;
    } finally {
      await lock.commit();
    }
    const atKill = await rows();
    // The kill came in the middle: some steps ran, some had not; the held one had none.
    expect(atKill).toBeGreaterThanOrEqual(INVOICES * 2);
    expect(atKill).toBeLessThan(INVOICES * SCHEDULE.length);
    expect(await db('dunning_steps').where({ invoice_id: held.invoiceId })).toEqual([]);

    worker = startWorker();
    try {
      for (const id of ids) {
        const result = await client.workflow.getHandle(workflowIds.dunning(id)).result();
        expect(result).toEqual({ ended: 'completed', steps: SCHEDULE.map((s) => ({ name: s.name, outcome: s.kind === 'suspension' ? 'suspended' : 'sent' })) });
      }
    } finally {
      stopping = true;
      worker.child.kill('SIGTERM');
      await worker.exited;
    }

    expect(invoices).toHaveLength(INVOICES + 1);
    for (const inv of invoices) {
      const steps = await db('dunning_steps').where({ invoice_id: inv.invoiceId }).orderBy('due_at');
      // None skipped, none twice (the primary key would refuse a second row; each ran once, in order).
      expect(steps.map((s) => [s.step, s.outcome])).toEqual(SCHEDULE.map((s) => [s.name, s.kind === 'suspension' ? 'suspended' : 'sent']));
      const events = await db('account_events').where({ account_id: inv.accountId }).whereIn('type', ['invoice.payment_due', 'invoice.overdue', 'account.suspended']).orderBy('occurred_at');
      expect(events.map((e) => e.type)).toEqual(['invoice.payment_due', 'invoice.overdue', 'invoice.overdue', 'invoice.overdue', 'invoice.overdue', 'account.suspended']);
      expect(steps.map((s) => s.event_id)).toEqual(events.map((e) => e.id));
      const mails = await db('notification_outbox').whereIn('idempotency_key', events.map((e) => `account-event:${e.id}`)).select('idempotency_key');
      expect(mails.map((m) => m.idempotency_key).sort()).toEqual(events.map((e) => `account-event:${e.id}`).sort());
      // Nothing else was emailed to the account for this invoice.
      const subjects = await db('notification_outbox')
        .where((q) => q.where('subject', 'like', `%invoice ${inv.number} is overdue`).orWhere('subject', 'like', `%invoice ${inv.number} is due on%`))
        .select('subject');
      expect(subjects).toHaveLength(5);
      expect(await db('account_suspensions').where({ account_id: inv.accountId })).toHaveLength(1);
      expect((await db('accounts').where({ id: inv.accountId }).first()).status).toBe('suspended');
      // The timeline says the same.
      const t = await dunningService({ db, clock: systemClock, config }).timeline(inv.invoiceId);
      expect(t.steps.filter((s) => s.doneAt).map((s) => s.name)).toEqual(SCHEDULE.map((s) => s.name));
    }
  }, 180_000);
});
