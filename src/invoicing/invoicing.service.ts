import type Decimal from 'decimal.js';
import type { Client } from '@temporalio/client';
import { billingPeriod, buildInvoice, dueDate } from './invoice.rules';
import { Money, toAmountString } from '../shared/money.rules';
import { taxTreatment } from './tax.rules';
import { documentNumber, invoiceSeries } from './numbering.rules';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { InvoiceAccountInput, InvoiceAccountResult } from '../../workflows/messages';
import type { Db } from '../db/knex';
import { lockBalances } from '../ledger/ledger.data';
import { settleAccountUsage } from '../metering/metering.service';
import {
  accountBalance,
  advanceInvoicedBoundary,
  finalizeInvoice,
  findAccount,
  findPeriodInvoice,
  insertInvoice,
  insertInvoiceLines,
  invoicedUntil,
  linePrices,
  listBillableAccounts,
  markLateUsageInvoiced,
  nextNumberInSeries,
  openUsageAggregates,
} from './invoicing.data';
import { allTaxRates } from './taxRates.data';
import { recordAccountEvent } from '../notifications/events.data';
import { invoiceQueries } from './invoices.service';
import { invoiceRuns } from './invoiceRuns.service';
import { taxRates } from './taxRates.service';
import { invoicePayments } from './payments.service';
import { accountingExportService } from './accountingExport.service';

export interface InvoicingDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'invoicing' | 'billing'>;
  /** Invoice runs are Temporal workflows: without it `runs` is undefined (the admin API answers 503). */
  temporal?: { client: Client; taskQueue: string };
}

/**
 * Invoicing, the one entry point for activities, the admin API, the console and the CLI:
 * - `invoices`: read, list, document (for rendering), void with a credit note (invoices.service.ts);
 * - `runs`: start and follow a period's invoice run (invoiceRuns.service.ts);
 * - `taxRates`: set and list VAT rates (taxRates.service.ts);
 * - `payments`: bank transfers, write-offs, payment status, receivables aging (payments.service.ts);
 * - `accountingExport`: the accountants' CSV of a period (accountingExport.service.ts);
 * - `listBillableAccounts`, `invoiceAccount`: the invoice run's work, called by its activities.
 */
export function invoicingService(deps: InvoicingDeps) {
  const { db, clock, config } = deps;
  const overdraftAllowance = new Money(config.billing.overdraftAllowance);
  return {
    invoices: invoiceQueries({ db, clock, config, temporal: deps.temporal }),
    runs: deps.temporal ? invoiceRuns({ client: deps.temporal.client, taskQueue: deps.temporal.taskQueue, config, clock }) : undefined,
    taxRates: taxRates(db),
    payments: invoicePayments({ db, clock, temporal: deps.temporal }),
    accountingExport: accountingExportService({ db, clock }),

    listBillableAccounts(input: { period: string; after: string | null; limit: number; accountIds?: string[] }): Promise<string[]> {
      return listBillableAccounts(db, input);
    },

    /** The account's invoice for the period, issued now (see invoiceAccountForPeriod). */
    invoiceAccount(input: InvoiceAccountInput, onProgress?: () => void): Promise<InvoiceAccountResult> {
      return invoiceAccountForPeriod(db, { ...input, now: clock.now() }, { invoicing: config.invoicing, overdraftAllowance, onProgress });
    },
  };
}

export type InvoicingService = ReturnType<typeof invoicingService>;

/**
 * Settles what is left of the account's usage, then, in one transaction
 * under the account's balance lock: returns the period's invoice if it
 * exists; otherwise builds it from the usage not yet invoiced (earlier
 * periods' late usage included, labelled), allocates the next number of the
 * series, finalizes it, moves the account's invoiced boundary to the
 * period's end and marks the late rows it took. A crash anywhere rolls the
 * whole thing back, number included, so numbers stay gapless.
 */
export async function invoiceAccountForPeriod(
  db: Db,
  input: { accountId: string; period: string; dryRun: boolean; now: Date },
  cfg: { invoicing: Config['invoicing']; overdraftAllowance: Decimal; onProgress?: () => void },
): Promise<InvoiceAccountResult> {
  const { start, end } = billingPeriod(input.period);
  for (;;) {
    const r = await settleAccountUsage(db, input.accountId, { limit: 5_000, overdraftAllowance: cfg.overdraftAllowance });
    cfg.onProgress?.();
    if (!r.more) break;
  }

  return db.transaction(async (trx) => {
    await lockBalances(trx, [input.accountId]);
    const existing = await findPeriodInvoice(trx, input.accountId, input.period);
    if (existing && !input.dryRun) {
      return {
        status: 'existing' as const,
        invoiceId: existing.id,
        number: existing.number,
        total: toAmountString(new Money(existing.total)),
        currency: existing.currency,
        issuedAt: existing.issued_at ? new Date(existing.issued_at).toISOString() : undefined,
      };
    }
    const account = await findAccount(trx, input.accountId);
    const usageFrom: Date | string = (await invoicedUntil(trx, input.accountId)) ?? '-infinity';
    const usage = await openUsageAggregates(trx, { accountId: input.accountId, start, usageFrom, end });
    if (usage.length === 0) return { status: 'skipped' as const, reason: 'no billable usage in or before the period' };
    const prices = await linePrices(trx, usage.map((u) => u.priceId));
    const rates = await allTaxRates(trx);
    const taxedAt = new Date(new Date(end).getTime() - 1).toISOString().slice(0, 10);
    const tax = taxTreatment({ country: account.country, vatId: account.vat_id, taxStatus: account.tax_status }, { country: cfg.invoicing.issuer.country }, rates, taxedAt);
    const balance = await accountBalance(trx, input.accountId);
    const built = buildInvoice({
      currency: account.currency,
      usage,
      prices,
      tax,
      plan: account.plan,
      closingBalance: toAmountString(new Money(balance ?? '0')),
    });
    if (input.dryRun) return { status: 'dry-run' as const, total: built.totals.total, currency: built.currency, lines: built.lines.length };

    const issuedAt = input.now;
    const series = invoiceSeries(cfg.invoicing.seriesPrefix, issuedAt);
    const invoice = await insertInvoice(trx, {
      kind: 'invoice',
      account_id: input.accountId,
      period: input.period,
      status: 'draft',
      series,
      plan: account.plan,
      currency: built.currency,
      subtotal: built.totals.subtotal,
      tax_rate: built.totals.taxRate,
      tax_amount: built.totals.taxAmount,
      total: built.totals.total,
      credits_applied: built.totals.creditsApplied,
      amount_due: built.totals.amountDue,
      tax_kind: tax.kind,
      tax_note: built.taxNote,
      customer: JSON.stringify({ name: account.name, country: account.country, vatId: account.vat_id, billingEmail: account.billing_email, accountId: account.id }),
      issuer: JSON.stringify(cfg.invoicing.issuer),
      // The normal rows this invoice consumed are the account's hours in [usage_from, usage_until): reconciliation and retention find them by it.
      usage_from: usageFrom,
      usage_until: end,
    });
    await insertInvoiceLines(
      trx,
      built.lines.map((l) => ({
        invoice_id: invoice.id,
        position: l.position,
        description: l.description,
        model: l.model,
        kind: l.kind,
        quantity: l.quantity,
        unit_price_per_mtok: l.unitPricePerMtok,
        amount: l.amount,
        late: l.late,
        usage_period: l.usagePeriod,
      })),
    );
    // Everything the invoice covered (zero-cost rows included) is now invoiced: the normal rows by the boundary,
    // which settlement reads under the same balance lock, so usage it settles into these hours from now on is late;
    // the few late rows by their mark. The boundary never moves back (an earlier period invoiced afterwards takes only late rows).
    await markLateUsageInvoiced(trx, input.accountId, end, invoice.id);
    await advanceInvoicedBoundary(trx, input.accountId, end, invoice.id);
    // Last, so the series row (which every finalization waits for) is held as briefly as possible.
    const number = documentNumber(series, await nextNumberInSeries(trx, series));
    const due = account.plan === 'postpaid' ? dueDate(issuedAt.toISOString(), cfg.invoicing.paymentTermsDays) : null;
    await finalizeInvoice(trx, invoice.id, { number, issued_at: issuedAt, due_date: due });
    await recordAccountEvent(trx, {
      accountId: input.accountId,
      type: 'invoice.finalized',
      dedupeKey: `invoice.finalized:${invoice.id}`,
      data: { accountId: input.accountId, invoiceId: invoice.id, number, period: input.period, total: built.totals.total, amountDue: built.totals.amountDue, currency: built.currency, dueDate: due },
    });
    return { status: 'invoiced' as const, invoiceId: invoice.id, number, total: built.totals.total, currency: built.currency };
  });
}
