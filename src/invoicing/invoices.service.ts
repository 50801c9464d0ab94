import { z } from 'zod';
import { Money, toAmountString } from '../shared/money.rules';
import type { InvoiceDocument } from './render';
import type { Config } from '../config';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { findInvoice, findInvoiceNumber, finalizeInvoice, insertInvoice, insertInvoiceLines, invoiceLines, latestIssuedInvoices, listInvoices, lockInvoice, markInvoiceVoid, nextNumberInSeries } from './invoicing.data';
import { creditNoteSeries, documentNumber } from './numbering.rules';
import { ConflictError, NotFoundError } from '../errors';
import { validate } from '../shared/validate';
import { recordAccountEvent } from '../notifications/events.data';
import { paymentStates } from './payments.service';
import { reinstateIfSettled } from './suspension.data';
import { signalDunningSettled } from './dunning.service';
import type { Client } from '@temporalio/client';

/** Reading, rendering and voiding invoices (CLI and admin API). */
export const listInvoicesInput = z.strictObject({
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'period must be YYYY-MM').optional(),
  accountId: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  after: z.string().optional(),
});
export const voidInput = z.strictObject({ id: z.uuid({ error: 'id must be an invoice id (UUID)' }), reason: z.string().trim().min(3, 'reason must say why (at least 3 characters)').max(500) });

const money = (v: string, currency: string) => new Money(v).toFixed(currency === 'JPY' ? 0 : 2);

export function invoiceQueries({ db, clock, config, temporal }: { db: Db; clock: Clock; config: Pick<Config, 'invoicing'>; temporal?: { client: Client; taskQueue: string } | undefined }) {
  async function load(id: string) {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new NotFoundError(`invoice ${id} does not exist`);
    const inv = await findInvoice(db, id);
    if (!inv) throw new NotFoundError(`invoice ${id} does not exist`);
    const lines = await invoiceLines(db, id);
    return { inv, lines };
  }

  const today = () => clock.now().toISOString().slice(0, 10);

  function view(inv: any, lines: any[], payment: unknown = null) {
    return {
      id: inv.id,
      kind: inv.kind,
      number: inv.number,
      status: inv.status,
      accountId: inv.account_id,
      period: inv.period,
      plan: inv.plan,
      currency: inv.currency,
      issuedAt: inv.issued_at?.toISOString() ?? null,
      dueDate: (inv.due_date as string | null) ?? null,
      customer: inv.customer,
      issuer: inv.issuer,
      lines: lines.map((l) => ({
        position: l.position,
        description: l.description,
        model: l.model,
        kind: l.kind,
        quantity: Number(l.quantity),
        unitPricePerMtok: toAmountString(new Money(l.unit_price_per_mtok)),
        amount: money(l.amount, inv.currency),
        late: l.late,
        usagePeriod: l.usage_period,
      })),
      totals: {
        subtotal: money(inv.subtotal, inv.currency),
        taxRate: toAmountString(new Money(inv.tax_rate)),
        taxAmount: money(inv.tax_amount, inv.currency),
        total: money(inv.total, inv.currency),
        creditsApplied: money(inv.credits_applied, inv.currency),
        amountDue: money(inv.amount_due, inv.currency),
      },
      taxKind: inv.tax_kind,
      taxNote: inv.tax_note,
      voidsInvoiceId: inv.voids_invoice_id,
      voidedBy: inv.voided_by,
      voidReason: inv.void_reason,
      // Postpaid invoices only (docs/collections.md): status, amount paid, outstanding, days overdue.
      payment,
    };
  }

  return {
    async get(id: string) {
      const { inv, lines } = await load(id);
      return view(inv, lines, (await paymentStates(db, [inv], today())).get(inv.id) ?? null);
    },

    async list(raw: unknown) {
      const input = validate(listInvoicesInput, raw ?? {});
      const rows = await listInvoices(db, input);
      const payments = await paymentStates(db, rows, today());
      return rows.map((inv) => {
        const p = payments.get(inv.id);
        return {
          id: inv.id, kind: inv.kind, number: inv.number, status: inv.status, accountId: inv.account_id, period: inv.period, currency: inv.currency,
          total: money(inv.total, inv.currency), amountDue: money(inv.amount_due, inv.currency),
          paymentStatus: p?.status ?? null, amountPaid: p?.amountPaid ?? null,
        };
      });
    },

    /** The account's latest `limit` issued invoices and credit notes (newest period first) with their payment status: one page, without lines. */
    async latestOfAccount(accountId: string, limit: number) {
      const rows = await latestIssuedInvoices(db, accountId, limit);
      const payments = await paymentStates(db, rows, today());
      return rows.map((inv) => ({
        id: inv.id as string, kind: inv.kind as string, number: inv.number as string | null, status: inv.status as string, accountId: inv.account_id as string,
        period: inv.period as string, plan: inv.plan as string, currency: inv.currency as string, dueDate: (inv.due_date as string | null) ?? null,
        totals: { total: money(inv.total, inv.currency) }, payment: payments.get(inv.id) ?? null,
      }));
    },

    async document(id: string): Promise<InvoiceDocument> {
      const v = await this.get(id);
      const voidedBy = v.voidedBy ? await findInvoiceNumber(db, v.voidedBy) : null;
      return {
        number: v.number,
        status: v.status,
        period: v.period,
        issuedAt: v.issuedAt,
        dueDate: v.dueDate,
        issuer: v.issuer,
        customer: v.customer,
        currency: v.currency,
        lines: v.lines,
        totals: v.totals,
        taxNote: v.taxNote,
        plan: v.plan,
        voidedBy: voidedBy ? { creditNoteNumber: voidedBy.number } : null,
        notes: v.kind === 'credit_note' ? [`Credit note for invoice ${v.voidsInvoiceId}`] : [],
      };
    },

    /**
     * Voids a finalized invoice with a credit note that mirrors it (negative
     * amounts, its own gapless series) and references it. The invoice itself
     * only changes status; its usage stays invoiced by it.
     */
    async void(raw: unknown, actor: string) {
      const input = validate(voidInput, raw);
      const voided = await db.transaction(async (trx) => {
        const inv = await lockInvoice(trx, input.id);
        if (!inv) throw new NotFoundError(`invoice ${input.id} does not exist`);
        if (inv.kind !== 'invoice') throw new ConflictError('a credit note cannot be voided');
        if (inv.status !== 'finalized') throw new ConflictError(`invoice ${inv.number ?? inv.id} is ${inv.status}`);
        const lines = await invoiceLines(trx, inv.id);
        const neg = (v: string) => toAmountString(new Money(v).neg());
        const series = creditNoteSeries(clock.now());
        const cn = await insertInvoice(trx, {
          kind: 'credit_note',
          account_id: inv.account_id,
          period: inv.period,
          status: 'draft',
          series,
          plan: inv.plan,
          currency: inv.currency,
          subtotal: neg(inv.subtotal),
          tax_rate: inv.tax_rate,
          tax_amount: neg(inv.tax_amount),
          total: neg(inv.total),
          credits_applied: neg(inv.credits_applied),
          amount_due: neg(inv.amount_due),
          tax_kind: inv.tax_kind,
          tax_note: inv.tax_note,
          customer: JSON.stringify(inv.customer),
          issuer: JSON.stringify(config.invoicing.issuer),
          voids_invoice_id: inv.id,
          void_reason: `${input.reason} (${actor})`,
        });
        if (lines.length) {
          await insertInvoiceLines(
            trx,
            lines.map((l) => ({ ...l, invoice_id: cn.id, amount: neg(l.amount), description: `Credit: ${l.description}` })),
          );
        }
        const number = documentNumber(series, await nextNumberInSeries(trx, series));
        await finalizeInvoice(trx, cn.id, { number, issued_at: clock.now() });
        await markInvoiceVoid(trx, inv.id, cn.id, `${input.reason} (${actor})`);
        // The reason and actor stay with staff: the event carries ids and amounts only.
        await recordAccountEvent(trx, {
          accountId: inv.account_id,
          type: 'credit_note.created',
          dedupeKey: `credit_note.created:${cn.id}`,
          data: { accountId: inv.account_id, creditNoteId: cn.id, number, invoiceId: inv.id, invoiceNumber: inv.number, total: neg(inv.total), currency: inv.currency },
        });
        // Collections (docs/collections.md): a void invoice is settled; a suspended account is reinstated when nothing it was suspended for is unpaid.
        if (inv.plan === 'postpaid') await reinstateIfSettled(trx, inv.account_id, 'system:credit_note');
        return { invoiceId: inv.id, invoiceNumber: inv.number, creditNoteId: cn.id, creditNoteNumber: number };
      });
      // After the commit, its dunning ends now (best effort: without Temporal it sees the void before its next step).
      if (temporal) await signalDunningSettled(temporal.client, voided.invoiceId, 'void').catch(() => false);
      return voided;
    },
  };
}
