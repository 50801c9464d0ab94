import type Decimal from 'decimal.js';
import { billingPeriod, buildInvoice, dueDate, InvoiceDataError, type LinePrice, type UsageAggregate } from './invoice.rules';
import { Money, toAmountString } from '../shared/money.rules';
import { taxTreatment, type TaxRate } from './tax.rules';
import type { Config } from '../config';
import type { InvoiceAccountResult } from '../../workflows/messages';
import type { Db, DbOrTrx } from '../db/knex';
import { lockBalances } from '../ledger/ledger.data';
import { settleAccountUsage } from '../metering/settlement.data';
import { openUsageExistsSql } from '../metering/uninvoicedSql';

/**
 * Accounts to invoice for a period, in id order from `after` (keyset paging):
 * those with usage not yet invoiced from before the period's end (settled or
 * not), and those that already have this period's invoice (a re-run reports
 * them as existing).
 */
export async function listBillableAccounts(
  db: Db,
  input: { period: string; after: string | null; limit: number; accountIds?: string[] },
): Promise<string[]> {
  const { end } = billingPeriod(input.period);
  const q = db('accounts as a')
    .where((w) =>
      w
        .whereRaw(openUsageExistsSql('a.id', 'u.hour < ?::timestamptz'), [end, end])
        .orWhereExists(db('usage_events as e').whereRaw('e.account_id = a.id').whereNull('e.settled_at').where('e.occurred_at', '<', end).select(db.raw('1')))
        .orWhereExists(db('invoices as i').whereRaw('i.account_id = a.id').where({ 'i.period': input.period, 'i.kind': 'invoice' }).select(db.raw('1'))),
    )
    .orderBy('a.id')
    .limit(input.limit)
    .pluck('a.id');
  if (input.after) q.where('a.id', '>', input.after);
  if (input.accountIds?.length) q.whereIn('a.id', input.accountIds);
  return q;
}


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
    const existing = await trx('invoices').where({ account_id: input.accountId, period: input.period, kind: 'invoice' }).first();
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
    const account = await trx('accounts').where({ id: input.accountId }).first();
    const boundary = await trx('usage_invoiced_boundaries').where({ account_id: input.accountId }).first('invoiced_until');
    const usageFrom: Date | string = boundary?.invoiced_until ?? '-infinity';
    // Aggregated in PostgreSQL: a month of hourly rows per model becomes a few line groups. The open
    // usage (see uninvoiced.ts) in two branches, each a range of one index. `late` labels the lines of
    // earlier periods, whichever kind of row they come from.
    const grouped: { model: string; price_id: string; usage_period: string; late: boolean; input: string; cached: string; cache_write: string; cache_write_1h: string; output: string }[] = (
      await trx.raw(
        `SELECT model, price_id, to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM') AS usage_period, hour < ?::timestamptz AS late,
                sum(input_tokens)::text AS input, sum(cache_read_tokens)::text AS cached,
                sum(cache_write_tokens)::text AS cache_write, sum(cache_write_1h_tokens)::text AS cache_write_1h, sum(output_tokens)::text AS output
           FROM (SELECT model, price_id, hour, input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens
                   FROM usage_hourly
                  WHERE account_id = ? AND invoiced_by IS NULL AND NOT late AND hour >= ?::timestamptz AND hour < ?::timestamptz
                    AND cost > 0 AND price_id <> ''
                 UNION ALL
                 SELECT model, price_id, hour, input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens
                   FROM usage_hourly
                  WHERE account_id = ? AND invoiced_by IS NULL AND late AND hour < ?::timestamptz
                    AND cost > 0 AND price_id <> '') open
          GROUP BY 1, 2, 3, 4`,
        [start, input.accountId, usageFrom, end, input.accountId, end],
      )
    ).rows;
    if (grouped.length === 0) return { status: 'skipped' as const, reason: 'no billable usage in or before the period' };
    const groups = new Map<string, UsageAggregate>(
      grouped.map((g) => [
        `${g.model}|${g.price_id}|${g.late}|${g.usage_period}`,
        {
          model: g.model,
          priceId: g.price_id,
          inputTokens: Number(g.input),
          cacheReadTokens: Number(g.cached),
          cacheWriteTokens: Number(g.cache_write),
          cacheWrite1hTokens: Number(g.cache_write_1h),
          outputTokens: Number(g.output),
          late: g.late,
          usagePeriod: g.usage_period,
        },
      ]),
    );
    const billable = grouped;
    const prices = await linePrices(trx, billable.map((g) => g.price_id));
    const rates: TaxRate[] = (await trx('tax_rates').select('*')).map((r) => ({
      country: r.country,
      rate: toAmountString(new Money(r.rate)),
      effectiveFrom: r.effective_from,
      effectiveTo: r.effective_to ?? null,
    }));
    const taxedAt = new Date(new Date(end).getTime() - 1).toISOString().slice(0, 10);
    const tax = taxTreatment({ country: account.country, vatId: account.vat_id, taxStatus: account.tax_status }, { country: cfg.invoicing.issuer.country }, rates, taxedAt);
    const balance = await trx('account_balances').where({ account_id: input.accountId }).first('balance');
    const built = buildInvoice({
      currency: account.currency,
      usage: [...groups.values()],
      prices,
      tax,
      plan: account.plan,
      closingBalance: toAmountString(new Money(balance?.balance ?? '0')),
    });
    if (input.dryRun) return { status: 'dry-run' as const, total: built.totals.total, currency: built.currency, lines: built.lines.length };

    const issuedAt = input.now;
    const series = `${cfg.invoicing.seriesPrefix}-${issuedAt.getUTCFullYear()}`;
    const [invoice] = await trx('invoices')
      .insert({
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
      })
      .returning('id');
    await trx('invoice_lines').insert(
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
    await trx('usage_hourly').where({ account_id: input.accountId, late: true }).whereNull('invoiced_by').where('hour', '<', end).update({ invoiced_by: invoice.id });
    await trx.raw(
      `INSERT INTO usage_invoiced_boundaries AS b (account_id, invoiced_until, invoice_id) VALUES (?, ?::timestamptz, ?)
       ON CONFLICT (account_id) DO UPDATE SET invoiced_until = EXCLUDED.invoiced_until, invoice_id = EXCLUDED.invoice_id, updated_at = now()
        WHERE b.invoiced_until < EXCLUDED.invoiced_until`,
      [input.accountId, end, invoice.id],
    );
    // Last, so the series row (which every finalization waits for) is held as briefly as possible.
    const number = await allocateNumber(trx, series);
    await trx('invoices')
      .where({ id: invoice.id })
      .update({
        status: 'finalized',
        number,
        issued_at: issuedAt,
        due_date: account.plan === 'postpaid' ? dueDate(issuedAt.toISOString(), cfg.invoicing.paymentTermsDays) : null,
      });
    return { status: 'invoiced' as const, invoiceId: invoice.id, number, total: built.totals.total, currency: built.currency };
  });
}

/**
 * The next number of a series, from a row locked until this transaction
 * ends: finalizations of one series take turns, and a rollback returns the
 * number, so the sequence has no gaps and no duplicates.
 */
export async function allocateNumber(trx: Db, series: string): Promise<string> {
  await trx.raw(`INSERT INTO invoice_sequences (series) VALUES (?) ON CONFLICT DO NOTHING`, [series]);
  const { rows } = await trx.raw(`UPDATE invoice_sequences SET next_number = next_number + 1 WHERE series = ? RETURNING next_number - 1 AS n`, [series]);
  return `${series}-${String(rows[0].n).padStart(6, '0')}`;
}

export { InvoiceDataError };

/** The prices with these ids (repeats allowed), as invoice lines show them, by id. */
export async function linePrices(db: DbOrTrx, priceIds: readonly string[]): Promise<Map<string, LinePrice>> {
  const priceRows = await db('prices').whereIn('id', [...new Set(priceIds)]);
  return new Map<string, LinePrice>(
    priceRows.map((p) => [
      p.id,
      {
        inputPerMtok: p.input_per_mtok,
        cachedInputPerMtok: p.cached_input_per_mtok,
        outputPerMtok: p.output_per_mtok,
        cacheWritePerMtok: p.cache_write_per_mtok,
        cacheWrite1hPerMtok: p.cache_write_1h_per_mtok,
        effectiveFrom: new Date(p.effective_from).toISOString(),
      },
    ]),
  );
}
