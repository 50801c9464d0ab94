import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { CONTRA, spendable } from './ledger.rules';
import { Money, roundToMinorUnit, toAmountString } from '../shared/money.rules';
import type { Config } from '../config';
import type { Db, Trx } from '../db/knex';
import {
  balanceOf,
  entriesOf,
  ledgerAccount,
  lockBalances,
  meteringQuarantinePage,
  paymentReversalEntries,
  postEntries,
  postEntry,
  reverseEntry,
  topUpAccount,
  unsettledUsage,
  type LedgerEntryRow,
  type NewEntry,
} from './ledger.data';
import { bindCustomer, customerBoundElsewhere, insertPayment, insertWebhookRejection, lockAccountCustomer, paymentForReversal, paymentStatus } from './payments.data';
import { DependencyUnavailableError, NotFoundError } from '../errors';
import { workflowIds } from '../temporal/conventions';
import type { TopUpInput, TopUpResult } from '../../workflows/messages';
import { adjustmentInput, balanceInput, createTopUpInput, refundInput, reversalInput } from '../staff/schemas';
import { validate } from '../shared/validate';
import { recordTopUpEvents } from '../notifications/events.data';

/**
 * The ledger service. Staff operations on credit: top-ups and grants (through
 * the topUp workflow, the same path as payment webhooks), refunds, adjustments
 * and reversals (direct ledger postings, each with a reason and the actor),
 * and the balance view. `actor` says who did it: 'staff:<token id>' or
 * 'cli:<user>'. And what payments do: crediting a top-up (the topUp
 * workflow's activity), refunds and disputes (payment webhooks).
 */
export interface LedgerServiceDeps {
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

/**
 * A refund or dispute the payment provider reported for a payment (amounts in
 * major units, decimal strings). `refundedTotal` is cumulative, as Stripe's
 * `amount_refunded` is: each delivery asks for the payment to be reversed up
 * to it, so a repeated or late event posts only what is missing, or nothing.
 */
export type PaymentReversalEvent = { provider: string; paymentId: string; currency: string; customerId: string | null } & (
  | { type: 'refund'; refundedTotal: string }
  | { type: 'dispute_opened' | 'dispute_closed'; disputeId: string; amount: string; /** The provider's dispute status: 'needs_response', 'won', 'lost', 'warning_closed', ... */ status: string; reason: string }
);

export type PaymentReversalOutcome =
  | { status: 'posted'; entries: ReturnType<typeof entryView>[] }
  | { status: 'already_applied' }
  | { status: 'unknown_payment' }
  | { status: 'not_credited'; paymentStatus: string }
  | { status: 'refused'; reason: 'customer_mismatch' | 'currency_mismatch' };

const DISPUTE_REASON = /^[a-z_]{1,40}$/;

/**
 * Posts what a refund or dispute takes back from the account a payment
 * credited, exactly once per payment and event (idempotency keys
 * `payment-refund:{provider}:{payment}:{cumulative amount}`,
 * `payment-dispute:{provider}:{dispute}`, `payment-dispute-won:{provider}:{dispute}`):
 * - a refund debits the part of the cumulative refunded amount not debited yet;
 * - a dispute debits the disputed amount when it opens (an inquiry, status
 *   `warning_*`, withdraws no funds and debits nothing); closed as won, the
 *   debit is reversed (the funds were reinstated); lost, nothing more. A
 *   `closed` seen before its `created` posts the debit first, so the order of
 *   deliveries does not matter;
 * - together they never take back more than the payment credited.
 * The money has already left, so these debits are recorded whatever the
 * balance (the account may go below zero). The account's balance row is
 * locked first: concurrent deliveries for one payment run one after the other.
 */
export async function applyPaymentReversal(db: Db, e: PaymentReversalEvent): Promise<PaymentReversalOutcome> {
  return db.transaction(async (trx) => {
    const payment = await paymentForReversal(trx, e.provider, e.paymentId);
    if (!payment) return { status: 'unknown_payment' };
    // A payment refused at top-up (customer mismatch) credited nothing: there is nothing to take back.
    if (payment.status !== 'succeeded') return { status: 'not_credited', paymentStatus: payment.status };
    if (payment.currency !== e.currency.toUpperCase()) return { status: 'refused', reason: 'currency_mismatch' };
    if (payment.customer_id && e.customerId && payment.customer_id !== e.customerId) return { status: 'refused', reason: 'customer_mismatch' };

    const locked = await lockBalances(trx, [payment.account_id]);
    const prior = await paymentReversalEntries(trx, e.provider, e.paymentId);
    const paid = new Money(payment.amount);
    const taken = () => prior.reduce((sum, x) => sum.minus(x.amount), new Money(0));
    const posted: LedgerEntryRow[] = [];
    const post = async (entry: Omit<NewEntry, 'accountId' | 'contra' | 'referenceId' | 'actor'>) => {
      if (prior.some((x) => x.idempotency_key === entry.idempotencyKey)) return undefined;
      const [r] = await postEntries(
        trx,
        [{ ...entry, accountId: payment.account_id, contra: 'cash', referenceId: `${e.provider}:${e.paymentId}`, actor: `webhook:${e.provider}` }],
        { overdraftAllowance: new Money(0), locked, unconditional: true },
      );
      if (r!.applied) {
        posted.push(r!.entry);
        prior.push(r!.entry);
      }
      return r!.entry;
    };

    if (e.type === 'refund') {
      const target = Money.min(new Money(e.refundedTotal), paid);
      const refunded = prior.filter((x) => x.reference_type === 'payment_refund').reduce((sum, x) => sum.minus(x.amount), new Money(0));
      const amount = Money.min(target.minus(refunded), paid.minus(taken()));
      if (amount.gt(0)) {
        await post({
          kind: 'refund',
          amount: amount.neg(),
          idempotencyKey: `payment-refund:${e.provider}:${e.paymentId}:${toAmountString(target)}`,
          referenceType: 'payment_refund',
          reason: `refunded through ${e.provider}: ${toAmountString(target)} of ${toAmountString(paid)} ${payment.currency} in total`,
        });
      }
    } else {
      const debitKey = `payment-dispute:${e.provider}:${e.disputeId}`;
      let debit = prior.find((x) => x.idempotency_key === debitKey);
      const reason = DISPUTE_REASON.test(e.reason) ? e.reason : 'unspecified';
      if (!debit && !e.status.startsWith('warning_')) {
        const amount = Money.min(new Money(e.amount), paid.minus(taken()));
        if (amount.gt(0)) {
          debit = await post({
            kind: 'refund',
            amount: amount.neg(),
            idempotencyKey: debitKey,
            referenceType: 'payment_dispute',
            reason: `dispute ${e.disputeId} (${reason}): funds withdrawn by ${e.provider}`,
          });
        }
      }
      if (e.type === 'dispute_closed' && e.status === 'won' && debit) {
        await post({
          kind: 'reversal',
          amount: new Money(debit.amount).neg(),
          idempotencyKey: `payment-dispute-won:${e.provider}:${e.disputeId}`,
          referenceType: 'payment_dispute',
          reason: `dispute ${e.disputeId} won: funds reinstated by ${e.provider}`,
          reversesEntryId: debit.id,
        });
      }
    }
    return posted.length > 0 ? { status: 'posted', entries: posted.map(entryView) } : { status: 'already_applied' };
  });
}

/**
 * Whether the payment's customer may credit the account it names, in the
 * top-up's transaction (the account row locked, so two first payments cannot
 * both bind it). The account's customer is bound by its first payment that
 * carries one; after that only that customer's payments credit it, and a
 * customer bound to one account never credits another (UNIQUE). A refused
 * payment is recorded with status 'customer_mismatch' and credits nothing:
 * reconciliation counts only succeeded payments, and billing staff find it
 * in payments. The answer is the same on every retry and redelivery.
 */
async function checkPaymentCustomer(trx: Trx, input: TopUpInput): Promise<TopUpResult | undefined> {
  const customer = input.customerId ?? null;
  const refuse = async (): Promise<TopUpResult> => {
    await insertPayment(trx, input, 'customer_mismatch');
    const b = await balanceOf(trx, input.accountId);
    return { entryId: null, applied: false, balanceAfter: toAmountString(new Money(b?.balance ?? '0')), refused: 'customer_mismatch' };
  };
  const earlier = await paymentStatus(trx, input.provider, input.paymentId);
  if (earlier?.status === 'customer_mismatch') return refuse();
  if (earlier) return undefined;
  const account = await lockAccountCustomer(trx, input.accountId);
  const bound = account.stripe_customer_id;
  if (bound !== null) return bound === customer ? undefined : refuse();
  if (customer === null) return undefined;
  if (await customerBoundElsewhere(trx, customer, input.accountId)) return refuse();
  await bindCustomer(trx, input.accountId, customer);
  return undefined;
}

/**
 * Records a payment (for top-ups) and credits it once: the payment is
 * unique per provider and payment id, the ledger entry per idempotency key,
 * both in one transaction. The input is checked by the caller (the
 * recordTopUp activity): a positive amount, an account in its currency.
 */
export async function recordTopUp(db: Db, input: TopUpInput, opts: { overdraftAllowance: Money }): Promise<TopUpResult> {
  return db.transaction(async (trx) => {
    if (input.kind === 'topup' && input.provider !== 'manual') {
      const refused = await checkPaymentCustomer(trx, input);
      if (refused) return refused;
    }
    if (input.kind === 'topup') await insertPayment(trx, input, 'succeeded');
    const [r] = await postEntries(
      trx,
      [
        {
          accountId: input.accountId,
          kind: input.kind,
          contra: CONTRA[input.kind],
          amount: new Money(input.amount),
          idempotencyKey: `${input.kind}:${input.provider}:${input.paymentId}`,
          referenceType: input.kind === 'topup' ? 'payment' : 'staff_reference',
          referenceId: `${input.provider}:${input.paymentId}`,
          actor: input.actor,
        },
      ],
      opts,
    );
    // topup.succeeded and any balance level the credit crossed, once per entry (docs/notifications.md).
    if (r!.applied) {
      const e = r!.entry;
      await recordTopUpEvents(trx, {
        accountId: input.accountId,
        entryKey: e.idempotency_key,
        entryId: e.id,
        amount: new Money(e.amount),
        balanceAfter: new Money(e.balance_after),
        kind: input.kind,
        reference: `${input.provider}:${input.paymentId}`,
      });
    }
    return { entryId: r!.entry.id, applied: r!.applied, balanceAfter: toAmountString(new Money(r!.entry.balance_after)) };
  });
}

/** GET /billing/metering-quarantine: newest first, page with `before`; `all=true` includes resolved ones. */
export const meteringQuarantineInput = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
  all: z.enum(['true', 'false']).default('false'),
});

export function ledgerService({ db, billing, temporal }: LedgerServiceDeps) {
  const opts = { overdraftAllowance: new Money(billing.overdraftAllowance) };
  const requireAccount = async (id: string) => {
    const a = await ledgerAccount(db, id);
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
    /** Metering records PostgreSQL refused (see src/metering/batcher.ts), for billing staff to correct and meter by hand. */
    async meteringQuarantine(raw: unknown) {
      const input = validate(meteringQuarantineInput, raw);
      const rows = await meteringQuarantinePage(db, { limit: input.limit, ...(input.before ? { before: input.before } : {}), unresolvedOnly: input.all === 'false' });
      return {
        items: rows.map((r) => ({
          id: r.id,
          requestId: r.request_id,
          occurredAt: r.occurred_at,
          accountId: r.account_id,
          gatewayInstance: r.gateway_instance,
          errorCode: r.error_code,
          error: r.error_message,
          quarantinedAt: r.quarantined_at.toISOString(),
          resolvedAt: r.resolved_at?.toISOString() ?? null,
          resolvedBy: r.resolved_by,
          resolution: r.resolution,
          record: r.record,
        })),
        nextPage: rows.length === input.limit ? { before: rows.at(-1)!.id } : null,
      };
    },

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
      const pending = await unsettledUsage(db, input.accountId);
      const balance = new Money(b.balance);
      const held = new Money(b.held);
      return {
        accountId: input.accountId,
        currency: account.currency,
        plan: account.plan,
        balance: toAmountString(balance),
        balanceRounded: roundToMinorUnit(balance, account.currency).toFixed(2),
        held: toAmountString(held),
        spendable: toAmountString(spendable({ plan: account.plan, balance, held, creditLimit: new Money(account.credit_limit), overdraftAllowance: opts.overdraftAllowance })),
        pendingUsage: { events: pending?.events ?? 0, cost: toAmountString(new Money(pending?.cost ?? '0')) },
        entries: entries.map(entryView),
        nextPage: entries.length === input.limit ? { before: entries.at(-1)!.id } : null,
      };
    },

    /** A payment's refund or dispute, from the payment webhook (applyPaymentReversal). */
    applyPaymentReversal(e: PaymentReversalEvent): Promise<PaymentReversalOutcome> {
      return applyPaymentReversal(db, e);
    },

    /** A payment webhook delivery refused: recorded as a security event. */
    async recordWebhookRejection(row: { reason: string; request_id: string | undefined; source_ip: string | null; user_agent: string | null }): Promise<void> {
      await insertWebhookRejection(db, row);
    },

    /** The account a top-up names, for the recordTopUp activity's checks; undefined when there is none. */
    topUpAccount(accountId: string) {
      return topUpAccount(db, accountId);
    },

    /** Records a top-up's payment and credits it once (recordTopUp). */
    recordTopUp(input: TopUpInput): Promise<TopUpResult> {
      return recordTopUp(db, input, opts);
    },
  };
}

export type LedgerService = ReturnType<typeof ledgerService>;
