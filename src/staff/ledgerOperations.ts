import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { CONTRA } from '../billing/ledger';
import { Money, roundToMinorUnit, toAmountString } from '../billing/money';
import type { Config } from '../config';
import type { Db } from '../db/knex';
import { balanceOf, entriesOf, postEntry, reverseEntry, type LedgerEntryRow } from '../db/ledger';
import { DependencyUnavailableError, NotFoundError } from '../errors';
import { workflowIds } from '../temporal/conventions';
import type { TopUpInput, TopUpResult } from '../../workflows/messages';
import { adjustmentInput, balanceInput, createTopUpInput, refundInput, reversalInput } from './schemas';
import { validate } from './validate';

/**
 * Staff operations on credit: top-ups and grants (through the topUp workflow,
 * the same path as payment webhooks), refunds, adjustments and reversals
 * (direct ledger postings, each with a reason and the actor), and the balance
 * view. `actor` says who did it: 'staff:<token id>' or 'cli:<user>'.
 */
export interface LedgerOpsDeps {
  db: Db;
  billing: Config['billing'];
  /** Needed for top-ups only. */
  temporal?: { client: Client; taskQueue: string };
}

export const entryView = (e: LedgerEntryRow) => ({
  id: e.id,
  kind: e.kind,
  contra: e.contra,
  amount: toAmountString(new Money(e.amount)),
  balanceAfter: toAmountString(new Money(e.balance_after)),
  reference: `${e.reference_type}:${e.reference_id}`,
  idempotencyKey: e.idempotency_key,
  actor: e.actor,
  reason: e.reason,
  reversesEntryId: e.reverses_entry_id,
  createdAt: e.created_at.toISOString(),
});

/** Starts the top-up workflow, or finds the one already started for this payment (`existing`). */
export async function startTopUpWorkflow(
  client: Client,
  taskQueue: string,
  input: TopUpInput,
): Promise<{ handle: WorkflowHandle; existing: boolean }> {
  const workflowId = workflowIds.topUp(`${input.provider}:${input.paymentId}`);
  try {
    // A finished top-up is found, not run again; one that failed (say, an unknown account) may be retried.
    const handle = await client.workflow.start('topUp', {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    });
    return { handle, existing: false };
  } catch (err) {
    // Delivered before: the same workflow, credited once.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { handle: client.workflow.getHandle(workflowId), existing: true };
  }
}

/** Waits for a top-up's result; undefined when no worker finished it in time (it is still credited later, once). */
export async function awaitTopUp(handle: WorkflowHandle, timeoutMs: number): Promise<TopUpResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      handle.result() as Promise<TopUpResult>,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts (or finds) the top-up and waits for it; an error when no worker finished it in time. */
export async function startTopUp(client: Client, taskQueue: string, input: TopUpInput, timeoutMs = 30_000): Promise<TopUpResult> {
  const { handle, existing } = await startTopUpWorkflow(client, taskQueue, input);
  const result = await awaitTopUp(handle, timeoutMs);
  if (!result) {
    throw new DependencyUnavailableError(
      `top-up accepted as workflow ${handle.workflowId}, but no worker finished it within ${timeoutMs / 1000}s; it will be credited once a worker runs`,
    );
  }
  // `applied` says whether this call credited: a repeat finds the earlier run's entry.
  return existing ? { ...result, applied: false } : result;
}

export function ledgerOperations({ db, billing, temporal }: LedgerOpsDeps) {
  const opts = { overdraftAllowance: new Money(billing.overdraftAllowance) };
  const requireAccount = async (id: string) => {
    const a = await db('accounts').where({ id }).first('id', 'currency', 'plan', 'credit_limit');
    if (!a) throw new NotFoundError(`account ${id} does not exist`);
    return a;
  };

  /** A refund or adjustment: once per staff reference, with its reason and actor. */
  const postStaffEntry = async (kind: 'refund' | 'adjustment', accountId: string, amount: Money, reference: string, reason: string, actor: string) => {
    await requireAccount(accountId);
    const r = await postEntry(
      db,
      { accountId, kind, contra: CONTRA[kind], amount, idempotencyKey: `${kind}:${reference}`, referenceType: 'staff_reference', referenceId: reference, actor, reason },
      opts,
    );
    return { applied: r.applied, entry: entryView(r.entry) };
  };

  return {
    async createTopUp(raw: unknown, actor: string) {
      const input = validate(createTopUpInput, raw);
      const account = await requireAccount(input.accountId);
      if (!temporal) throw new DependencyUnavailableError('top-ups need Temporal (TEMPORAL_ADDRESS or a running dev server)');
      const result = await startTopUp(temporal.client, temporal.taskQueue, {
        paymentId: input.reference,
        provider: 'manual',
        accountId: input.accountId,
        amount: toAmountString(new Money(input.amount)),
        currency: account.currency,
        kind: input.kind,
        actor,
      });
      return { workflowId: workflowIds.topUp(`manual:${input.reference}`), ...result };
    },

    async refund(raw: unknown, actor: string) {
      const input = validate(refundInput, raw);
      return postStaffEntry('refund', input.accountId, new Money(input.amount).neg(), input.reference, input.reason, actor);
    },

    async adjust(raw: unknown, actor: string) {
      const input = validate(adjustmentInput, raw);
      return postStaffEntry('adjustment', input.accountId, new Money(input.amount), input.reference, input.reason, actor);
    },

    async reverse(raw: unknown, actor: string) {
      const input = validate(reversalInput, raw);
      const r = await reverseEntry(db, { entryId: input.entryId, reason: input.reason, actor, idempotencyKey: `reversal:${input.entryId}` });
      return { applied: r.applied, entry: entryView(r.entry) };
    },

    /** Balance, holds, what is spendable, recent entries (newest first, page with `before`), and unsettled usage. */
    async balance(raw: unknown) {
      const input = validate(balanceInput, raw);
      const account = await requireAccount(input.accountId);
      const b = (await balanceOf(db, input.accountId)) ?? { balance: '0', held: '0' };
      const entries = await entriesOf(db, input.accountId, { limit: input.limit, beforeId: input.before });
      const pending = await db('usage_events')
        .where({ account_id: input.accountId })
        .whereNull('settled_at')
        .first(db.raw('count(*)::int AS events'), db.raw('coalesce(sum(cost), 0)::text AS cost'));
      const balance = new Money(b.balance);
      const held = new Money(b.held);
      const floor = account.plan === 'prepaid' ? opts.overdraftAllowance : new Money(account.credit_limit);
      return {
        accountId: input.accountId,
        currency: account.currency,
        plan: account.plan,
        balance: toAmountString(balance),
        balanceRounded: roundToMinorUnit(balance, account.currency).toFixed(2),
        held: toAmountString(held),
        spendable: toAmountString(balance.minus(held).plus(floor)),
        pendingUsage: { events: pending?.events ?? 0, cost: toAmountString(new Money(pending?.cost ?? '0')) },
        entries: entries.map(entryView),
        nextPage: entries.length === input.limit ? { before: entries.at(-1)!.id } : null,
      };
    },
  };
}

export type LedgerOperations = ReturnType<typeof ledgerOperations>;
