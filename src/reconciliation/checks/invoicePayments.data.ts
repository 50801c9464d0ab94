import { Money } from '../../shared/money.rules';
import type { Discrepancy, DiscrepancyKind } from '../reconciliation.rules';
import { money } from './amounts.rules';
import type { CheckContext } from './checkContext.data';

/**
 * The `invoice_payments` check (docs/reconciliation.md): payments applied to
 * postpaid invoices against the money behind them, and invoices' amounts paid
 * against their applications. Reports only; two set-based queries over the
 * window, whatever its size.
 *
 * Applications recorded in the window (created_at):
 * - a card payment (source 'stripe', reference = the PaymentIntent id), once
 *   older than the payment grace, has the provider's payment record: a
 *   `payments` row of that id (succeeded, same amount as received, same
 *   account and currency), or else our payment request for that invoice
 *   (invoice_payment_requests, same amount); without either it is
 *   `invoice_payment_without_payment`, with a different one
 *   `invoice_payment_mismatch`;
 * - an overpayment (received - amount > 0) has its ledger credit
 *   (credit_entry_id, an entry of exactly that amount on the account):
 *   `overpayment_credit_missing` / `overpayment_credit_mismatch` (also a credit
 *   entry where nothing was overpaid).
 * Invoices touched in the window (an application recorded, a credit note
 * issued, an invoice.paid event):
 * - the sum of all their applications is at most amount due - credit notes,
 *   rounded to the cent as payments are applied: `invoice_overapplied`;
 * - one marked paid (an invoice.paid event) is covered by its applications
 *   and credit notes: `invoice_paid_not_covered`.
 */

const MINOR = `CASE i.currency WHEN 'JPY' THEN 0 ELSE 2 END`;
const UUID_RE = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

interface ApplicationProblem {
  id: string;
  invoice_id: string;
  invoice_number: string | null;
  account_id: string;
  currency: string;
  source: string;
  reference: string;
  amount: string;
  received_amount: string;
  excess: string;
  credit_entry_id: string | null;
  payment_problem: 'missing' | 'mismatch' | null;
  payment_amount: string | null;
  payment_account: string | null;
  payment_currency: string | null;
  payment_status: string | null;
  payment_record: 'payment' | 'payment_request' | null;
  request_invoice: string | null;
  credit_problem: 'missing' | 'mismatch' | null;
  entry_id: string | null;
  entry_amount: string | null;
  entry_account: string | null;
}

interface InvoiceProblem {
  id: string;
  number: string;
  account_id: string;
  currency: string;
  amount_due: string;
  credited: string;
  paid: string;
  collectable: string;
  applications: number;
  marked_paid: boolean;
}

const needsAttention = (d: Omit<Discrepancy, 'resolution' | 'repairRef'>): Discrepancy => ({ ...d, resolution: 'needs_attention', repairRef: null });

export async function checkInvoicePayments(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const graceCutoff = new Date(ctx.now.getTime() - ctx.paymentGraceS * 1000).toISOString();
  const out: Discrepancy[] = [];

  const applications: ApplicationProblem[] = (
    await db.raw(
      `WITH a AS (
         SELECT p.id, p.invoice_id, i.number AS invoice_number, p.account_id, i.currency, p.source, p.reference,
                p.amount, p.received_amount, p.received_amount - p.amount AS excess, p.credit_entry_id, p.created_at,
                pay.id AS payment_id, pay.amount AS payment_amount, pay.account_id AS payment_account, upper(pay.currency) AS payment_currency, pay.status AS payment_status,
                req.provider_id AS request_id, req.amount AS request_amount, req.invoice_id AS request_invoice,
                le.id AS entry_id, le.amount AS entry_amount, le.account_id AS entry_account
           FROM invoice_payment_applications p
           JOIN invoices i ON i.id = p.invoice_id
           LEFT JOIN payments pay ON p.source = 'stripe' AND pay.provider = 'stripe' AND pay.provider_payment_id = p.reference
           LEFT JOIN invoice_payment_requests req ON p.source = 'stripe' AND req.provider = 'stripe' AND req.provider_id = p.reference
           LEFT JOIN ledger_entries le ON le.id = p.credit_entry_id
          WHERE p.created_at >= ? AND p.created_at < ?
       ), judged AS (
         SELECT a.*,
                CASE
                  WHEN a.source <> 'stripe' OR a.created_at >= ? THEN NULL
                  WHEN a.payment_id IS NOT NULL THEN
                    CASE WHEN a.payment_amount <> a.received_amount OR a.payment_account <> a.account_id
                              OR a.payment_currency <> a.currency OR a.payment_status <> 'succeeded' THEN 'mismatch' END
                  WHEN a.request_id IS NOT NULL THEN
                    CASE WHEN a.request_amount <> a.received_amount OR a.request_invoice <> a.invoice_id THEN 'mismatch' END
                  ELSE 'missing'
                END AS payment_problem,
                CASE
                  WHEN a.excess > 0 AND (a.credit_entry_id IS NULL OR a.entry_id IS NULL) THEN 'missing'
                  WHEN a.credit_entry_id IS NOT NULL AND a.entry_id IS NULL THEN 'mismatch'
                  WHEN a.entry_id IS NOT NULL AND (a.entry_amount <> a.excess OR a.entry_account <> a.account_id) THEN 'mismatch'
                END AS credit_problem
           FROM a
       )
       SELECT id, invoice_id, invoice_number, account_id, currency, source, reference,
              amount::text AS amount, received_amount::text AS received_amount, excess::text AS excess, credit_entry_id::text AS credit_entry_id,
              payment_problem, payment_amount::text AS payment_amount, payment_account, payment_currency, payment_status,
              CASE WHEN payment_id IS NOT NULL THEN 'payment' WHEN request_id IS NOT NULL THEN 'payment_request' END AS payment_record,
              COALESCE(payment_amount, request_amount)::text AS payment_amount_any, request_invoice,
              credit_problem, entry_id::text AS entry_id, entry_amount::text AS entry_amount, entry_account
         FROM judged
        WHERE payment_problem IS NOT NULL OR credit_problem IS NOT NULL
        ORDER BY created_at, id`,
      [window.start, window.end, graceCutoff],
    )
  ).rows.map((r: ApplicationProblem & { payment_amount_any: string | null }) => ({ ...r, payment_amount: r.payment_amount_any }));

  for (const a of applications) {
    const subject = `${a.source}:${a.reference}`;
    const ids = { applicationId: a.id, invoiceId: a.invoice_id, invoiceNumber: a.invoice_number };
    if (a.payment_problem) {
      const kind: DiscrepancyKind = a.payment_problem === 'missing' ? 'invoice_payment_without_payment' : 'invoice_payment_mismatch';
      const differs =
        a.payment_record === 'payment'
          ? {
              amount: a.payment_amount !== null && money(a.payment_amount) !== money(a.received_amount),
              account: a.payment_account !== a.account_id,
              currency: a.payment_currency !== a.currency,
              status: a.payment_status !== 'succeeded' ? a.payment_status : false,
            }
          : a.payment_record === 'payment_request'
            ? { amount: a.payment_amount !== null && money(a.payment_amount) !== money(a.received_amount), invoice: a.request_invoice !== a.invoice_id }
            : {};
      out.push(
        needsAttention({
          kind,
          subject,
          accountId: a.account_id,
          // Our books: what the application says was received; the other side: the provider's record of the payment.
          expected: money(a.received_amount),
          actual: money(a.payment_amount ?? '0'),
          unit: a.currency,
          details: { ...ids, comparedWith: a.payment_record, ...(a.payment_problem === 'mismatch' ? { differs } : {}) },
        }),
      );
    }
    if (a.credit_problem) {
      out.push(
        needsAttention({
          kind: a.credit_problem === 'missing' ? 'overpayment_credit_missing' : 'overpayment_credit_mismatch',
          subject,
          accountId: a.account_id,
          expected: money(a.excess),
          actual: money(a.entry_amount ?? '0'),
          unit: a.currency,
          details: {
            ...ids,
            received: money(a.received_amount),
            applied: money(a.amount),
            creditEntryId: a.credit_entry_id,
            ...(a.entry_id === null ? { entryFound: false } : {}),
            ...(a.entry_account !== null && a.entry_account !== a.account_id ? { creditedAnotherAccount: true } : {}),
          },
        }),
      );
    }
  }

  const invoices: InvoiceProblem[] = (
    await db.raw(
      `WITH touched AS (
         SELECT p.invoice_id AS id FROM invoice_payment_applications p WHERE p.created_at >= ? AND p.created_at < ?
         UNION
         SELECT c.voids_invoice_id FROM invoices c
          WHERE c.kind = 'credit_note' AND c.status = 'finalized' AND c.voids_invoice_id IS NOT NULL AND c.issued_at >= ? AND c.issued_at < ?
         UNION
         SELECT (e.data->>'invoiceId')::uuid FROM account_events e
          WHERE e.type = 'invoice.paid' AND e.occurred_at >= ? AND e.occurred_at < ? AND (e.data->>'invoiceId') ~ '${UUID_RE}'
       ), facts AS (
         SELECT i.id, i.number, i.account_id, i.currency, i.amount_due,
                COALESCE(ap.paid, 0) AS paid, COALESCE(ap.n, 0) AS applications, COALESCE(cn.credited, 0) AS credited,
                round(i.amount_due - COALESCE(cn.credited, 0), ${MINOR}) AS collectable,
                EXISTS (SELECT 1 FROM account_events e
                         WHERE e.account_id = i.account_id AND e.type = 'invoice.paid' AND e.data->>'invoiceId' = i.id::text) AS marked_paid
           FROM touched t
           JOIN invoices i ON i.id = t.id AND i.kind = 'invoice'
           LEFT JOIN LATERAL (SELECT sum(p.amount) AS paid, count(*) AS n FROM invoice_payment_applications p WHERE p.invoice_id = i.id) ap ON true
           LEFT JOIN LATERAL (SELECT -sum(c.amount_due) AS credited FROM invoices c
                               WHERE c.voids_invoice_id = i.id AND c.kind = 'credit_note' AND c.status = 'finalized') cn ON true
       )
       SELECT id, number, account_id, currency, amount_due::text AS amount_due, credited::text AS credited, paid::text AS paid,
              collectable::text AS collectable, applications::int AS applications, marked_paid
         FROM facts
        WHERE paid > collectable OR (marked_paid AND paid < collectable)
        ORDER BY number`,
      [window.start, window.end, window.start, window.end, window.start, window.end],
    )
  ).rows;

  for (const inv of invoices) {
    const over = new Money(inv.paid).gt(inv.collectable);
    out.push(
      needsAttention({
        kind: over ? 'invoice_overapplied' : 'invoice_paid_not_covered',
        subject: inv.number,
        accountId: inv.account_id,
        expected: money(inv.collectable),
        actual: money(inv.paid),
        unit: inv.currency,
        details: { invoiceId: inv.id, amountDue: money(inv.amount_due), creditNotes: money(inv.credited), applications: inv.applications, markedPaid: inv.marked_paid },
      }),
    );
  }
  return out;
}
