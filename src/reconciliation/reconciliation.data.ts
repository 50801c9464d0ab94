import type Decimal from 'decimal.js';
import { buildInvoice, type UsageAggregate } from '../invoicing/invoice.rules';
import { Money, toAmountString } from '../shared/money.rules';
import { DISCREPANCY_KINDS, fingerprint, verdict, type CheckName, type Discrepancy, type ReconcileWindow, type Verdict } from './reconciliation.rules';
import type { StatementRow } from './providerStatement.rules';
import type { TaxTreatment } from '../invoicing/tax.rules';
import { linePrices } from '../invoicing/invoicing.data';
import type { Db } from '../db/knex';
import { postEntries } from '../ledger/ledger.data';
import { settleAccountUsage, settlementDataErrorCode } from '../metering/settlement.data';
import { CONSUMED_THROUGH_BOUNDARY } from '../metering/uninvoicedSql';

/**
 * Reconciliation checks, as set-based SQL: events are aggregated in
 * PostgreSQL, never loaded into Node. Only the rows that disagree come back,
 * and each becomes a discrepancy of the report.
 *
 * The two safe repairs write through the same idempotent paths as normal
 * operation: overdue usage is settled by `settleAccountUsage` (its batch key
 * is derived from the events), and a missing deduction is posted with the
 * batch's own settlement key as idempotency key. Both name the report in the
 * entry's reason. Nothing else is written outside the report tables.
 */

export interface CheckContext {
  db: Db;
  reportId: string;
  window: ReconcileWindow;
  now: Date;
  settlementLagS: number;
  paymentGraceS: number;
  overdraftAllowance: Decimal;
  /** Called between steps of a long check (activity heartbeats). */
  onProgress?: () => void;
}

export interface CheckCounts {
  found: number;
  repaired: number;
  needsAttention: number;
  new: number;
}

const ACTOR = 'system:reconcile';
const money = (v: string | null | undefined): string => toAmountString(new Money(v ?? '0'));
const diff = (expected: string, actual: string): string => toAmountString(new Money(actual).minus(expected));

// --- reports ----------------------------------------------------------------

export async function openReport(
  db: Db,
  input: { id: string; workflowId: string; window: ReconcileWindow; trigger: 'schedule' | 'staff'; requestedBy: string },
): Promise<void> {
  await db('reconciliation_reports')
    .insert({
      id: input.id,
      workflow_id: input.workflowId,
      scope: input.window.scope,
      label: input.window.label,
      window_start: input.window.start,
      window_end: input.window.end,
      trigger: input.trigger,
      requested_by: input.requestedBy,
    })
    .onConflict('id')
    .ignore();
}

/**
 * Stores a check's discrepancies (a retried check adds nothing: unique per
 * report and fingerprint) and its counts in the report.
 */
export async function recordCheck(db: Db, reportId: string, check: CheckName, found: Discrepancy[], ms: number): Promise<CheckCounts> {
  for (const d of found) {
    const k = DISCREPANCY_KINDS[d.kind];
    // Only the safe classes may ever be repaired; a bug that says otherwise stops here.
    if (k.check !== check || (d.resolution === 'repaired' && !k.safe)) throw new Error(`discrepancy ${d.kind} cannot be ${d.resolution} by the ${check} check`);
  }
  for (let i = 0; i < found.length; i += 1_000) {
    const chunk = found.slice(i, i + 1_000).map((d) => ({
      check_name: check,
      kind: d.kind,
      fingerprint: fingerprint(d.kind, d.subject),
      account_id: d.accountId,
      subject: d.subject,
      expected: d.expected,
      actual: d.actual,
      difference: d.expected !== null && d.actual !== null ? diff(d.expected, d.actual) : null,
      unit: d.unit,
      details: d.details,
      resolution: d.resolution,
      repair_ref: d.repairRef,
    }));
    await db.raw(
      `INSERT INTO reconciliation_discrepancies
              (report_id, check_name, kind, fingerprint, account_id, subject, expected, actual, difference, unit, details, resolution, repair_ref, first_report_id)
       SELECT ?::uuid, x.check_name, x.kind, x.fingerprint, x.account_id, x.subject, x.expected, x.actual, x.difference, x.unit, x.details, x.resolution, x.repair_ref,
              COALESCE((SELECT d.report_id FROM reconciliation_discrepancies d WHERE d.fingerprint = x.fingerprint ORDER BY d.id LIMIT 1), ?::uuid)
         FROM jsonb_to_recordset(?::jsonb) AS x(check_name text, kind text, fingerprint text, account_id uuid, subject text, expected numeric, actual numeric,
                                                difference numeric, unit text, details jsonb, resolution text, repair_ref text)
       ON CONFLICT (report_id, fingerprint) DO NOTHING`,
      [reportId, reportId, JSON.stringify(chunk)],
    );
  }
  const counts = await checkCounts(db, reportId, check);
  await db.raw(`UPDATE reconciliation_reports SET checks = checks || jsonb_build_object(?::text, ?::jsonb) WHERE id = ?`, [
    check,
    JSON.stringify({ ...counts, ms: Math.round(ms) }),
    reportId,
  ]);
  return counts;
}

async function checkCounts(db: Db, reportId: string, check?: CheckName): Promise<CheckCounts> {
  const q = db('reconciliation_discrepancies')
    .where({ report_id: reportId })
    .first(
      db.raw('count(*)::int AS found'),
      db.raw(`count(*) FILTER (WHERE resolution = 'repaired')::int AS repaired`),
      db.raw(`count(*) FILTER (WHERE resolution = 'needs_attention')::int AS needs_attention`),
      db.raw('count(*) FILTER (WHERE first_report_id = report_id)::int AS new'),
    );
  if (check) q.where({ check_name: check });
  const r = await q;
  return { found: r.found, repaired: r.repaired, needsAttention: r.needs_attention, new: r.new };
}

export interface ReportSummary extends CheckCounts {
  reportId: string;
  verdict: Verdict;
}

export async function closeReport(db: Db, reportId: string): Promise<ReportSummary> {
  const counts = await checkCounts(db, reportId);
  const v = verdict(counts);
  await db('reconciliation_reports').where({ id: reportId }).update({
    status: 'finished',
    verdict: v,
    discrepancies: counts.found,
    repaired: counts.repaired,
    needs_attention: counts.needsAttention,
    new_discrepancies: counts.new,
    finished_at: db.raw('COALESCE(finished_at, now())'),
  });
  return { reportId, verdict: v, ...counts };
}

// --- 1. payments against top-up entries -----------------------------------------

export async function checkPayments(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const graceCutoff = new Date(ctx.now.getTime() - ctx.paymentGraceS * 1000).toISOString();
  const out: Discrepancy[] = [];
  const payments = (
    await db.raw(
      `SELECT p.id, p.provider, p.provider_payment_id, p.account_id, p.amount::text AS amount,
              count(le.id)::int AS entries, COALESCE(sum(le.amount), 0)::text AS credited,
              COALESCE(bool_and(le.account_id = p.account_id), true) AS same_account, array_agg(le.id) FILTER (WHERE le.id IS NOT NULL) AS entry_ids
         FROM payments p
         LEFT JOIN ledger_entries le
                ON le.kind = 'topup' AND le.reference_type = 'payment' AND le.reference_id = p.provider || ':' || p.provider_payment_id
        WHERE p.status = 'succeeded' AND p.received_at >= ? AND p.received_at < ? AND p.received_at < ?
        GROUP BY p.id
       HAVING count(le.id) <> 1 OR COALESCE(sum(le.amount), 0) <> p.amount OR NOT COALESCE(bool_and(le.account_id = p.account_id), true)`,
      [window.start, window.end, graceCutoff],
    )
  ).rows;
  for (const p of payments) {
    const subject = `${p.provider}:${p.provider_payment_id}`;
    const details = { paymentId: p.id, ledgerEntryIds: (p.entry_ids ?? []).map(String), entries: p.entries };
    const kind = p.entries === 0 ? 'payment_without_topup' : p.entries > 1 ? 'payment_duplicate_topup' : 'topup_amount_mismatch';
    out.push({
      kind,
      subject,
      accountId: p.account_id,
      expected: money(p.amount),
      actual: money(p.credited),
      unit: 'USD',
      details: kind === 'topup_amount_mismatch' && !p.same_account ? { ...details, creditedAnotherAccount: true } : details,
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  const orphans = (
    await db.raw(
      `SELECT le.id, le.account_id, le.amount::text AS amount, le.reference_id
         FROM ledger_entries le
        WHERE le.kind = 'topup' AND le.created_at >= ? AND le.created_at < ?
          AND NOT EXISTS (
                SELECT 1 FROM payments p
                 WHERE p.status = 'succeeded'
                   AND p.provider = split_part(le.reference_id, ':', 1)
                   AND p.provider_payment_id = substr(le.reference_id, length(split_part(le.reference_id, ':', 1)) + 2))`,
      [window.start, window.end],
    )
  ).rows;
  for (const e of orphans) {
    out.push({
      kind: 'topup_without_payment',
      subject: `entry:${e.id}`,
      accountId: e.account_id,
      expected: '0',
      actual: money(e.amount),
      unit: 'USD',
      details: { ledgerEntryId: String(e.id), reference: e.reference_id },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  return out;
}

// --- 2. usage: events, usage_hourly and deductions ------------------------------------

export async function checkUsage(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const out: Discrepancy[] = [];
  const reason = `reconciliation report ${ctx.reportId}`;

  // a. Overdue usage: settled here, through the normal settlement (safe repair).
  const cutoff = new Date(Math.min(ctx.now.getTime() - ctx.settlementLagS * 1000, new Date(window.end).getTime()));
  const overdue = (
    await db.raw(
      `SELECT account_id, count(*)::int AS events, sum(cost)::text AS cost
         FROM usage_events
        WHERE occurred_at >= ? AND occurred_at < ? AND settled_at IS NULL
        GROUP BY account_id ORDER BY account_id`,
      [window.start, cutoff.toISOString()],
    )
  ).rows;
  for (const o of overdue) {
    const keys: string[] = [];
    let events = 0;
    let cost = new Money(0);
    let refused: string | undefined;
    for (;;) {
      let r;
      try {
        r = await settleAccountUsage(db, o.account_id, { limit: 5_000, overdraftAllowance: ctx.overdraftAllowance, before: cutoff, actor: ACTOR, reason });
      } catch (err) {
        // Usage the data refuses (the settlement shard set it aside too) is for billing staff, not a failed check.
        refused = settlementDataErrorCode(err);
        if (refused === undefined) throw err;
        break;
      }
      if (r.settlementKey) keys.push(r.settlementKey);
      events += r.events;
      cost = cost.plus(r.cost);
      ctx.onProgress?.();
      if (!r.more) break;
    }
    if (refused !== undefined) {
      out.push({
        kind: 'unsettled_usage',
        subject: `${o.account_id}:refused`,
        accountId: o.account_id,
        expected: money(o.cost),
        actual: toAmountString(cost),
        unit: 'USD',
        details: { events: o.events, settledEvents: events, settlementKeys: keys, refusedWith: refused, settledBefore: cutoff.toISOString() },
        resolution: 'needs_attention',
        repairRef: null,
      });
      continue;
    }
    // Zero: the metering workflow settled them between the query and the lock.
    if (events === 0) continue;
    out.push({
      kind: 'unsettled_usage',
      subject: `${o.account_id}:${keys[0]}`,
      accountId: o.account_id,
      expected: money(o.cost),
      actual: '0',
      unit: 'USD',
      details: { events, settledCost: toAmountString(cost), settlementKeys: keys, settledBefore: cutoff.toISOString() },
      resolution: 'repaired',
      repairRef: keys.join(','),
    });
  }

  // b. Each settled batch against its ledger entry. The window may hold part
  // of a batch that straddles its edge, so candidates are confirmed against
  // the whole batch (a few rows, by account) before anything is reported.
  const candidates = (
    await db.raw(
      `WITH w AS (
         -- By key alone (a key names one account): the planner then estimates the groups
         -- right and hashes them in memory instead of sorting ten million rows on disk.
         SELECT min(account_id::text)::uuid AS account_id, settlement_key, sum(cost) AS cost
           FROM usage_events
          WHERE occurred_at >= ? AND occurred_at < ? AND settled_at IS NOT NULL
          GROUP BY settlement_key)
       SELECT w.account_id, w.settlement_key
         FROM w LEFT JOIN ledger_entries le ON le.idempotency_key = w.settlement_key
        WHERE (le.id IS NULL AND w.cost > 0) OR (le.id IS NOT NULL AND (le.amount <> -w.cost OR le.account_id <> w.account_id))`,
      [window.start, window.end],
    )
  ).rows as { account_id: string; settlement_key: string }[];
  ctx.onProgress?.();
  if (candidates.length) {
    const batches = (
      await db.raw(
        `SELECT e.account_id, e.settlement_key, count(*)::int AS events, sum(e.cost)::text AS cost,
                le.id AS entry_id, le.amount::text AS entry_amount, le.account_id AS entry_account
           FROM usage_events e LEFT JOIN ledger_entries le ON le.idempotency_key = e.settlement_key
          WHERE e.account_id = ANY(?::uuid[]) AND e.settlement_key = ANY(?::text[])
          GROUP BY e.account_id, e.settlement_key, le.id
          ORDER BY e.account_id, e.settlement_key`,
        [[...new Set(candidates.map((c) => c.account_id))], candidates.map((c) => c.settlement_key)],
      )
    ).rows;
    for (const b of batches) {
      const cost = new Money(b.cost);
      if (b.entry_id === null) {
        if (cost.lte(0)) continue;
        const [r] = await db.transaction((trx) =>
          postEntries(
            trx,
            [
              {
                accountId: b.account_id,
                kind: 'usage',
                contra: 'revenue',
                amount: cost.neg(),
                idempotencyKey: b.settlement_key,
                referenceType: 'usage_batch',
                referenceId: b.settlement_key,
                actor: ACTOR,
                reason,
              },
            ],
            { overdraftAllowance: ctx.overdraftAllowance },
          ),
        );
        out.push({
          kind: 'usage_deduction_missing',
          subject: b.settlement_key,
          accountId: b.account_id,
          expected: toAmountString(cost.neg()),
          actual: '0',
          unit: 'USD',
          details: { events: b.events, ledgerEntryId: String(r!.entry.id) },
          resolution: 'repaired',
          repairRef: b.settlement_key,
        });
      } else if (!new Money(b.entry_amount).eq(cost.neg()) || b.entry_account !== b.account_id) {
        out.push({
          kind: 'usage_deduction_mismatch',
          subject: b.settlement_key,
          accountId: b.account_id,
          expected: toAmountString(cost.neg()),
          actual: money(b.entry_amount),
          unit: 'USD',
          details: { events: b.events, ledgerEntryId: String(b.entry_id), ...(b.entry_account !== b.account_id ? { entryAccountId: b.entry_account } : {}) },
          resolution: 'needs_attention',
          repairRef: null,
        });
      }
    }
  }

  // c. Deductions posted in the window whose batch has no events. Settlement
  // posts an entry minutes after its events, so events are looked for from a
  // day before the window (every extra day is another full partition in the
  // anti-join); the few left, late batches included, are confirmed without bounds.
  const lookback = new Date(new Date(window.start).getTime() - 86_400_000).toISOString();
  const orphanCandidates = (
    await db.raw(
      `SELECT le.id, le.account_id, le.idempotency_key, le.amount::text AS amount
         FROM ledger_entries le
        WHERE le.kind = 'usage' AND le.reference_type = 'usage_batch' AND le.created_at >= ? AND le.created_at < ?
          AND NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.settlement_key = le.idempotency_key AND e.occurred_at >= ? AND e.occurred_at < ?)`,
      [window.start, window.end, lookback, window.end],
    )
  ).rows;
  for (const e of orphanCandidates) {
    const found = await db('usage_events').where({ account_id: e.account_id, settlement_key: e.idempotency_key }).first(db.raw('1 AS one'));
    if (found) continue;
    out.push({
      kind: 'usage_deduction_without_events',
      subject: e.idempotency_key,
      accountId: e.account_id,
      expected: '0',
      actual: money(e.amount),
      unit: 'USD',
      details: { ledgerEntryId: String(e.id) },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  ctx.onProgress?.();

  // d. Per account: settled events of the window against usage_hourly's hours
  // of the window (one statement, one snapshot: settlement writes both at once).
  const hourly = (
    await db.raw(
      `WITH ev AS (
         SELECT account_id, count(*) AS requests, sum(cost) AS cost,
                sum(input_tokens + cache_read_tokens + cache_write_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
           FROM usage_events
          WHERE occurred_at >= ? AND occurred_at < ? AND settled_at IS NOT NULL
          GROUP BY account_id),
       hr AS (
         SELECT account_id, sum(requests) AS requests, sum(cost) AS cost,
                sum(input_tokens + cache_read_tokens + cache_write_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
           FROM usage_hourly
          WHERE hour >= ? AND hour < ?
          GROUP BY account_id)
       SELECT COALESCE(ev.account_id, hr.account_id) AS account_id,
              COALESCE(ev.requests, 0)::text AS ev_requests, COALESCE(ev.cost, 0)::text AS ev_cost,
              COALESCE(ev.input_tokens, 0)::text AS ev_input, COALESCE(ev.output_tokens, 0)::text AS ev_output,
              COALESCE(hr.requests, 0)::text AS hr_requests, COALESCE(hr.cost, 0)::text AS hr_cost,
              COALESCE(hr.input_tokens, 0)::text AS hr_input, COALESCE(hr.output_tokens, 0)::text AS hr_output
         FROM ev FULL JOIN hr ON hr.account_id = ev.account_id
        WHERE COALESCE(ev.requests, 0) <> COALESCE(hr.requests, 0) OR COALESCE(ev.cost, 0) <> COALESCE(hr.cost, 0)
           OR COALESCE(ev.input_tokens, 0) <> COALESCE(hr.input_tokens, 0) OR COALESCE(ev.output_tokens, 0) <> COALESCE(hr.output_tokens, 0)`,
      [window.start, window.end, window.start, window.end],
    )
  ).rows;
  for (const h of hourly) {
    out.push({
      kind: 'usage_hourly_mismatch',
      subject: `${h.account_id}:${window.label}`,
      accountId: h.account_id,
      expected: money(h.ev_cost),
      actual: money(h.hr_cost),
      unit: 'USD',
      details: {
        events: { requests: Number(h.ev_requests), inputTokens: Number(h.ev_input), outputTokens: Number(h.ev_output) },
        usageHourly: { requests: Number(h.hr_requests), inputTokens: Number(h.hr_input), outputTokens: Number(h.hr_output) },
      },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  return out;
}

// --- 3. balances against their entries ---------------------------------------------

export async function checkBalances(ctx: CheckContext): Promise<Discrepancy[]> {
  const rows = (
    await ctx.db.raw(
      `SELECT b.account_id, b.balance::text AS balance, COALESCE(s.total, 0)::text AS total, COALESCE(s.entries, 0)::int AS entries
         FROM account_balances b
         LEFT JOIN (SELECT account_id, sum(amount) AS total, count(*) AS entries FROM ledger_entries GROUP BY account_id) s ON s.account_id = b.account_id
        WHERE b.balance <> COALESCE(s.total, 0)
        ORDER BY b.account_id`,
    )
  ).rows;
  // The subject carries both figures: the same mismatch is the same discrepancy, a changed one is new.
  return rows.map((r: { account_id: string; balance: string; total: string; entries: number }) => ({
    kind: 'balance_mismatch' as const,
    subject: `${r.account_id}:${money(r.total)}:${money(r.balance)}`,
    accountId: r.account_id,
    expected: money(r.total),
    actual: money(r.balance),
    unit: 'USD',
    details: { entries: r.entries },
    resolution: 'needs_attention' as const,
    repairRef: null,
  }));
}

// --- 4. invoices against their usage, and gapless numbers ----------------------------

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
      const number = `${g.series}-${String(g.n).padStart(6, '0')}`;
      out.push({
        kind: 'invoice_number_gap',
        subject: number,
        accountId: null,
        expected: null,
        actual: null,
        unit: 'number',
        details: { series: g.series, missingNumber: number, lastAllocated: `${g.series}-${String(g.next_number - 1).padStart(6, '0')}` },
        resolution: 'needs_attention',
        repairRef: null,
      });
    }
  }
  return out;
}

// --- 5. providers' statements against our metering -------------------------------------

export async function checkProviderUsage(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const rows = (
    await db.raw(
      `WITH st AS (
         SELECT provider, day, model, input_tokens, cached_tokens, output_tokens, cost, currency
           FROM provider_statements
          WHERE day >= (?::timestamptz AT TIME ZONE 'UTC')::date AND day < (?::timestamptz AT TIME ZONE 'UTC')::date),
       covered AS (SELECT DISTINCT provider, day FROM st),
       ours AS (
         SELECT e.provider, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.upstream_model AS model, count(*) AS requests,
                sum(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens) AS input_tokens,
                sum(e.cache_read_tokens) AS cached_tokens, sum(e.output_tokens) AS output_tokens, sum(e.cost) AS cost
           FROM usage_events e
          WHERE e.occurred_at >= ? AND e.occurred_at < ? AND e.provider IS NOT NULL AND e.upstream_model IS NOT NULL
          GROUP BY 1, 2, 3),
       ours_covered AS (SELECT o.* FROM ours o JOIN covered c ON c.provider = o.provider AND c.day = o.day)
       SELECT COALESCE(st.provider, o.provider) AS provider, to_char(COALESCE(st.day, o.day), 'YYYY-MM-DD') AS day, COALESCE(st.model, o.model) AS model,
              COALESCE(o.requests, 0)::text AS requests,
              COALESCE(o.input_tokens, 0)::text AS our_input, COALESCE(o.cached_tokens, 0)::text AS our_cached,
              COALESCE(o.output_tokens, 0)::text AS our_output, COALESCE(o.cost, 0)::text AS our_cost,
              COALESCE(st.input_tokens, 0)::text AS their_input, COALESCE(st.cached_tokens, 0)::text AS their_cached,
              COALESCE(st.output_tokens, 0)::text AS their_output, COALESCE(st.cost, 0)::text AS their_cost, st.currency
         FROM st FULL JOIN ours_covered o ON o.provider = st.provider AND o.day = st.day AND o.model = st.model
        WHERE COALESCE(st.input_tokens, 0) <> COALESCE(o.input_tokens, 0)
           OR COALESCE(st.cached_tokens, 0) <> COALESCE(o.cached_tokens, 0)
           OR COALESCE(st.output_tokens, 0) <> COALESCE(o.output_tokens, 0)
        ORDER BY 1, 2, 3`,
      [window.start, window.end, window.start, window.end],
    )
  ).rows;
  return rows.map((r: Record<string, string>) => {
    const ours = { input: Number(r.our_input), cached: Number(r.our_cached), output: Number(r.our_output) };
    const theirs = { input: Number(r.their_input), cached: Number(r.their_cached), output: Number(r.their_output) };
    return {
      kind: 'provider_usage_mismatch' as const,
      // Both token totals in the subject: a corrected statement that still disagrees is a new discrepancy.
      subject: `${r.provider}:${r.day}:${r.model}:${theirs.input}/${theirs.cached}/${theirs.output}:${ours.input}/${ours.cached}/${ours.output}`,
      accountId: null,
      expected: String(ours.input + ours.output),
      actual: String(theirs.input + theirs.output),
      unit: 'tokens',
      details: {
        provider: r.provider,
        day: r.day,
        model: r.model,
        requests: Number(r.requests),
        tokens: {
          ours,
          theirs,
          difference: { input: theirs.input - ours.input, cached: theirs.cached - ours.cached, output: theirs.output - ours.output },
        },
        cost: { providerBilled: money(r.their_cost), currency: r.currency ?? 'USD', weCharged: money(r.our_cost), margin: diff(r.their_cost!, r.our_cost!) },
      },
      resolution: 'needs_attention' as const,
      repairRef: null,
    };
  });
}

export const CHECK_FUNCTIONS: Record<CheckName, (ctx: CheckContext) => Promise<Discrepancy[]>> = {
  usage: checkUsage,
  payments: checkPayments,
  balances: checkBalances,
  invoices: checkInvoices,
  provider_usage: checkProviderUsage,
};

// --- provider statements ----------------------------------------------------------

/** Stores a statement; a row for a day and model already imported is replaced (a provider's corrected statement). */
export async function importStatement(db: Db, input: { provider: string; rows: StatementRow[]; sha256: string; actor: string }): Promise<{ rows: number; days: string[] }> {
  await db.transaction(async (trx) => {
    for (let i = 0; i < input.rows.length; i += 1_000) {
      await trx('provider_statements')
        .insert(
          input.rows.slice(i, i + 1_000).map((r) => ({
            provider: input.provider,
            day: r.day,
            model: r.model,
            input_tokens: r.inputTokens,
            cached_tokens: r.cachedTokens,
            output_tokens: r.outputTokens,
            cost: r.cost,
            currency: r.currency,
            source_sha256: input.sha256,
            imported_by: input.actor,
            imported_at: trx.fn.now(),
          })),
        )
        .onConflict(['provider', 'day', 'model'])
        .merge();
    }
  });
  return { rows: input.rows.length, days: [...new Set(input.rows.map((r) => r.day))].sort() };
}
