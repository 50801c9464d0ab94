import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db, DbOrTrx } from '../db/knex';
import { DependencyUnavailableError, NotFoundError } from '../errors';
import { validate } from '../shared/validate';
import { Money } from '../shared/money.rules';
import { dunningAnchor, endsDunning, stepDueAt, stepEventType, validateDunningSteps, type DunningStep } from '../shared/dunning.rules';
import { workflowIds } from '../temporal/conventions';
import { recordAccountEvent } from '../notifications/events.data';
import { EVENT_LINKS } from '../notifications/events.rules';
import type { DunningInput, DunningStepOutcome } from '../../workflows/messages';
import { lockInvoice } from './invoicing.data';
import { paymentFacts } from './payments.data';
import { paymentState, type PaymentState } from './paymentStatus.rules';
import { openSuspension, suspendAccount } from './suspension.data';
import {
  accountEventIdByKey,
  accountExists,
  closeDunningPause,
  collectableInvoice,
  collectableInvoicesOf,
  dunningStepsOf,
  findDunningStep,
  insertDunningPause,
  insertDunningStep,
  lockAccountForDunning,
  openDunningPause,
  type CollectableInvoiceRow,
  type DunningStepRow,
} from './dunning.data';

/**
 * Dunning (docs/collections.md, "Dunning"): the steps of an invoice's
 * `dunning:{invoiceId}` workflow, staff pauses of an account's dunning, and
 * what was done and comes next. The workflow decides when; runStep decides
 * what, in one transaction under the invoice's row lock, which a payment takes
 * too: a payment committed first makes the step skip, so no reminder is
 * decided after a payment.
 */

/** At most this many invoices per account in the dunning view (the latest). */
export const DUNNING_VIEW_INVOICES = 24;

const accountId = z.uuid({ error: 'accountId must be an account id (UUID)' });
const invoiceId = z.uuid({ error: 'invoiceId must be an invoice id (UUID)' });
const reason = z
  .string({ error: 'reason must say why dunning is paused' })
  .trim()
  .min(3, 'reason must say why (at least 3 characters)')
  .max(500, 'reason must be at most 500 characters')
  // eslint-disable-next-line no-control-regex
  .refine((v) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(v), 'reason must not contain control characters');

/** The admin API's body of a pause. */
export const pauseDunningBody = z.strictObject({ reason });
export const pauseDunningInput = z.strictObject({ accountId, reason, actor: z.string().min(1).max(200) });
export const resumeDunningInput = z.strictObject({ accountId, actor: z.string().min(1).max(200) });

export interface DunningTimelineStep {
  name: string;
  kind: DunningStep['kind'];
  /** When the step is (or was) due, ISO. */
  dueAt: string;
  /** When it ran, ISO; null while it has not. */
  doneAt: string | null;
  outcome: DunningStepRow['outcome'] | null;
}

export interface DunningDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'invoicing'>;
}

/** What starting an invoice's dunning needs; null for an invoice that is not collected (not a finalized postpaid invoice with something due). */
export interface DunningStart {
  invoiceId: string;
  accountId: string;
  dueDate: string;
}

const iso = (d: Date | string) => new Date(d).toISOString();

export function dunningService({ db, clock, config }: DunningDeps) {
  const today = () => clock.now().toISOString().slice(0, 10);

  async function stateOf(inv: CollectableInvoiceRow, dbOrTrx: DbOrTrx = db): Promise<PaymentState | null> {
    const f = (await paymentFacts(dbOrTrx, [inv.id])).get(inv.id) ?? { paid: '0', credited: '0', writtenOff: false };
    return paymentState(
      { kind: inv.kind, plan: inv.plan, status: inv.status, currency: inv.currency, amountDue: inv.amount_due, dueDate: inv.due_date, ...f },
      today(),
    );
  }

  /** The invoice's steps: the schedule's (from its due date) and any other that ran (a schedule given as input); after dunning ended, only those that ran. */
  function stepsOf(inv: CollectableInvoiceRow, rows: DunningStepRow[], ended: boolean): DunningTimelineStep[] {
    const byName = new Map(rows.map((r) => [r.step, r]));
    const out: DunningTimelineStep[] = rows.map((r) => ({ name: r.step, kind: r.kind, dueAt: iso(r.due_at), doneAt: iso(r.done_at), outcome: r.outcome }));
    if (!ended && inv.due_date) {
      const anchor = dunningAnchor(inv.due_date);
      for (const s of config.invoicing.dunningSchedule) {
        if (byName.has(s.name)) continue;
        out.push({ name: s.name, kind: s.kind, dueAt: new Date(stepDueAt(anchor, s)).toISOString(), doneAt: null, outcome: null });
      }
    }
    return out.sort((a, b) => a.dueAt.localeCompare(b.dueAt) || a.name.localeCompare(b.name));
  }

  const hasEnded = (state: PaymentState | null, rows: DunningStepRow[]) =>
    endsDunning(state?.status) || rows.some((r) => r.outcome === 'skipped_settled' || r.kind === 'suspension');

  async function mustExist(id: string) {
    if (!(await accountExists(db, id))) throw new NotFoundError(`account ${id} does not exist`);
  }

  return {
    /**
     * Runs one step of an invoice's schedule, once: a step that already ran
     * returns what it did (a retried activity sends nothing twice). `paused`
     * writes nothing: the workflow runs the step again after a resume.
     */
    async runStep(input: { invoiceId: string; step: DunningStep; anchorMs: number }): Promise<{ outcome: DunningStepOutcome }> {
      const [step] = validateDunningSteps([input.step]);
      const id = validate(invoiceId, input.invoiceId);
      return db.transaction(async (trx) => {
        const inv = (await lockInvoice(trx, id)) as CollectableInvoiceRow | undefined;
        if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
        const earlier = await findDunningStep(trx, id, step!.name);
        if (earlier) return { outcome: earlier.outcome };
        const row = (outcome: DunningStepRow['outcome'], eventId: string | null) =>
          insertDunningStep(trx, {
            invoice_id: id,
            step: step!.name,
            account_id: inv.account_id,
            kind: step!.kind,
            due_at: new Date(stepDueAt(input.anchorMs, step!)),
            done_at: clock.now(),
            outcome,
            event_id: eventId,
          });

        const state = await stateOf(inv, trx);
        if (!state || endsDunning(state.status)) {
          await row('skipped_settled', null);
          return { outcome: 'skipped_settled' as const };
        }
        if (await openDunningPause(trx, inv.account_id)) return { outcome: 'paused' as const };

        const facts = {
          invoiceId: id,
          number: inv.number,
          step: step!.name,
          amountDue: new Money(inv.amount_due).toFixed(inv.currency === 'JPY' ? 0 : 2),
          amountPaid: state.amountPaid,
          outstanding: state.outstanding,
          currency: inv.currency,
          dueDate: inv.due_date,
          daysOverdue: state.daysOverdue,
        };
        if (step!.kind === 'suspension') {
          const s = await suspendAccount(trx, {
            accountId: inv.account_id,
            invoiceId: id,
            reason: `invoice ${inv.number ?? id} unpaid: ${state.outstanding} ${inv.currency} outstanding, ${state.daysOverdue} days after its due date ${inv.due_date ?? '-'}`,
            actor: `dunning:${id}`,
            data: { ...facts, links: { credits: EVENT_LINKS.credits } },
          });
          const outcome = s.suspended ? ('suspended' as const) : ('skipped_already_suspended' as const);
          await row(outcome, s.eventId);
          return { outcome };
        }
        const dedupeKey = `dunning:${id}:${step!.name}`;
        const [event] = await recordAccountEvent(trx, {
          accountId: inv.account_id,
          type: stepEventType(step!.kind),
          dedupeKey,
          data: { accountId: inv.account_id, ...facts, links: { credits: EVENT_LINKS.credits } },
        });
        await row('sent', event?.id ?? (await accountEventIdByKey(trx, dedupeKey)));
        return { outcome: 'sent' as const };
      });
    },

    /** Whether the invoice no longer needs collecting (paid, void, written off): the workflow's check after a settled signal. */
    async invoiceSettled(input: { invoiceId: string }): Promise<{ settled: boolean; status: string | null }> {
      const inv = await collectableInvoice(db, validate(invoiceId, input.invoiceId));
      if (!inv) return { settled: true, status: null };
      const state = await stateOf(inv);
      return { settled: endsDunning(state?.status), status: state?.status ?? null };
    },

    /** What starting the invoice's dunning needs, or null when it is not collected. */
    async startInputFor(id: string): Promise<DunningStart | null> {
      const inv = await collectableInvoice(db, validate(invoiceId, id));
      if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
      if (inv.kind !== 'invoice' || inv.plan !== 'postpaid' || inv.status !== 'finalized' || !inv.due_date || !new Money(inv.amount_due).gt(0)) return null;
      return { invoiceId: inv.id, accountId: inv.account_id, dueDate: inv.due_date };
    },

    /** Pauses dunning for the account (who, why, when); once: pausing a paused account returns the open pause (`paused: false`). */
    async pause(raw: { accountId: unknown; reason: unknown; actor: string }) {
      const input = validate(pauseDunningInput, raw);
      return db.transaction(async (trx) => {
        if (!(await lockAccountForDunning(trx, input.accountId))) throw new NotFoundError(`account ${input.accountId} does not exist`);
        const inserted = await insertDunningPause(trx, { account_id: input.accountId, reason: input.reason, paused_by: input.actor, paused_at: clock.now() });
        const pause = inserted ?? (await openDunningPause(trx, input.accountId))!;
        return { paused: !!inserted, pause: { id: pause.id, accountId: pause.account_id, reason: pause.reason, pausedBy: pause.paused_by, pausedAt: iso(pause.paused_at) } };
      });
    },

    /** Ends the account's pause (who, when); `invoiceIds`: the invoices whose workflows may be waiting (to signal). */
    async resume(raw: { accountId: unknown; actor: string }): Promise<{ resumed: boolean; invoiceIds: string[] }> {
      const input = validate(resumeDunningInput, raw);
      const resumed = await db.transaction(async (trx) => {
        if (!(await lockAccountForDunning(trx, input.accountId))) throw new NotFoundError(`account ${input.accountId} does not exist`);
        return !!(await closeDunningPause(trx, input.accountId, input.actor, clock.now()));
      });
      const invoices = await collectableInvoicesOf(db, input.accountId, DUNNING_VIEW_INVOICES);
      return { resumed, invoiceIds: invoices.filter((i) => i.status === 'finalized').map((i) => i.id) };
    },

    /** The account's dunning: its pause, its suspension, and per invoice (the latest 24) what was sent and what comes next. */
    async accountDunning(raw: unknown) {
      const id = validate(accountId, raw);
      await mustExist(id);
      const [pause, suspension, invoices] = await Promise.all([
        openDunningPause(db, id),
        openSuspension(db, id),
        collectableInvoicesOf(db, id, DUNNING_VIEW_INVOICES),
      ]);
      const rows = await dunningStepsOf(db, invoices.map((i) => i.id));
      const facts = await paymentFacts(db, invoices.map((i) => i.id));
      return {
        accountId: id,
        paused: pause ? { reason: pause.reason, pausedBy: pause.paused_by, pausedAt: iso(pause.paused_at) } : null,
        suspension: suspension
          ? { reason: suspension.reason, invoiceId: suspension.invoice_id, suspendedAt: iso(suspension.suspended_at), suspendedBy: suspension.suspended_by }
          : null,
        invoices: invoices.map((inv) => {
          const f = facts.get(inv.id)!;
          const state = paymentState({ kind: inv.kind, plan: inv.plan, status: inv.status, currency: inv.currency, amountDue: inv.amount_due, dueDate: inv.due_date, ...f }, today());
          const own = rows.filter((r) => r.invoice_id === inv.id);
          return {
            invoiceId: inv.id,
            number: inv.number,
            status: state?.status ?? null,
            outstanding: state?.outstanding ?? '0',
            currency: inv.currency,
            dueDate: inv.due_date,
            steps: stepsOf(inv, own, hasEnded(state, own)),
          };
        }),
      };
    },

    /** One invoice's dunning timeline: what was sent and what comes next. */
    async timeline(raw: unknown) {
      const id = validate(invoiceId, raw);
      const inv = await collectableInvoice(db, id);
      if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
      const rows = await dunningStepsOf(db, [id]);
      const state = await stateOf(inv);
      const collected = inv.kind === 'invoice' && inv.plan === 'postpaid';
      return {
        invoiceId: id,
        accountId: inv.account_id,
        number: inv.number,
        status: state?.status ?? null,
        steps: collected ? stepsOf(inv, rows, hasEnded(state, rows)) : [],
        paused: !!(await openDunningPause(db, inv.account_id)),
      };
    },
  };
}

export type DunningService = ReturnType<typeof dunningService>;

/**
 * Starts `dunning:{invoiceId}` (idempotent by its id: a running or completed
 * one is left alone, `started: false`; one that failed or was terminated is
 * started again, and its steps that ran return what they did). `anchorMs`
 * overrides the due date's anchor (tests run a schedule in seconds).
 */
export async function startDunning(
  client: Client,
  taskQueue: string,
  s: { invoiceId: string; accountId: string; dueDate: string; schedule: readonly DunningStep[]; pauseRecheckMs: number; anchorMs?: number },
): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = workflowIds.dunning(s.invoiceId);
  const input: DunningInput = {
    invoiceId: s.invoiceId,
    accountId: s.accountId,
    anchorMs: s.anchorMs ?? dunningAnchor(s.dueDate),
    steps: validateDunningSteps(s.schedule.map((x) => ({ name: x.name, kind: x.kind, offsetMs: x.offsetMs }))),
    pauseRecheckMs: s.pauseRecheckMs,
  };
  try {
    await client.workflow.start('dunning', { workflowId, taskQueue, args: [input], workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY' });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

const notRunning = (err: unknown) => err instanceof WorkflowNotFoundError || (err as Error)?.name === 'WorkflowNotFoundError';

/** Tells the invoice's dunning that its collection changed (a payment, a credit note, a write-off, a void); a workflow that is not running is ignored. */
export async function signalDunningSettled(client: Client, invoiceId: string, cause: 'payment' | 'credit_note' | 'write_off' | 'void' | 'staff'): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowIds.dunning(invoiceId)).signal('dunningSettled', { cause });
    return true;
  } catch (err) {
    if (notRunning(err)) return false;
    throw err;
  }
}

/** Tells the account's dunning workflows (of these invoices) that dunning was resumed; returns how many were running. */
export async function signalDunningResumed(client: Client, _accountId: string, invoiceIds: readonly string[]): Promise<number> {
  let signalled = 0;
  for (const id of invoiceIds.slice(0, DUNNING_VIEW_INVOICES)) {
    try {
      await client.workflow.getHandle(workflowIds.dunning(id)).signal('dunningResumed');
      signalled += 1;
    } catch (err) {
      if (!notRunning(err)) throw err;
    }
  }
  return signalled;
}

/**
 * What the admin API, the console and the CLI call: the service plus its
 * Temporal side (resume signals the waiting workflows; start needs Temporal).
 */
export function dunningOperations(deps: DunningDeps & { temporal?: { client: Client; taskQueue: string } }) {
  const service = dunningService(deps);
  const temporal = () => {
    if (!deps.temporal) throw new DependencyUnavailableError('starting dunning needs Temporal');
    return deps.temporal;
  };
  return {
    account: (id: unknown) => service.accountDunning(id),
    timeline: (invoiceId: unknown) => service.timeline(invoiceId),
    /** Pausing signals nothing: each workflow finds the pause at its next step and waits there. */
    pause: (id: unknown, body: unknown, actor: string) => {
      const b = validate(pauseDunningBody, body ?? {});
      return service.pause({ accountId: id, reason: b.reason, actor });
    },
    async resume(id: unknown, actor: string) {
      const r = await service.resume({ accountId: id, actor });
      // Without Temporal the workflows look again after DUNNING_PAUSE_RECHECK_MS.
      const signalled = deps.temporal ? await signalDunningResumed(deps.temporal.client, String(id), r.invoiceIds) : 0;
      return { resumed: r.resumed, signalled };
    },
    /** Starts the invoice's dunning with the configured schedule (a backfill for an invoice finalized earlier). */
    async start(invoiceId: string) {
      const t = temporal();
      const s = await service.startInputFor(invoiceId);
      if (!s) return { invoiceId, started: false, reason: 'not a finalized postpaid invoice with something due' };
      const r = await startDunning(t.client, t.taskQueue, { ...s, schedule: deps.config.invoicing.dunningSchedule, pauseRecheckMs: deps.config.invoicing.dunningPauseRecheckMs });
      return { invoiceId, ...r };
    },
  };
}

export type DunningOperations = ReturnType<typeof dunningOperations>;
