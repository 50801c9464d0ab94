import type { Db, Trx } from '../db/knex';
import type { ApplicationFacts, DocumentFacts, ExportRange, WriteOffFacts } from './accountingExport.rules';

/**
 * The rows of the accountants' export, one page at a time (keyset pages in a
 * fixed order, each one query whatever its size: no query per row). Read in
 * one REPEATABLE READ, read-only transaction (openExportSnapshot), so every
 * page sees the same books. Days are UTC; `to` is included.
 */

/** A page's position: the sort key of its last row, as text (timestamps keep their microseconds). */
export interface Cursor {
  at: string;
  id: string;
}

export interface Page<T> {
  rows: T[];
  next: Cursor | null;
}

/** A read-only snapshot for one export; the caller rolls it back when done. */
export function openExportSnapshot(db: Db): Promise<Trx> {
  return db.transaction({ isolationLevel: 'repeatable read', readOnly: true });
}

const dayStart = `(?::date::timestamp AT TIME ZONE 'UTC')`;
const dayAfter = `((?::date + 1)::timestamp AT TIME ZONE 'UTC')`;

/**
 * Finalized (or since voided) invoices or credit notes issued from `from` to
 * `to`, by issue time; for an invoice, what was paid (applications paid on or
 * before `to`), credited (credit notes issued by then) and written off by
 * then, and whether its credit note voided it by then.
 */
export async function documentsPage(trx: Trx, kind: 'invoice' | 'credit_note', range: ExportRange, after: Cursor | null, limit: number): Promise<Page<DocumentFacts>> {
  const { rows } = await trx.raw(
    `SELECT i.id, i.kind, i.number, to_char(i.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS issued_on, i.issued_at::text AS cursor_at,
            i.account_id, COALESCE(i.customer->>'name', a.name) AS account_name, i.currency, i.plan,
            i.subtotal::text AS subtotal, i.tax_amount::text AS tax_amount, i.total::text AS total, i.amount_due::text AS amount_due,
            to_char(i.due_date, 'YYYY-MM-DD') AS due_date,
            v.id AS invoice_id, v.number AS invoice_number,
            CASE WHEN i.kind = 'credit_note' THEN i.void_reason END AS reason,
            COALESCE(cn.voided, false) AS voided_by_end,
            COALESCE(cn.credited, 0)::text AS credited_by_end,
            COALESCE(p.paid, 0)::text AS paid_by_end,
            (w.invoice_id IS NOT NULL) AS written_off_by_end
       FROM invoices i
       JOIN accounts a ON a.id = i.account_id
       LEFT JOIN invoices v ON v.id = i.voids_invoice_id
       LEFT JOIN LATERAL (
              SELECT -sum(c.amount_due) AS credited, bool_or(c.id = i.voided_by) AS voided
                FROM invoices c
               WHERE c.voids_invoice_id = i.id AND c.kind = 'credit_note' AND c.status = 'finalized' AND c.issued_at < ${dayAfter}) cn ON i.kind = 'invoice'
       LEFT JOIN LATERAL (
              SELECT sum(ap.amount) AS paid FROM invoice_payment_applications ap WHERE ap.invoice_id = i.id AND ap.paid_on <= ?::date) p ON i.kind = 'invoice'
       LEFT JOIN invoice_write_offs w ON i.kind = 'invoice' AND w.invoice_id = i.id AND w.written_off_at < ${dayAfter}
      WHERE i.kind = ? AND i.status IN ('finalized', 'void') AND i.number IS NOT NULL
        AND i.issued_at >= ${dayStart} AND i.issued_at < ${dayAfter}
        AND (?::timestamptz IS NULL OR (i.issued_at, i.id) > (?::timestamptz, ?::uuid))
      ORDER BY i.issued_at, i.id
      LIMIT ?`,
    [range.to, range.to, range.to, kind, range.from, range.to, after?.at ?? null, after?.at ?? null, after?.id ?? null, limit],
  );
  const out: DocumentFacts[] = rows.map((r: Record<string, string | boolean | null>) => ({
    id: r.id as string,
    kind: r.kind as 'invoice' | 'credit_note',
    number: r.number as string,
    issuedOn: r.issued_on as string,
    accountId: r.account_id as string,
    accountName: (r.account_name as string | null) ?? '',
    currency: r.currency as string,
    plan: r.plan as string,
    subtotal: r.subtotal as string,
    taxAmount: r.tax_amount as string,
    total: r.total as string,
    amountDue: r.amount_due as string,
    dueDate: r.due_date as string | null,
    invoiceId: r.invoice_id as string | null,
    invoiceNumber: r.invoice_number as string | null,
    reason: r.reason as string | null,
    voidedByEnd: r.voided_by_end as boolean,
    creditedByEnd: r.credited_by_end as string,
    paidByEnd: r.paid_by_end as string,
    writtenOffByEnd: r.written_off_by_end as boolean,
  }));
  const last = rows.at(-1) as { cursor_at: string; id: string } | undefined;
  return { rows: out, next: rows.length === limit && last ? { at: last.cursor_at, id: last.id } : null };
}

/** Payment applications paid (the day the money arrived) from `from` to `to`, by that day. */
export async function applicationsPage(trx: Trx, range: ExportRange, after: Cursor | null, limit: number): Promise<Page<ApplicationFacts>> {
  const { rows } = await trx.raw(
    `SELECT p.id, to_char(p.paid_on, 'YYYY-MM-DD') AS paid_on, p.invoice_id, i.number AS invoice_number, p.account_id,
            COALESCE(i.customer->>'name', a.name) AS account_name, i.currency, p.amount::text AS amount, p.received_amount::text AS received_amount,
            p.source, p.reference, p.recorded_by
       FROM invoice_payment_applications p
       JOIN invoices i ON i.id = p.invoice_id
       JOIN accounts a ON a.id = p.account_id
      WHERE p.paid_on >= ?::date AND p.paid_on <= ?::date
        AND (?::date IS NULL OR (p.paid_on, p.id) > (?::date, ?::uuid))
      ORDER BY p.paid_on, p.id
      LIMIT ?`,
    [range.from, range.to, after?.at ?? null, after?.at ?? null, after?.id ?? null, limit],
  );
  const out: ApplicationFacts[] = rows.map((r: Record<string, string>) => ({
    id: r.id!,
    invoiceId: r.invoice_id!,
    invoiceNumber: r.invoice_number ?? '',
    accountId: r.account_id!,
    accountName: r.account_name ?? '',
    currency: r.currency!,
    amount: r.amount!,
    receivedAmount: r.received_amount!,
    source: r.source!,
    reference: r.reference!,
    paidOn: r.paid_on!,
    recordedBy: r.recorded_by!,
  }));
  const last = out.at(-1);
  return { rows: out, next: rows.length === limit && last ? { at: last.paidOn, id: last.id } : null };
}

/** Write-offs made from `from` to `to` (UTC days), by when. */
export async function writeOffsPage(trx: Trx, range: ExportRange, after: Cursor | null, limit: number): Promise<Page<WriteOffFacts>> {
  const { rows } = await trx.raw(
    `SELECT w.invoice_id, i.number AS invoice_number, w.account_id, COALESCE(i.customer->>'name', a.name) AS account_name, i.currency,
            w.amount::text AS amount, to_char(w.written_off_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS written_off_on, w.written_off_at::text AS cursor_at,
            w.written_off_by, w.reason
       FROM invoice_write_offs w
       JOIN invoices i ON i.id = w.invoice_id
       JOIN accounts a ON a.id = w.account_id
      WHERE w.written_off_at >= ${dayStart} AND w.written_off_at < ${dayAfter}
        AND (?::timestamptz IS NULL OR (w.written_off_at, w.invoice_id) > (?::timestamptz, ?::uuid))
      ORDER BY w.written_off_at, w.invoice_id
      LIMIT ?`,
    [range.from, range.to, after?.at ?? null, after?.at ?? null, after?.id ?? null, limit],
  );
  const out: WriteOffFacts[] = rows.map((r: Record<string, string>) => ({
    invoiceId: r.invoice_id!,
    invoiceNumber: r.invoice_number ?? '',
    accountId: r.account_id!,
    accountName: r.account_name ?? '',
    currency: r.currency!,
    amount: r.amount!,
    writtenOffOn: r.written_off_on!,
    writtenOffBy: r.written_off_by!,
    reason: r.reason!,
  }));
  const last = rows.at(-1) as { cursor_at: string; invoice_id: string } | undefined;
  return { rows: out, next: rows.length === limit && last ? { at: last.cursor_at, id: last.invoice_id } : null };
}
