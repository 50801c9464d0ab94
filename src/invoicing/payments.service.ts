import { z } from 'zod';
import type { Client } from '@temporalio/client';
import type { Clock } from '../clock';
import type { Db, DbOrTrx, Trx } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { postEntries } from '../ledger/ledger.data';
import { recordAccountEvent } from '../notifications/events.data';
import { decimalPlaces, isDecimalString, MAX_STAFF_AMOUNT, Money, toAmountString, withinStaffAmountBound } from '../shared/money.rules';
import { validate } from '../shared/validate';
import { signalDunningSettled } from './dunning.service';
import { lockInvoice } from './invoicing.data';
import { findPaymentRequest } from './paymentRequests.data';
import { paymentRequestView } from './paymentRequests.service';
import {
  accountCustomer,
  applicationsOf,
  findApplicationByReference,
  findLedgerEntryByKey,
  findWriteOff,
  insertApplication,
  insertWriteOff,
  paymentFacts,
  receivables,
  type PaymentApplicationRow,
  type WriteOffRow,
} from './payments.data';
import { agingReport, amountOutstanding, paymentState, splitPayment, usageCreditRestored } from './paymentStatus.rules';
import { reinstateIfSettled } from './suspension.data';

/**
 * Collections (docs/collections.md): payments applied to postpaid invoices
 * (bank transfers billing staff record, and card payments the payment
 * webhook reports), write-offs, the payment status of an invoice and the
 * receivables aging report. `actor` is who did it ('staff:<token id>',
 * 'cli:<user>', 'webhook:stripe').
 *
 * Every payment goes through applyPayment, in the transaction that holds the
 * invoice's row lock: what is outstanding is applied, the rest credited to
 * the account in the ledger, and when that pays the invoice in full, the
 * `invoice.paid` event is recorded and the account reinstated if that was
 * the last unpaid invoice it was suspended for. After the commit the
 * invoice's dunning workflow is told (with Temporal; without, it sees the
 * status before its next step, which it reads first).
 */

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const isRealDate = (v: string) => {
  if (!DATE.test(v)) return false;
  const t = Date.parse(`${v}T00:00:00Z`); // NaN for month 13; rolls 02-30 over to March, caught by the comparison
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === v;
};
const date = (what: string) =>
  z
    .string({ error: `${what} must be a date YYYY-MM-DD` })
    .trim()
    .max(10, `${what} must be a date YYYY-MM-DD`)
    .refine(isRealDate, `${what} must be a date YYYY-MM-DD`);

export const invoiceIdInput = z.uuid({ error: 'id must be an invoice id (UUID)' });

/** A bank transfer: a positive amount in cents at most, the day it arrived, the bank's reference. */
export const recordPaymentBody = z.strictObject({
  amount: z
    .string({ error: 'amount must be a decimal string such as "120.50"' })
    .trim()
    .max(32, 'amount is too long')
    .refine(isDecimalString, 'amount must be a decimal string such as "120.50"')
    .refine((v) => !isDecimalString(v) || decimalPlaces(v) <= 2, 'amount may have at most 2 decimal places')
    .refine((v) => !isDecimalString(v) || new Money(v).gt(0), 'amount must be positive')
    .refine((v) => !isDecimalString(v) || withinStaffAmountBound(v), `amount must be at most ${MAX_STAFF_AMOUNT}`),
  paidOn: date('paidOn'),
  reference: z
    .string({ error: 'reference must be the transfer reference from the bank statement' })
    .trim()
    .min(1, 'reference must not be empty')
    .max(100, 'reference must be at most 100 characters')
    .regex(/^[A-Za-z0-9][A-Za-z0-9 ._:/#-]*$/, 'reference may hold letters, digits, spaces and . _ : / # - only'),
});

export const writeOffBody = z.strictObject({
  reason: z.string({ error: 'reason must say why' }).trim().min(3, 'reason must say why (at least 3 characters)').max(500, 'reason must be at most 500 characters'),
});

export const agingInput = z.strictObject({
  asOf: date('asOf').optional(),
  accountId: z.uuid({ error: 'accountId must be an account id (UUID)' }).optional(),
  format: z.enum(['json', 'csv']).default('json'),
});

const SOURCE = 'bank_transfer';
/** Who reinstates an account when a payment settles its invoices (account_suspensions.reinstated_by). */
const PAYMENT_ACTOR = 'system:payment';
const cents = (v: string | Money, currency: string) => new Money(v).toFixed(currency === 'JPY' ? 0 : 2);

const applicationView = (a: PaymentApplicationRow, currency: string) => ({
  id: a.id,
  invoiceId: a.invoice_id,
  accountId: a.account_id,
  source: a.source,
  reference: a.reference,
  paidOn: a.paid_on,
  amount: cents(a.amount, currency),
  receivedAmount: cents(a.received_amount, currency),
  creditedToAccount: cents(new Money(a.received_amount).minus(a.amount), currency),
  creditEntryId: a.credit_entry_id === null ? null : Number(a.credit_entry_id),
  recordedBy: a.recorded_by,
  recordedAt: a.created_at.toISOString(),
});

const writeOffView = (w: WriteOffRow, currency: string) => ({
  amount: cents(w.amount, currency),
  reason: w.reason,
  writtenOffBy: w.written_off_by,
  writtenOffAt: w.written_off_at.toISOString(),
});

const applicationOutcome = (a: PaymentApplicationRow, currency: string) => ({
  invoiceId: a.invoice_id,
  applicationId: a.id,
  amount: cents(a.amount, currency),
  creditedToAccount: cents(new Money(a.received_amount).minus(a.amount), currency),
  creditEntryId: a.credit_entry_id === null ? null : Number(a.credit_entry_id),
  paymentStatus: null as string | null,
});

type InvoiceRow = { id: string; kind: string; plan: string; status: string; currency: string; amount_due: string; due_date: string | null; number: string | null; account_id: string; subtotal?: string };

/** The payment status of invoice rows on `today` (null for what is not collected), by invoice id. */
export async function paymentStates(db: DbOrTrx, invoices: readonly InvoiceRow[], today: string) {
  const facts = await paymentFacts(
    db,
    invoices.filter((i) => i.kind === 'invoice' && i.plan === 'postpaid').map((i) => i.id),
  );
  return new Map(
    invoices.map((i) => {
      const f = facts.get(i.id);
      const state = f
        ? paymentState({ kind: i.kind, plan: i.plan, status: i.status, currency: i.currency, amountDue: i.amount_due, dueDate: i.due_date, ...f }, today)
        : null;
      return [i.id, state ? { ...state, amountPaid: cents(state.amountPaid, i.currency), outstanding: cents(state.outstanding, i.currency) } : null];
    }),
  );
}

/** A payment provider's payment that names an invoice (a PaymentIntent whose metadata has invoice_id), as the webhook saw it. */
export const providerPaymentInput = z.strictObject({
  provider: z.literal('stripe'),
  /** The provider's payment id (a PaymentIntent id): the application's reference. */
  paymentId: z.string().regex(/^[A-Za-z0-9_]{1,255}$/, 'paymentId must be a provider id'),
  invoiceId: z.uuid({ error: 'invoice_id must be an invoice id (UUID)' }),
  accountId: z.uuid({ error: 'account_id must be an account id (UUID)' }),
  amount: z
    .string()
    .refine(isDecimalString, 'amount must be a decimal string')
    .refine((v) => !isDecimalString(v) || new Money(v).gt(0), 'amount must be positive')
    .refine((v) => !isDecimalString(v) || withinStaffAmountBound(v), `amount must be at most ${MAX_STAFF_AMOUNT}`),
  currency: z.string().regex(/^[A-Za-z]{3}$/, 'currency must be an ISO 4217 code'),
  /** The day the provider reports the payment (its event's creation, UTC); a later day than today is taken as today. */
  paidOn: date('paidOn'),
  customerId: z.string().regex(/^[A-Za-z0-9_]{1,255}$/).nullable(),
});
export type ProviderPaymentInput = z.input<typeof providerPaymentInput>;

/** Why a provider's payment is not applied: it does not match the invoice it names (the webhook rejects it). */
export type ProviderPaymentRefusal = 'unknown_invoice' | 'account_mismatch' | 'not_collectable' | 'currency_mismatch' | 'customer_mismatch';

export type ProviderPaymentOutcome =
  | {
      /** 'applied' now, or 'already_applied' by an earlier delivery. */
      status: 'applied' | 'already_applied';
      invoiceId: string;
      applicationId: string;
      amount: string;
      creditedToAccount: string;
      creditEntryId: number | null;
      /** The invoice's payment status after it. */
      paymentStatus: string | null;
    }
  | {
      /** The invoice was already paid or void: the whole amount credited to the account, now or by an earlier delivery. */
      status: 'credited_to_account' | 'already_credited';
      invoiceId: string;
      reason: 'invoice_paid' | 'invoice_void';
      creditedToAccount: string;
      creditEntryId: number;
    }
  | { status: 'refused'; reason: ProviderPaymentRefusal };

interface PaymentToApply {
  source: 'bank_transfer' | 'stripe';
  reference: string;
  paidOn: string;
  received: Money;
  actor: string;
  /** How the payment is named in a ledger entry's reason, e.g. `bank transfer NL-42`. */
  label: string;
}

/**
 * Applies a payment to a postpaid invoice that is locked (lockInvoice), not
 * void and has something outstanding, in the caller's transaction: what is
 * outstanding is applied, the rest credited to the account as a ledger
 * adjustment (key `invoice-overpayment:{source}:{reference}`). When it pays
 * the invoice in full: the `invoice.paid` event (once per invoice) and
 * reinstateIfSettled. `settled` says whether it did.
 */
async function applyPayment(trx: Trx, inv: InvoiceRow, p: PaymentToApply): Promise<{ applicationId: string; settled: boolean }> {
  const facts = (await paymentFacts(trx, [inv.id])).get(inv.id)!;
  const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
  const split = splitPayment(toAmountString(p.received), toAmountString(outstanding));

  let creditEntryId: number | null = null;
  if (new Money(split.excess).gt(0)) {
    const [r] = await postEntries(
      trx,
      [
        {
          accountId: inv.account_id,
          kind: 'adjustment',
          contra: 'adjustments',
          amount: new Money(split.excess),
          idempotencyKey: `invoice-overpayment:${p.source}:${p.reference}`,
          referenceType: 'invoice_payment',
          referenceId: `${p.source}:${p.reference}`,
          actor: p.actor,
          reason: `overpayment of invoice ${inv.number} by ${p.label} (${p.paidOn}): ${cents(split.excess, inv.currency)} of ${cents(p.received, inv.currency)} ${inv.currency} credited to the account`,
        },
      ],
      { overdraftAllowance: new Money(0) },
    );
    creditEntryId = r!.entry.id;
  }
  // The usage credit this payment gives back (usageCreditRestored): postpaid balances rise as invoices are paid.
  const subtotal = inv.subtotal ?? ((await trx('invoices').where({ id: inv.id }).first('subtotal')) as { subtotal: string }).subtotal;
  const restored = usageCreditRestored({ amountDue: inv.amount_due, subtotal, currency: inv.currency }, facts.paid, toAmountString(new Money(facts.paid).plus(split.applied)));
  if (restored.gt(0)) {
    await postEntries(
      trx,
      [
        {
          accountId: inv.account_id,
          kind: 'adjustment',
          contra: 'cash',
          amount: restored,
          idempotencyKey: `invoice-usage-credit:${p.source}:${p.reference}`,
          referenceType: 'invoice_usage_credit',
          referenceId: `${inv.id}:${p.source}:${p.reference}`,
          actor: p.actor,
          reason: `invoice ${inv.number} paid by ${p.label} (${p.paidOn}): ${cents(restored, inv.currency)} ${inv.currency} of its usage credit given back`,
        },
      ],
      { overdraftAllowance: new Money(0) },
    );
  }
  const row = await insertApplication(trx, {
    invoice_id: inv.id,
    account_id: inv.account_id,
    amount: split.applied,
    received_amount: toAmountString(p.received),
    source: p.source,
    reference: p.reference,
    paid_on: p.paidOn,
    recorded_by: p.actor,
    credit_entry_id: creditEntryId,
  });
  // Recorded at the same moment for another invoice: roll this one back (the ledger credit with it).
  if (!row) throw new ConflictError(`reference ${p.reference} was recorded concurrently; try again to see it`);

  const settled = new Money(split.applied).eq(outstanding);
  if (settled) {
    const paid = new Money(facts.paid).plus(split.applied);
    await recordAccountEvent(trx, {
      accountId: inv.account_id,
      type: 'invoice.paid',
      dedupeKey: `invoice.paid:${inv.id}`,
      data: { accountId: inv.account_id, invoiceId: inv.id, number: inv.number, amountPaid: cents(paid, inv.currency), currency: inv.currency, paidOn: p.paidOn },
    });
    await reinstateIfSettled(trx, inv.account_id, PAYMENT_ACTOR);
  }
  return { applicationId: row.id, settled };
}

export function invoicePayments({ db, clock, temporal }: { db: Db; clock: Clock; temporal?: { client: Client; taskQueue: string } | undefined }) {
  const today = () => clock.now().toISOString().slice(0, 10);

  /**
   * Tells the invoice's dunning workflow, after the commit. Best effort: a
   * workflow that is not running is ignored, and without Temporal (or when it
   * does not answer) the workflow reads the invoice's status before its next
   * step anyway, so it sends nothing more for a settled invoice.
   */
  async function tellDunning(invoiceId: string, cause: 'payment' | 'write_off'): Promise<void> {
    if (!temporal) return;
    await signalDunningSettled(temporal.client, invoiceId, cause).catch(() => false);
  }

  /** The invoice, locked, if it is a finalized or void postpaid invoice; otherwise the reason it cannot be collected. */
  async function collectable(trx: DbOrTrx, id: string): Promise<InvoiceRow> {
    const inv = (await lockInvoice(trx, id)) as InvoiceRow | undefined;
    if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
    if (inv.kind !== 'invoice') throw new ConflictError(`${inv.number ?? id} is a credit note, not an invoice`);
    if (inv.plan !== 'postpaid') throw new ConflictError(`invoice ${inv.number ?? id} is prepaid: it was paid with credits and is not collected`);
    if (inv.status === 'draft') throw new ConflictError(`invoice ${id} is a draft`);
    return inv;
  }

  async function status(id: string) {
    const inv = (await db('invoices').where({ id }).first()) as InvoiceRow | undefined;
    if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
    const state = (await paymentStates(db, [inv], today())).get(id) ?? null;
    const writeOff = await findWriteOff(db, id);
    const request = await findPaymentRequest(db, id);
    return {
      invoiceId: inv.id,
      number: inv.number,
      accountId: inv.account_id,
      currency: inv.currency,
      amountDue: cents(inv.amount_due, inv.currency),
      dueDate: inv.due_date,
      payment: state,
      applications: (await applicationsOf(db, id)).map((a) => applicationView(a, inv.currency)),
      writeOff: writeOff ? writeOffView(writeOff, inv.currency) : null,
      // The payment provider's request for this invoice (a PaymentIntent), if one was made.
      paymentRequest: request ? paymentRequestView(request) : null,
    };
  }

  return {
    /** An invoice's payment status, its applications (oldest first) and its write-off. */
    async get(invoiceId: string) {
      const id = validate(invoiceIdInput, invoiceId);
      return status(id);
    },

    /**
     * Records a bank transfer against one postpaid invoice, once per
     * reference: the same reference again with the same amount, day and
     * invoice returns the first record (`applied: false`); with anything else
     * it is a conflict. The part still outstanding is applied to the invoice;
     * the rest is credited to the account by a ledger adjustment keyed by
     * the reference, in the same transaction.
     */
    async recordPayment(invoiceId: string, raw: unknown, actor: string) {
      const input = validate(recordPaymentBody, raw);
      const id = validate(invoiceIdInput, invoiceId);
      if (input.paidOn > today()) throw new ValidationError('invalid input: paidOn: must not be in the future', [{ field: 'paidOn', message: 'must not be in the future' }]);
      const received = new Money(input.amount);

      const sameAsRecorded = (a: PaymentApplicationRow) => {
        if (a.invoice_id === id && new Money(a.received_amount).eq(received) && a.paid_on === input.paidOn) return;
        throw new ConflictError(
          `reference ${input.reference} was already recorded (${toAmountString(new Money(a.received_amount))} on ${a.paid_on} for invoice ${a.invoice_id}); a different transfer needs its own reference`,
          { applicationId: a.id },
        );
      };

      const outcome = await db.transaction(async (trx) => {
        const inv = await collectable(trx, id);
        const earlier = await findApplicationByReference(trx, SOURCE, input.reference);
        if (earlier) {
          sameAsRecorded(earlier);
          return { applied: false, applicationId: earlier.id, settled: false };
        }
        if (inv.status === 'void') throw new ConflictError(`invoice ${inv.number} is void (credited by a credit note): nothing is due on it`);
        const facts = (await paymentFacts(trx, [inv.id])).get(inv.id)!;
        const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
        if (outstanding.isZero()) throw new ConflictError(`invoice ${inv.number} has nothing outstanding; credit the account with an adjustment instead`);
        const r = await applyPayment(trx, inv, { source: SOURCE, reference: input.reference, paidOn: input.paidOn, received, actor, label: `bank transfer ${input.reference}` });
        return { applied: true, ...r };
      });
      if (outcome.settled) await tellDunning(id, 'payment');

      const view = await status(id);
      return { applied: outcome.applied, application: view.applications.find((a) => a.id === outcome.applicationId)!, invoice: { ...view, applications: undefined } };
    },

    /** Writes off what is outstanding on a postpaid invoice, once, with the reason and who did it; the invoice becomes uncollectible. */
    async writeOff(invoiceId: string, raw: unknown, actor: string) {
      const input = validate(writeOffBody, raw);
      const id = validate(invoiceIdInput, invoiceId);
      const applied = await db.transaction(async (trx) => {
        const inv = await collectable(trx, id);
        if (await findWriteOff(trx, id)) return false;
        if (inv.status === 'void') throw new ConflictError(`invoice ${inv.number} is void: there is nothing to write off`);
        const facts = (await paymentFacts(trx, [inv.id])).get(inv.id)!;
        const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
        if (outstanding.isZero()) throw new ConflictError(`invoice ${inv.number} has nothing outstanding`);
        await insertWriteOff(trx, { invoice_id: inv.id, account_id: inv.account_id, amount: toAmountString(outstanding), reason: input.reason, written_off_by: actor });
        return true;
      });
      if (applied) await tellDunning(id, 'write_off');
      return { applied, ...(await status(id)) };
    },

    /**
     * Applies a payment the payment provider reports for an invoice (its
     * metadata names the invoice), exactly once per payment id (source
     * 'stripe', reference the PaymentIntent id). It must match the invoice:
     * a finalized or void postpaid invoice of the account the metadata names,
     * in its currency, paid by the account's provider customer when one is
     * bound; otherwise it is refused and nothing is written. For an invoice
     * that is already paid or void the whole amount is credited to the
     * account instead (key `invoice-overpayment:stripe:{payment id}`): money
     * is never lost.
     */
    async applyProviderPayment(raw: ProviderPaymentInput): Promise<ProviderPaymentOutcome> {
      const p = validate(providerPaymentInput, raw);
      const paidOn = p.paidOn > today() ? today() : p.paidOn;
      const received = new Money(p.amount);
      const actor = `webhook:${p.provider}`;
      const outcome = await db.transaction(async (trx): Promise<ProviderPaymentOutcome & { settled?: boolean }> => {
        const inv = (await lockInvoice(trx, p.invoiceId)) as InvoiceRow | undefined;
        if (!inv) return { status: 'refused', reason: 'unknown_invoice' };
        if (inv.account_id !== p.accountId) return { status: 'refused', reason: 'account_mismatch' };
        if (inv.kind !== 'invoice' || inv.plan !== 'postpaid' || (inv.status !== 'finalized' && inv.status !== 'void')) return { status: 'refused', reason: 'not_collectable' };
        if (inv.currency !== p.currency.toUpperCase()) return { status: 'refused', reason: 'currency_mismatch' };
        const bound = await accountCustomer(trx, inv.account_id);
        if (bound && p.customerId && bound !== p.customerId) return { status: 'refused', reason: 'customer_mismatch' };

        const earlier = await findApplicationByReference(trx, p.provider, p.paymentId);
        if (earlier) return { ...applicationOutcome(earlier, inv.currency), status: 'already_applied' };
        const creditKey = `invoice-overpayment:${p.provider}:${p.paymentId}`;
        const credited = await findLedgerEntryByKey(trx, creditKey);
        const facts = (await paymentFacts(trx, [inv.id])).get(inv.id)!;
        const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
        if (credited || inv.status === 'void' || outstanding.isZero()) {
          const reason = inv.status === 'void' ? 'invoice_void' : 'invoice_paid';
          if (credited) return { status: 'already_credited', invoiceId: inv.id, reason, creditedToAccount: cents(credited.amount, inv.currency), creditEntryId: Number(credited.id) };
          const [r] = await postEntries(
            trx,
            [
              {
                accountId: inv.account_id,
                kind: 'adjustment',
                contra: 'adjustments',
                amount: received,
                idempotencyKey: creditKey,
                referenceType: 'invoice_payment',
                referenceId: `${p.provider}:${p.paymentId}`,
                actor,
                reason: `card payment ${p.paymentId} (${paidOn}) for invoice ${inv.number}, which is ${inv.status === 'void' ? 'void' : 'already paid'}: ${cents(received, inv.currency)} ${inv.currency} credited to the account`,
              },
            ],
            { overdraftAllowance: new Money(0) },
          );
          return { status: 'credited_to_account', invoiceId: inv.id, reason, creditedToAccount: cents(received, inv.currency), creditEntryId: Number(r!.entry.id) };
        }
        const r = await applyPayment(trx, inv, { source: p.provider, reference: p.paymentId, paidOn, received, actor, label: `card payment ${p.paymentId}` });
        const row = (await applicationsOf(trx, inv.id)).find((a) => a.id === r.applicationId)!;
        return { ...applicationOutcome(row, inv.currency), status: 'applied', settled: r.settled };
      });
      if (outcome.status === 'refused') return outcome;
      const { settled, ...answer } = outcome;
      if (settled) await tellDunning(p.invoiceId, 'payment');
      if (answer.status === 'applied' || answer.status === 'already_applied') {
        answer.paymentStatus = (await paymentStates(db, [(await db('invoices').where({ id: p.invoiceId }).first()) as InvoiceRow], today())).get(p.invoiceId)?.status ?? null;
      }
      return answer;
    },

    /** The receivables aging report on `asOf` (default today, UTC), for all accounts or one. */
    async aging(raw: unknown) {
      const input = validate(agingInput, raw ?? {});
      const asOf = input.asOf ?? today();
      const rows = await receivables(db, { asOf, ...(input.accountId ? { accountId: input.accountId } : {}) });
      return agingReport(rows, asOf);
    },
  };
}

export type InvoicePayments = ReturnType<typeof invoicePayments>;
