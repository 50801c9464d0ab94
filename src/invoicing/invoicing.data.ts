import { billingPeriod, type LinePrice, type UsageAggregate } from './invoice.rules';
import type { Db, DbOrTrx } from '../db/knex';
import { openUsageExistsSql } from '../metering/uninvoiced.data';

/**
 * Invoice queries: accounts to invoice, what an account's invoice is built from, the
 * invoice and credit-note rows, and the numbering counter. The invoicing service runs
 * them in its transactions; each takes the handle (the pool or a transaction) first.
 */

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

/** The account's invoice (not credit note) of a period, if it has one. */
export async function findPeriodInvoice(db: DbOrTrx, accountId: string, period: string) {
  return db('invoices').where({ account_id: accountId, period, kind: 'invoice' }).first();
}

/** The account row an invoice's customer, currency, plan and tax come from. */
export async function findAccount(db: DbOrTrx, accountId: string) {
  return db('accounts').where({ id: accountId }).first();
}

/** Where the account's invoiced hours end (`usage_invoiced_boundaries`); none yet: undefined. */
export async function invoicedUntil(db: DbOrTrx, accountId: string): Promise<Date | undefined> {
  const boundary = await db('usage_invoiced_boundaries').where({ account_id: accountId }).first('invoiced_until');
  return boundary?.invoiced_until;
}

/**
 * The account's usage not yet invoiced up to `end`, added up per model, price
 * version, usage period and late flag: the normal rows of [usageFrom, end) and
 * the late rows of any hour before `end`.
 */
export async function openUsageAggregates(
  db: DbOrTrx,
  input: { accountId: string; start: string; usageFrom: Date | string; end: string },
): Promise<UsageAggregate[]> {
  // Aggregated in PostgreSQL: a month of hourly rows per model becomes a few line groups. The open
  // usage (see src/metering/uninvoiced.data.ts) in two branches, each a range of one index. `late` labels the lines of
  // earlier periods, whichever kind of row they come from.
  const grouped: { model: string; price_id: string; usage_period: string; late: boolean; input: string; cached: string; cache_write: string; cache_write_1h: string; output: string }[] = (
    await db.raw(
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
      [input.start, input.accountId, input.usageFrom, input.end, input.accountId, input.end],
    )
  ).rows;
  return grouped.map((g) => ({
    model: g.model,
    priceId: g.price_id,
    inputTokens: Number(g.input),
    cacheReadTokens: Number(g.cached),
    cacheWriteTokens: Number(g.cache_write),
    cacheWrite1hTokens: Number(g.cache_write_1h),
    outputTokens: Number(g.output),
    late: g.late,
    usagePeriod: g.usage_period,
  }));
}

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

/** The account's ledger balance now (decimal string); no balance row yet: undefined. */
export async function accountBalance(db: DbOrTrx, accountId: string): Promise<string | undefined> {
  const balance = await db('account_balances').where({ account_id: accountId }).first('balance');
  return balance?.balance;
}

/** Inserts an invoice or credit note row (a draft until finalized); returns its id. */
export async function insertInvoice(db: DbOrTrx, row: Record<string, unknown>): Promise<{ id: string }> {
  const [invoice] = await db('invoices').insert(row).returning('id');
  return invoice;
}

export async function insertInvoiceLines(db: DbOrTrx, lines: Record<string, unknown>[]): Promise<void> {
  await db('invoice_lines').insert(lines);
}

/** The account's late rows before `end` not yet on an invoice become this invoice's. */
export async function markLateUsageInvoiced(db: DbOrTrx, accountId: string, end: string, invoiceId: string): Promise<void> {
  await db('usage_hourly').where({ account_id: accountId, late: true }).whereNull('invoiced_by').where('hour', '<', end).update({ invoiced_by: invoiceId });
}

/** Moves the account's invoiced boundary forward to `end` (never back). */
export async function advanceInvoicedBoundary(db: DbOrTrx, accountId: string, end: string, invoiceId: string): Promise<void> {
  await db.raw(
    `INSERT INTO usage_invoiced_boundaries AS b (account_id, invoiced_until, invoice_id) VALUES (?, ?::timestamptz, ?)
     ON CONFLICT (account_id) DO UPDATE SET invoiced_until = EXCLUDED.invoiced_until, invoice_id = EXCLUDED.invoice_id, updated_at = now()
      WHERE b.invoiced_until < EXCLUDED.invoiced_until`,
    [accountId, end, invoiceId],
  );
}

/**
 * Takes the next n of a series from its counter row (created at 1), which stays
 * locked until the transaction ends. Pass a transaction; the numbering rule is in
 * numbering.rules.ts.
 */
export async function nextNumberInSeries(trx: DbOrTrx, series: string): Promise<string> {
  await trx.raw(`INSERT INTO invoice_sequences (series) VALUES (?) ON CONFLICT DO NOTHING`, [series]);
  const { rows } = await trx.raw(`UPDATE invoice_sequences SET next_number = next_number + 1 WHERE series = ? RETURNING next_number - 1 AS n`, [series]);
  return String(rows[0].n);
}

/** A draft becomes final: its number and issue date (and due date, for invoices) are set. */
export async function finalizeInvoice(
  db: DbOrTrx,
  id: string,
  fields: { number: string; issued_at: Date; due_date?: string | null },
): Promise<void> {
  await db('invoices')
    .where({ id })
    .update({ status: 'finalized', ...fields });
}

/** An invoice by id, or undefined. */
export async function findInvoice(db: DbOrTrx, id: string) {
  return db('invoices').where({ id }).first();
}

/** The number of an invoice or credit note, as `{ number }`, or undefined. */
export async function findInvoiceNumber(db: DbOrTrx, id: string) {
  return db('invoices').where({ id }).first('number');
}

/** An invoice by id, its row locked until the transaction ends (pass a transaction). */
export async function lockInvoice(trx: DbOrTrx, id: string) {
  return trx('invoices').where({ id }).forUpdate().first();
}

/** An invoice's lines, in display order. */
export async function invoiceLines(db: DbOrTrx, invoiceId: string) {
  return db('invoice_lines').where({ invoice_id: invoiceId }).orderBy('position');
}

/** A page of invoices by id, optionally of one period and/or account. */
export async function listInvoices(db: DbOrTrx, input: { period?: string; accountId?: string; after?: string; limit: number }) {
  const q = db('invoices').orderBy('id').limit(input.limit);
  if (input.period) q.where({ period: input.period });
  if (input.accountId) q.where({ account_id: input.accountId });
  if (input.after) q.where('id', '>', input.after);
  return q;
}

/** The account's latest issued invoices and credit notes (drafts left out): newest period first, then by number, at most `limit`. */
export async function latestIssuedInvoices(db: DbOrTrx, accountId: string, limit: number) {
  return db('invoices')
    .where({ account_id: accountId })
    .whereNot({ status: 'draft' })
    .orderBy([{ column: 'period', order: 'desc' }, { column: 'number', order: 'desc', nulls: 'last' }, { column: 'id' }])
    .limit(limit);
}

/** A finalized invoice becomes void, pointing at its credit note. */
export async function markInvoiceVoid(db: DbOrTrx, id: string, creditNoteId: string, voidReason: string): Promise<void> {
  await db('invoices').where({ id }).update({ status: 'void', voided_by: creditNoteId, void_reason: voidReason });
}
