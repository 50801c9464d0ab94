import { z } from 'zod';
import type { Clock } from '../clock';
import type { Db, DbOrTrx } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { postEntries } from '../ledger/ledger.data';
import { decimalPlaces, isDecimalString, MAX_STAFF_AMOUNT, Money, toAmountString, withinStaffAmountBound } from '../shared/money.rules';
import { validate } from '../shared/validate';
import { lockInvoice } from './invoicing.data';
import { applicationsOf, findApplicationByReference, findWriteOff, insertApplication, insertWriteOff, paymentFacts, receivables, type PaymentApplicationRow, type WriteOffRow } from './payments.data';
import { agingReport, amountOutstanding, paymentState, splitPayment } from './paymentStatus.rules';

/**
 * Collections, first slice (docs/collections.md): bank transfers billing
 * staff record against postpaid invoices, write-offs, the payment status of
 * an invoice and the receivables aging report. `actor` is who did it
 * ('staff:<token id>' or 'cli:<user>').
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

type InvoiceRow = { id: string; kind: string; plan: string; status: string; currency: string; amount_due: string; due_date: string | null; number: string | null; account_id: string };

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

export function invoicePayments({ db, clock }: { db: Db; clock: Clock }) {
  const today = () => clock.now().toISOString().slice(0, 10);

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
          return { applied: false, applicationId: earlier.id };
        }
        if (inv.status === 'void') throw new ConflictError(`invoice ${inv.number} is void (credited by a credit note): nothing is due on it`);
        const facts = (await paymentFacts(trx, [inv.id])).get(inv.id)!;
        const outstanding = amountOutstanding(inv.amount_due, facts.credited, facts.paid, inv.currency);
        if (outstanding.isZero()) throw new ConflictError(`invoice ${inv.number} has nothing outstanding; credit the account with an adjustment instead`);
        const split = splitPayment(input.amount, toAmountString(outstanding));

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
                idempotencyKey: `invoice-overpayment:${SOURCE}:${input.reference}`,
                referenceType: 'invoice_payment',
                referenceId: `${SOURCE}:${input.reference}`,
                actor,
                reason: `overpayment of invoice ${inv.number} by bank transfer ${input.reference} (${input.paidOn}): ${cents(split.excess, inv.currency)} of ${cents(received, inv.currency)} ${inv.currency} credited to the account`,
              },
            ],
            { overdraftAllowance: new Money(0) },
          );
          creditEntryId = r!.entry.id;
        }
        const row = await insertApplication(trx, {
          invoice_id: inv.id,
          account_id: inv.account_id,
          amount: split.applied,
          received_amount: toAmountString(received),
          source: SOURCE,
          reference: input.reference,
          paid_on: input.paidOn,
          recorded_by: actor,
          credit_entry_id: creditEntryId,
        });
        // Recorded at the same moment for another invoice: roll this one back (the ledger credit with it).
        if (!row) throw new ConflictError(`reference ${input.reference} was recorded concurrently; try again to see it`);
        return { applied: true, applicationId: row.id };
      });

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
      return { applied, ...(await status(id)) };
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
