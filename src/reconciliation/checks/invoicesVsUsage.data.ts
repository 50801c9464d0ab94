import { buildInvoice, type UsageAggregate } from '../../invoicing/invoice.rules';
import { documentNumber } from '../../invoicing/numbering.rules';
import { Money, toAmountString } from '../../shared/money.rules';
import type { Discrepancy } from '../reconciliation.rules';
import type { TaxTreatment } from '../../invoicing/tax.rules';
import { linePrices } from '../../invoicing/invoicing.data';
import { CONSUMED_THROUGH_BOUNDARY } from '../../metering/uninvoiced.data';
import { money } from './amounts.rules';
import type { CheckContext } from './checkContext.data';

/**
 * The `invoices` check: each finalized or void invoice of the window, priced
 * again from the usage it consumed, has the lines and totals it stores; and
 * the numbers of their series have no gaps.
 */

interface InvoiceRow {
  id: string;
  number: string;
  series: string;
  account_id: string;
  currency: string;
  plan: 'prepaid' | 'postpaid';
  subtotal: string;
  tax_rate: string;
  tax_amount: string;
  total: string;
  tax_kind: TaxTreatment['kind'];
}

interface UsageGroupRow {
  invoice_id: string;
  model: string;
  price_id: string;
  usage_period: string;
  late: boolean;
  input: string;
  cached: string;
  cache_write: string;
  cache_write_1h: string;
  output: string;
}

export async function checkInvoices(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const out: Discrepancy[] = [];
  const scoped = db('invoices').where({ kind: 'invoice' }).whereIn('status', ['finalized', 'void']).whereNotNull('number');
  if (window.scope === 'period') scoped.where({ period: window.label });
  else scoped.where('issued_at', '>=', window.start).where('issued_at', '<', window.end);
  const invoices: InvoiceRow[] = await scoped
    .orderBy('number')
    .select('id', 'number', 'series', 'account_id', 'currency', 'plan', 'subtotal', 'tax_rate', 'tax_amount', 'total', 'tax_kind');

  for (let i = 0; i < invoices.length; i += 500) {
    const chunk = invoices.slice(i, i + 500);
    const ids = chunk.map((inv) => inv.id);
    // The invoice's usage as it was built: the rows it consumed, grouped as the invoice groups them. Those
    // are the rows it marked (late rows, and all of them on invoices from before boundaries) and the normal
    // rows of the account's hours it took through the boundary, [usage_from, usage_until).
    const usage: UsageGroupRow[] = (
      await db.raw(
        `SELECT u.invoice_id, u.model, u.price_id, to_char(u.hour AT TIME ZONE 'UTC', 'YYYY-MM') AS usage_period,
                to_char(u.hour AT TIME ZONE 'UTC', 'YYYY-MM') < u.period AS late,
                sum(u.input_tokens)::text AS input, sum(u.cache_read_tokens)::text AS cached,
                sum(u.cache_write_tokens)::text AS cache_write, sum(u.cache_write_1h_tokens)::text AS cache_write_1h, sum(u.output_tokens)::text AS output
           FROM (SELECT i.id AS invoice_id, i.period, u.*
                   FROM invoices i JOIN usage_hourly u ON u.invoiced_by = i.id
                  WHERE i.id = ANY(?::uuid[])
                 UNION ALL
                 SELECT i.id, i.period, u.*
                   FROM invoices i JOIN usage_hourly u ON ${CONSUMED_THROUGH_BOUNDARY}
                  WHERE i.id = ANY(?::uuid[])) u
          WHERE u.cost > 0 AND u.price_id <> ''
          GROUP BY 1, 2, 3, 4, 5`,
        [ids, ids],
      )
    ).rows;
    const lines = await db('invoice_lines').whereIn('invoice_id', ids).orderBy(['invoice_id', 'position']);
    const prices = await linePrices(db, usage.map((u) => u.price_id));
    for (const inv of chunk) {
      const aggregates: UsageAggregate[] = usage
        .filter((u) => u.invoice_id === inv.id)
        .map((u) => ({
          model: u.model,
          priceId: u.price_id,
          inputTokens: Number(u.input),
          cacheReadTokens: Number(u.cached),
          cacheWriteTokens: Number(u.cache_write),
          cacheWrite1hTokens: Number(u.cache_write_1h),
          outputTokens: Number(u.output),
          late: u.late,
          usagePeriod: u.usage_period,
        }));
      const stored = lines.filter((l) => l.invoice_id === inv.id);
      const problems: string[] = [];
      let expectedTotal = '0';
      try {
        const tax = { kind: inv.tax_kind, rate: toAmountString(new Money(inv.tax_rate)), country: '', note: null } as TaxTreatment;
        const rebuilt = buildInvoice({ currency: inv.currency, usage: aggregates, prices, tax, plan: inv.plan, closingBalance: '0' });
        expectedTotal = rebuilt.totals.total;
        if (rebuilt.lines.length !== stored.length) problems.push(`lines: ${stored.length} stored, ${rebuilt.lines.length} from usage`);
        rebuilt.lines.forEach((l, k) => {
          const s = stored[k];
          if (!s) return;
          if (s.model !== l.model || s.kind !== l.kind || Number(s.quantity) !== l.quantity || !new Money(s.amount).eq(l.amount)) {
            problems.push(`line ${l.position}: stored ${s.model} ${s.kind} ${s.quantity} tokens ${money(s.amount)}, from usage ${l.model} ${l.kind} ${l.quantity} tokens ${l.amount}`);
          }
        });
        for (const f of ['subtotal', 'tax_amount', 'total'] as const) {
          const want = f === 'tax_amount' ? rebuilt.totals.taxAmount : rebuilt.totals[f];
          if (!new Money(inv[f]).eq(want)) problems.push(`${f}: stored ${money(inv[f])}, from usage ${want}`);
        }
      } catch (err) {
        problems.push(`cannot be priced again: ${(err as Error).message}`);
      }
      if (problems.length) {
        out.push({
          kind: 'invoice_mismatch',
          subject: inv.number,
          accountId: inv.account_id,
          expected: money(expectedTotal),
          actual: money(inv.total),
          unit: inv.currency,
          details: { invoiceId: inv.id, problems: problems.slice(0, 20) },
          resolution: 'needs_attention',
          repairRef: null,
        });
      }
    }
    ctx.onProgress?.();
  }

  // Gapless: every number of the series these invoices belong to, up to the last allocated, is carried by an invoice or credit note.
  const series = [...new Set(invoices.map((inv) => inv.series))];
  if (series.length) {
    const gaps = (
      await db.raw(
        `SELECT s.series, n::int AS n, s.next_number::int AS next_number
           FROM invoice_sequences s, generate_series(1, s.next_number - 1) AS n
          WHERE s.series = ANY(?::text[])
            AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.number = s.series || '-' || lpad(n::text, 6, '0'))
          ORDER BY 1, 2`,
        [series],
      )
    ).rows;
    for (const g of gaps) {
      const number = documentNumber(g.series, g.n);
      out.push({
        kind: 'invoice_number_gap',
        subject: number,
        accountId: null,
        expected: null,
        actual: null,
        unit: 'number',
        details: { series: g.series, missingNumber: number, lastAllocated: documentNumber(g.series, g.next_number - 1) },
        resolution: 'needs_attention',
        repairRef: null,
      });
    }
  }
  return out;
}
