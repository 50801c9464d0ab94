import type { DbOrTrx } from '../db/knex';
import type { AgingInvoice } from './paymentStatus.rules';

/**
 * Payment applications and write-offs of invoices (migration
 * 20261204220000_invoice_payments). Both tables are append-only.
 */

export interface PaymentApplicationRow {
  id: string;
  invoice_id: string;
  account_id: string;
  amount: string;
  received_amount: string;
  source: string;
  reference: string;
  paid_on: string;
  recorded_by: string;
  credit_entry_id: string | number | null;
  created_at: Date;
}

export interface WriteOffRow {
  invoice_id: string;
  account_id: string;
  amount: string;
  reason: string;
  written_off_by: string;
  written_off_at: Date;
}

/** The application recorded under this source and reference, if any. */
export async function findApplicationByReference(db: DbOrTrx, source: string, reference: string): Promise<PaymentApplicationRow | undefined> {
  return db('invoice_payment_applications').where({ source, reference }).first();
}

/** Inserts an application; a concurrent one under the same reference makes it return undefined (ON CONFLICT DO NOTHING). */
export async function insertApplication(db: DbOrTrx, row: Omit<PaymentApplicationRow, 'id' | 'created_at'>): Promise<PaymentApplicationRow | undefined> {
  const [r] = await db('invoice_payment_applications').insert(row).onConflict(['source', 'reference']).ignore().returning('*');
  return r;
}

/** The ledger entry posted under an idempotency key (an overpayment's or a payment's credit), if any. */
export async function findLedgerEntryByKey(db: DbOrTrx, idempotencyKey: string): Promise<{ id: string | number; amount: string } | undefined> {
  return db('ledger_entries').where({ idempotency_key: idempotencyKey }).first('id', 'amount');
}

/** The payment provider's customer bound to the account (accounts.stripe_customer_id), or null. */
export async function accountCustomer(db: DbOrTrx, accountId: string): Promise<string | null> {
  const row = await db('accounts').where({ id: accountId }).first('stripe_customer_id');
  return (row?.stripe_customer_id as string | null | undefined) ?? null;
}

/** An invoice's applications, oldest first. */
export async function applicationsOf(db: DbOrTrx, invoiceId: string): Promise<PaymentApplicationRow[]> {
  return db('invoice_payment_applications').where({ invoice_id: invoiceId }).orderBy([{ column: 'created_at' }, { column: 'id' }]);
}

/**
 * What the payment status of these invoices is computed from: the sum of
 * their applications, what finalized credit notes against them took off (a
 * positive amount), and whether they were written off. By invoice id.
 */
export async function paymentFacts(db: DbOrTrx, invoiceIds: readonly string[]): Promise<Map<string, { paid: string; credited: string; writtenOff: boolean }>> {
  if (invoiceIds.length === 0) return new Map();
  const { rows } = await db.raw(
    `SELECT i.id,
            COALESCE((SELECT sum(p.amount) FROM invoice_payment_applications p WHERE p.invoice_id = i.id), 0)::text AS paid,
            COALESCE((SELECT -sum(c.amount_due) FROM invoices c WHERE c.voids_invoice_id = i.id AND c.kind = 'credit_note' AND c.status = 'finalized'), 0)::text AS credited,
            EXISTS (SELECT 1 FROM invoice_write_offs w WHERE w.invoice_id = i.id) AS written_off
       FROM invoices i WHERE i.id = ANY(?::uuid[])`,
    // A PostgreSQL array literal: knex would spread a JS array into a list of bindings. The ids are invoice UUIDs.
    [`{${invoiceIds.join(',')}}`],
  );
  return new Map(rows.map((r: { id: string; paid: string; credited: string; written_off: boolean }) => [r.id, { paid: r.paid, credited: r.credited, writtenOff: r.written_off }]));
}

export async function findWriteOff(db: DbOrTrx, invoiceId: string): Promise<WriteOffRow | undefined> {
  return db('invoice_write_offs').where({ invoice_id: invoiceId }).first();
}

export async function insertWriteOff(db: DbOrTrx, row: Omit<WriteOffRow, 'written_off_at'>): Promise<WriteOffRow> {
  const [r] = await db('invoice_write_offs').insert(row).returning('*');
  return r;
}

/**
 * The postpaid invoices that were finalized (and not void) on `asOf`
 * (YYYY-MM-DD, UTC), with what was paid on them up to that day and what
 * credit notes took off, leaving out those written off by then. The aging
 * rule buckets them (agingReport in paymentStatus.rules.ts).
 */
export async function receivables(db: DbOrTrx, input: { asOf: string; accountId?: string }): Promise<AgingInvoice[]> {
  const { rows } = await db.raw(
    `SELECT i.id AS invoice_id, i.account_id, a.name AS account_name, i.number, i.currency, i.amount_due::text AS amount_due,
            to_char(i.due_date, 'YYYY-MM-DD') AS due_date,
            COALESCE((SELECT sum(p.amount) FROM invoice_payment_applications p WHERE p.invoice_id = i.id AND p.paid_on <= ?::date), 0)::text AS paid,
            COALESCE((SELECT -sum(c.amount_due) FROM invoices c
                       WHERE c.voids_invoice_id = i.id AND c.kind = 'credit_note' AND c.status = 'finalized'
                         AND c.issued_at < ((?::date + 1)::timestamp AT TIME ZONE 'UTC')), 0)::text AS credited
       FROM invoices i JOIN accounts a ON a.id = i.account_id
      WHERE i.kind = 'invoice' AND i.plan = 'postpaid' AND i.status IN ('finalized', 'void')
        AND i.issued_at < ((?::date + 1)::timestamp AT TIME ZONE 'UTC')
        AND NOT EXISTS (SELECT 1 FROM invoice_write_offs w WHERE w.invoice_id = i.id AND w.written_off_at < ((?::date + 1)::timestamp AT TIME ZONE 'UTC'))
        AND (?::uuid IS NULL OR i.account_id = ?::uuid)
      ORDER BY i.account_id, i.due_date, i.id`,
    [input.asOf, input.asOf, input.asOf, input.asOf, input.accountId ?? null, input.accountId ?? null],
  );
  return rows.map((r: Record<string, string>) => ({
    invoiceId: r.invoice_id,
    accountId: r.account_id,
    accountName: r.account_name,
    number: r.number,
    currency: r.currency,
    amountDue: r.amount_due,
    dueDate: r.due_date,
    credited: r.credited,
    paid: r.paid,
  }));
}
