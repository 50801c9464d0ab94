/**
 * Reconciliation of one UTC day at scale: seed a day of 10,000,000 settled
 * usage events over 10,000 accounts (with their usage_hourly rows, one
 * `usage` ledger entry per settlement batch, a paid top-up per account,
 * balances and the provider's statements), plant a handful of known
 * discrepancies, then run the five checks of src/reconciliation/checks/ as the
 * `reconcile` workflow would (openReport, each check + recordCheck in the
 * workflow's order, closeReport). Reports seeding time, each check's time,
 * the total, this process's peak RSS and PostgreSQL-side figures, and
 * asserts that the checks found exactly the planted discrepancies.
 * Target: the whole reconciliation in under 2 minutes on this machine.
 *
 *   npm run bench -- reconcile      (BENCH_QUICK=1: 1,000 accounts, 200,000 events)
 *
 * Overrides: BENCH_RECONCILE_ACCOUNTS, BENCH_RECONCILE_EVENTS,
 * BENCH_RECONCILE_BATCH (events per settlement batch, default 100),
 * BENCH_EXPLAIN=0 (skip EXPLAIN ANALYZE of the slowest statements afterwards),
 * BENCH_DATABASE_URL (server to use; a fresh database is created on it),
 * BENCH_RECONCILE_HISTORY_DAYS (default 0: copies of the day's settled events
 * on that many earlier days, in their own partitions and batches, so that the
 * usage check's 7-day look-back for events has the history a running system
 * has; those days get no ledger entries or usage_hourly rows, which no check
 * of the reconciled day reads), BENCH_KEEP_DB=1 (keep the seeded database after a normal end, to study
 * plans; its name is printed; drop it yourself).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { Money } from '../src/shared/money.rules';
import { CHECKS, reconcileWindow, type CheckName, type Discrepancy } from '../src/reconciliation/reconciliation.rules';
import { dropDatabase, ensureDatabase } from '../src/db/database';
import { createDb, type Db } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';
import type { CheckContext } from '../src/reconciliation/checks/checkContext.data';
import { openReport, recordCheck, type CheckCounts } from '../src/reconciliation/reports.data';
import { CHECK_FUNCTIONS, closeReport } from '../src/reconciliation/reconciliation.service';
import { workflowIds } from '../src/temporal/conventions';
import { dropOrKeepDatabase, intEnv, oneLine, round, runMain, sleep, table, writeResults, benchResultsFile } from './lib';

const QUICK = process.env.BENCH_QUICK === '1';
const ACCOUNTS = intEnv('BENCH_RECONCILE_ACCOUNTS', QUICK ? 1_000 : 10_000, 100);
const EVENTS = intEnv('BENCH_RECONCILE_EVENTS', QUICK ? 200_000 : 10_000_000, ACCOUNTS * 2);
const BATCH = intEnv('BENCH_RECONCILE_BATCH', 100, 1);
const HISTORY_DAYS = intEnv('BENCH_RECONCILE_HISTORY_DAYS', 0, 0);
const EXPLAIN = process.env.BENCH_EXPLAIN !== '0';
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const DAY = '2026-10-14';
const TOPUP = 100; // USD per account, paid and credited in the first minutes of the day
const TARGET_MS = 120_000;
/** The defaults of RECONCILE_SETTLEMENT_LAG_S, RECONCILE_PAYMENT_GRACE_S and PREPAID_OVERDRAFT_ALLOWANCE. */
const SETTLEMENT_LAG_S = 900;
const PAYMENT_GRACE_S = 900;
const OVERDRAFT = '0';
const RESULTS_FILE = benchResultsFile('reconcile.json');
const log = (line: string) => process.stdout.write(`[reconcile] ${line}\n`);

// Upstream models with their prices (USD per million tokens: input, cached input, output).
const MODELS = [
  { name: 'bench-mini', upstream: 'gpt-4o-mini', priceId: '00000000-0000-4000-9000-000000000001', input: 0.15, cached: 0.075, output: 0.6 },
  { name: 'bench-large', upstream: 'gpt-4o', priceId: '00000000-0000-4000-9000-000000000002', input: 2.5, cached: 1.25, output: 10 },
  { name: 'bench-reason', upstream: 'o3-mini', priceId: '00000000-0000-4000-9000-000000000003', input: 1.1, cached: 0.55, output: 4.4 },
] as const;

// ------------------------------------------------------------------ accounts and planted discrepancies

/** Account n's id: deterministic, so SQL and this file name the same accounts without a lookup. */
const accountId = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const accountSql = (expr: string) => `('00000000-0000-4000-8000-' || lpad(to_hex(${expr}), 12, '0'))`;
/** A batch's settlement key, shaped like settlement's own ('usage:' account ':' 32 hex digits). */
const batchKey = (n: number, batch: number) => `usage:${accountId(n)}:${createHash('md5').update(`${accountId(n)}/${batch}`).digest('hex')}`;

const EVENTS_PER_ACCOUNT = Math.floor(EVENTS / ACCOUNTS); // at least; the first EVENTS % ACCOUNTS accounts have one more
const PLANT = {
  /** One event each left unsettled (mid-day): found and settled by the usage check. */
  unsettled: [11, 22, 33].map((n) => ({ account: n, event: Math.floor(EVENTS_PER_ACCOUNT / 2) * ACCOUNTS + n })),
  /** Settled batches seeded without their ledger entry: found and posted by the usage check. */
  missingEntry: [
    { account: 44, batch: 0 },
    { account: 55, batch: Math.floor((EVENTS_PER_ACCOUNT - 1) / BATCH) },
  ],
  /** account_balances.balance off by a cent. */
  tamperedBalance: { account: 66, by: '0.01' },
  /** A succeeded payment that was never credited. */
  uncreditedPayment: { account: 77, provider: 'stripe', paymentId: 'pi_bench_uncredited', amount: '25' },
  /** The provider's statement for one model says a few more output tokens than we metered. */
  statementOff: { model: 'gpt-4o', outputTokens: 7 },
};

interface Expected {
  kind: Discrepancy['kind'];
  resolution: Discrepancy['resolution'];
  describe: string;
  matches: (d: { kind: string; subject: string; account_id: string | null; resolution: string }) => boolean;
}

function expectedDiscrepancies(): Expected[] {
  const out: Expected[] = [];
  for (const u of PLANT.unsettled) {
    out.push({ kind: 'unsettled_usage', resolution: 'repaired', describe: `unsettled event of account ${u.account}`, matches: (d) => d.account_id === accountId(u.account) });
  }
  for (const m of PLANT.missingEntry) {
    const key = batchKey(m.account, m.batch);
    out.push({ kind: 'usage_deduction_missing', resolution: 'repaired', describe: `batch ${m.batch} of account ${m.account} without entry`, matches: (d) => d.subject === key });
  }
  const t = PLANT.tamperedBalance;
  out.push({ kind: 'balance_mismatch', resolution: 'needs_attention', describe: `balance of account ${t.account} off by ${t.by}`, matches: (d) => d.account_id === accountId(t.account) });
  const p = PLANT.uncreditedPayment;
  out.push({ kind: 'payment_without_topup', resolution: 'needs_attention', describe: `payment ${p.paymentId} not credited`, matches: (d) => d.subject === `${p.provider}:${p.paymentId}` });
  const s = PLANT.statementOff;
  out.push({ kind: 'provider_usage_mismatch', resolution: 'needs_attention', describe: `statement of ${s.model} off by ${s.outputTokens} output tokens`, matches: (d) => d.subject.startsWith(`openai:${DAY}:${s.model}:`) });
  return out;
}

// ------------------------------------------------------------------ seeding (set-based SQL only)

interface SeedPhase {
  phase: string;
  ms: number;
  rows: number | null;
}

async function seed(databaseUrl: string): Promise<SeedPhase[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-reconcile-seed' });
  await client.connect();
  const phases: SeedPhase[] = [];
  const step = async (phase: string, sql: string, params: unknown[] = []): Promise<void> => {
    const t0 = performance.now();
    const r = await client.query(sql, params);
    const ms = performance.now() - t0;
    phases.push({ phase, ms: Math.round(ms), rows: r.command === 'INSERT' || r.command === 'UPDATE' ? r.rowCount : null });
    log(`  seed ${phase}: ${(ms / 1000).toFixed(1)} s${r.command === 'INSERT' ? ` (${r.rowCount} rows)` : ''}`);
  };
  const day = `${DAY}T00:00:00Z`;
  const stepUs = Math.floor(86_400_000_000 / EVENTS);
  const unsettled = PLANT.unsettled.map((u) => u.event);
  const missingKeys = PLANT.missingEntry.map((m) => batchKey(m.account, m.batch));
  const arr = (f: (m: (typeof MODELS)[number]) => string | number) => `ARRAY[${MODELS.map((m) => (typeof f(m) === 'number' ? String(f(m)) : `'${f(m)}'`)).join(', ')}]`;
  try {
    // A bulk load, not the workload: no need to wait for WAL flushes, and room for sorts and index builds.
    await client.query(`SET synchronous_commit = off`);
    await client.query(`SET maintenance_work_mem = '1GB'`);
    await client.query(`SET work_mem = '256MB'`);

    await step(
      'accounts + balances',
      `WITH a AS (
         INSERT INTO accounts (id, name, country, plan)
         SELECT ${accountSql('n')}::uuid, 'Bench account ' || n, 'DE', 'prepaid' FROM generate_series(0, ${ACCOUNTS - 1}) n
         RETURNING id)
       INSERT INTO account_balances (account_id, balance, held) SELECT id, 0, 0 FROM a`,
    );
    await client.query(`SELECT ensure_usage_events_partition($1::date)`, [DAY]);
    // Indexes are built once after the load: far cheaper than maintaining them row by row.
    await step(
      'drop usage_events indexes',
      `ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey; DROP INDEX usage_events_account_time; DROP INDEX usage_events_unsettled`,
    );
    // Event i: account i % A, the (i / A)-th event of its account, at i × (1 day / N) into the day;
    // batch = (i / A) / BATCH. Model by (i / 7) % 3, tokens and latency varying with i.
    const partition = `usage_events_${DAY.replace(/-/g, '')}`;
    await step(
      'usage_events',
      `INSERT INTO ${partition}
              (request_id, occurred_at, finished_at, account_id, api_key_id, endpoint, model, provider, upstream_model, price_id,
               status_code, stream, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost,
               latency_ms, upstream_latency_ms, gateway_instance, recorded_at, settled_at, settlement_key)
       SELECT 'req_' || i, t, t + latency * interval '1 millisecond', acct::uuid, '00000000-0000-4000-a000-000000000001', '/v1/chat/completions',
              (${arr((m) => m.name)})[m + 1], 'openai', (${arr((m) => m.upstream)})[m + 1], (${arr((m) => m.priceId)})[m + 1]::uuid,
              200, i % 2 = 0, inp, cr, cw, outp, CASE WHEN m = 2 THEN (i % 5) * 40 ELSE 0 END,
              round((inp * (${arr((m) => m.input)})[m + 1] + cr * (${arr((m) => m.cached)})[m + 1] + cw * (${arr((m) => m.input)})[m + 1]
                     + outp * (${arr((m) => m.output)})[m + 1]) / 1000000, 12),
              latency, latency - 4, 'bench-gw-' || (i % 2), t + (latency + 40) * interval '1 millisecond',
              CASE WHEN unsettled THEN NULL ELSE t + (latency + 20000) * interval '1 millisecond' END,
              CASE WHEN unsettled THEN NULL ELSE 'usage:' || acct || ':' || md5(acct || '/' || ((i / ${ACCOUNTS}) / ${BATCH})) END
         FROM (SELECT i, $1::timestamptz + (i::bigint * ${stepUs}) * interval '1 microsecond' AS t, ${accountSql(`i % ${ACCOUNTS}`)} AS acct,
                      (i / 7) % 3 AS m, 200 + ((i::bigint * 7919) % 1800)::int AS inp, (i % 4) * 100 AS cr, CASE WHEN i % 10 = 0 THEN 50 ELSE 0 END AS cw,
                      50 + ((i::bigint * 31) % 700)::int AS outp, 150 + ((i::bigint * 13) % 1500)::int AS latency, i = ANY($2::int[]) AS unsettled
                 FROM generate_series(0, ${EVENTS - 1}) i) g`,
      [day, unsettled],
    );
    // Earlier days: the same traffic shifted by whole days, settled, in batches of their own.
    const columns = `request_id, occurred_at, finished_at, account_id, api_key_id, user_id, endpoint, model, provider, upstream_model, price_id, status_code, error_type,
      stream, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, usage_estimated, cost, currency, latency_ms, upstream_latency_ms,
      source_ip, user_agent, gateway_instance, recorded_at, settled_at, hold_id, settlement_key`;
    for (let d = 1; d <= HISTORY_DAYS; d++) {
      const shift = `interval '${d} days'`;
      const part = (await client.query(`SELECT ensure_usage_events_partition($1::date - ${d}) AS p`, [DAY])).rows[0].p as string;
      await step(
        `usage_events, day -${d}`,
        `INSERT INTO ${part} (${columns})
         SELECT request_id, occurred_at - ${shift}, finished_at - ${shift}, account_id, api_key_id, user_id, endpoint, model, provider, upstream_model, price_id, status_code, error_type,
                stream, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, usage_estimated, cost, currency, latency_ms, upstream_latency_ms,
                source_ip, user_agent, gateway_instance, recorded_at - ${shift}, settled_at - ${shift}, hold_id, settlement_key || ':-${d}'
           FROM ${partition} WHERE settled_at IS NOT NULL`,
      );
    }
    await step(
      'usage_events indexes',
      `ALTER TABLE usage_events ADD CONSTRAINT usage_events_pkey PRIMARY KEY (request_id, occurred_at);
       CREATE INDEX usage_events_account_time ON usage_events (account_id, occurred_at);
       CREATE INDEX usage_events_unsettled ON usage_events (account_id, occurred_at) WHERE settled_at IS NULL`,
    );
    // usage_hourly as settlement leaves it: the settled events, per account, UTC hour, model, provider and price.
    await step(
      'usage_hourly',
      `INSERT INTO usage_hourly (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
       SELECT account_id, date_trunc('hour', occurred_at, 'UTC'), COALESCE(model, ''), COALESCE(provider, ''), COALESCE(price_id::text, ''),
              count(*), sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost)
         FROM usage_events
        WHERE occurred_at >= $1::timestamptz AND occurred_at < $1::timestamptz + interval '1 day' AND settled_at IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5`,
      [day],
    );
    await step(
      'payments',
      `INSERT INTO payments (provider, provider_payment_id, account_id, amount, currency, status, received_at)
       SELECT 'stripe', 'pi_bench_' || n, ${accountSql('n')}::uuid, ${TOPUP}, 'USD', 'succeeded', $1::timestamptz + (n * 600.0 / ${ACCOUNTS}) * interval '1 second'
         FROM generate_series(0, ${ACCOUNTS - 1}) n`,
      [day],
    );
    await step(
      'ledger: top-ups',
      `INSERT INTO ledger_entries (account_id, kind, contra, amount, idempotency_key, reference_type, reference_id, actor, balance_after, created_at)
       SELECT account_id, 'topup', 'cash', amount, 'topup:' || provider || ':' || provider_payment_id, 'payment', provider || ':' || provider_payment_id,
              'webhook:stripe', amount, received_at
         FROM payments ORDER BY received_at`,
    );
    const p = PLANT.uncreditedPayment;
    await client.query(
      `INSERT INTO payments (provider, provider_payment_id, account_id, amount, currency, status, received_at) VALUES ($1, $2, $3, $4, 'USD', 'succeeded', $5::timestamptz + interval '12 hours')`,
      [p.provider, p.paymentId, accountId(p.account), p.amount, day],
    );
    // One `usage` entry per settled batch, posted when its last event was settled; running balance as balance_after.
    await step(
      'ledger: usage batches',
      `INSERT INTO ledger_entries (account_id, kind, contra, amount, idempotency_key, reference_type, reference_id, actor, balance_after, created_at)
       SELECT account_id, 'usage', 'revenue', -cost, key, 'usage_batch', key, 'system:metering',
              ${TOPUP} - sum(cost) OVER (PARTITION BY account_id ORDER BY posted, key), posted
         FROM (SELECT account_id, settlement_key AS key, sum(cost) AS cost, max(settled_at) AS posted
                 FROM usage_events
                WHERE occurred_at >= $1::timestamptz AND occurred_at < $1::timestamptz + interval '1 day'
                  AND settlement_key IS NOT NULL AND settlement_key <> ALL($2::text[])
                GROUP BY 1, 2) b
        ORDER BY posted, key`,
      [day, missingKeys],
    );
    await step(
      'account_balances',
      `UPDATE account_balances b SET balance = s.total, updated_at = now()
         FROM (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s
        WHERE s.account_id = b.account_id`,
    );
    await client.query(`UPDATE account_balances SET balance = balance + $1::numeric WHERE account_id = $2`, [PLANT.tamperedBalance.by, accountId(PLANT.tamperedBalance.account)]);
    // The provider's statement: every request it served that day (settled or not), as we metered it.
    await step(
      'provider_statements',
      `INSERT INTO provider_statements (provider, day, model, input_tokens, cached_tokens, output_tokens, cost, currency, source_sha256, imported_by)
       SELECT provider, $2::date, upstream_model, sum(input_tokens + cache_read_tokens + cache_write_tokens), sum(cache_read_tokens), sum(output_tokens),
              round(sum(cost) * 0.8, 12), 'USD', repeat('0', 64), 'bench'
         FROM usage_events
        WHERE occurred_at >= $1::timestamptz AND occurred_at < $1::timestamptz + interval '1 day'
        GROUP BY provider, upstream_model`,
      [day, DAY],
    );
    await client.query(`UPDATE provider_statements SET output_tokens = output_tokens + $1 WHERE model = $2`, [PLANT.statementOff.outputTokens, PLANT.statementOff.model]);
    // A real system's tables have statistics and visibility maps; a fresh load has neither.
    await step('VACUUM ANALYZE', `VACUUM ANALYZE`);
  } finally {
    await client.end();
  }
  return phases;
}

// ------------------------------------------------------------------ measurement helpers

/** This process's RSS and heap, sampled every 100 ms. */
function nodeMemorySampler() {
  let peakRss = process.memoryUsage().rss;
  let peakHeap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
  }, 100);
  timer.unref();
  return {
    reset() {
      const m = process.memoryUsage();
      peakRss = m.rss;
      peakHeap = m.heapUsed;
    },
    peak: () => ({ rssMiB: round(peakRss / 2 ** 20, 1), heapUsedMiB: round(peakHeap / 2 ** 20, 1) }),
    stop: () => clearInterval(timer),
  };
}

const procStatusKiB = (pid: number, field: string): number | null => {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
};

/**
 * PostgreSQL's side, when the server runs on this machine: every 200 ms, the
 * backends (and parallel workers) of the bench database and their private
 * memory (RssAnon: sorts, hashes, work_mem), summed.
 */
async function pgMemorySampler(databaseUrl: string, database: string) {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-reconcile-monitor' });
  await client.connect();
  const self = Number((await client.query(`SELECT pg_backend_pid() AS pid`)).rows[0].pid);
  const visible = procStatusKiB(self, 'RssAnon') !== null;
  let peakSumKiB = 0;
  let peakOneKiB = 0;
  let maxProcesses = 0;
  let busy = false;
  const sample = async () => {
    if (busy || !visible) return;
    busy = true;
    try {
      const pids = (await client.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'`, [database])).rows.map((r) => Number(r.pid));
      let sum = 0;
      let n = 0;
      for (const pid of pids) {
        const kib = procStatusKiB(pid, 'RssAnon');
        if (kib === null) continue;
        sum += kib;
        n++;
        if (kib > peakOneKiB) peakOneKiB = kib;
      }
      if (sum > peakSumKiB) peakSumKiB = sum;
      if (n > maxProcesses) maxProcesses = n;
    } catch {
      // The monitor must never fail the benchmark.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void sample(), 200);
  timer.unref();
  return {
    client,
    visible,
    reset() {
      peakSumKiB = 0;
      peakOneKiB = 0;
      maxProcesses = 0;
    },
    peak: () =>
      visible
        ? { activeBackendsAnonPeakMiB: round(peakSumKiB / 1024, 1), oneBackendAnonPeakMiB: round(peakOneKiB / 1024, 1), maxActiveProcesses: maxProcesses }
        : null,
    async stop() {
      clearInterval(timer);
      for (let i = 0; i < 50 && busy; i++) await sleep(20);
      await client.end().catch(() => undefined);
    },
  };
}

interface DbStats {
  temp_files: number;
  temp_bytes: number;
  blks_read: number;
  blks_hit: number;
}

/** The database's cumulative counters (backends report them within about a second of going idle). */
async function dbStats(client: pg.Client, database: string): Promise<DbStats> {
  await client.query(`SELECT pg_stat_clear_snapshot()`);
  const r = (await client.query(`SELECT temp_files, temp_bytes, blks_read, blks_hit FROM pg_stat_database WHERE datname = $1`, [database])).rows[0];
  return { temp_files: Number(r.temp_files), temp_bytes: Number(r.temp_bytes), blks_read: Number(r.blks_read), blks_hit: Number(r.blks_hit) };
}
const statsDelta = (a: DbStats, b: DbStats) => ({
  tempFiles: b.temp_files - a.temp_files,
  tempMiB: round((b.temp_bytes - a.temp_bytes) / 2 ** 20, 1),
  blocksRead: b.blks_read - a.blks_read,
  blocksHit: b.blks_hit - a.blks_hit,
});

interface Statement {
  check: string;
  ms: number;
  rows: number | null;
  sql: string;
  bindings: unknown[];
}

/** Every statement knex sends, timed, attributed to the phase running at the time. */
function statementRecorder(db: Db) {
  const started = new Map<string, { t: number; sql: string; bindings: unknown[]; phase: string }>();
  const done: Statement[] = [];
  let phase = 'setup';
  db.on('query', (q: { __knexQueryUid: string; sql: string; bindings?: unknown[] }) => {
    started.set(q.__knexQueryUid, { t: performance.now(), sql: q.sql, bindings: q.bindings ?? [], phase });
  });
  const finish = (q: { __knexQueryUid: string }, rows: number | null) => {
    const s = started.get(q.__knexQueryUid);
    if (!s) return;
    started.delete(q.__knexQueryUid);
    done.push({ check: s.phase, ms: performance.now() - s.t, rows, sql: s.sql, bindings: s.bindings });
  };
  db.on('query-response', (resp: unknown, q: { __knexQueryUid: string }) => {
    const r = resp as { rowCount?: number; rows?: unknown[] } | unknown[] | undefined;
    finish(q, Array.isArray(r) ? r.length : (r?.rowCount ?? r?.rows?.length ?? null));
  });
  db.on('query-error', (_err: unknown, q: { __knexQueryUid: string }) => finish(q, null));
  return {
    setPhase: (p: string) => {
      phase = p;
    },
    of: (p: string) => done.filter((s) => s.check === p),
    all: () => done,
  };
}


async function tableSizes(client: pg.Client): Promise<Record<string, string>> {
  const rows = (
    await client.query(
      `SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) AS total, pg_size_pretty(pg_relation_size(c.oid)) AS heap
         FROM pg_class c WHERE c.relname IN ('usage_events_${DAY.replace(/-/g, '')}', 'usage_hourly', 'ledger_entries', 'account_balances', 'payments')
       UNION ALL
       SELECT 'usage_events (all partitions)', pg_size_pretty(sum(pg_total_relation_size(relid))), pg_size_pretty(sum(pg_relation_size(relid)))
         FROM pg_partition_tree('usage_events')`,
    )
  ).rows as { relname: string; total: string; heap: string }[];
  return Object.fromEntries(rows.map((r) => [r.relname, `${r.total} (heap ${r.heap})`]));
}

// ------------------------------------------------------------------ run

/** What is live now, so Ctrl-C can drop the database instead of leaving 3 GB behind. */
const live: { databaseUrl?: string } = {};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: dropping the database`);
    void (async () => {
      if (live.databaseUrl) await dropDatabase(live.databaseUrl).catch(() => undefined);
      process.exit(130);
    })();
  });
}

interface CheckResult extends CheckCounts {
  check: CheckName;
  ms: number;
  recordMs: number;
  statements: number;
  slowest: { ms: number; rows: number | null; sql: string }[];
  pg: ReturnType<typeof statsDelta>;
}

async function main(): Promise<number> {
  const u = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const database = `mixroute_bench_reconcile_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  u.pathname = `/${database}`;
  const databaseUrl = u.toString();
  live.databaseUrl = databaseUrl;
  const loadBefore = os.loadavg().map((v) => round(v, 2));
  const nodeMem = nodeMemorySampler();
  let db: Db | undefined;
  let monitor: Awaited<ReturnType<typeof pgMemorySampler>> | undefined;
  try {
    await ensureDatabase(databaseUrl);
    db = createDb({ databaseUrl, poolMax: 4, applicationName: 'bench-reconcile' });
    await migrateLatest(db);
    log(`${database}: ${ACCOUNTS} accounts, ${EVENTS} usage events on ${DAY}${HISTORY_DAYS ? ` and on each of ${HISTORY_DAYS} earlier days` : ''}, ${BATCH} events per settlement batch${QUICK ? ' (quick)' : ''}; load average ${loadBefore.join(' ')}`);

    const seedStarted = performance.now();
    const seedPhases = await seed(databaseUrl);
    const seedS = (performance.now() - seedStarted) / 1000;
    monitor = await pgMemorySampler(databaseUrl, database);
    const server = (await monitor.client.query(`SELECT current_setting('server_version') AS v, current_setting('shared_buffers') AS sb, current_setting('work_mem') AS wm, current_setting('max_parallel_workers_per_gather') AS pw`)).rows[0];
    const sizes = await tableSizes(monitor.client);
    const counts = (
      await monitor.client.query(
        `SELECT (SELECT count(*) FROM usage_events WHERE occurred_at >= $1::timestamptz AND occurred_at < $1::timestamptz + interval '1 day')::int AS events,
                (SELECT count(*) FROM usage_events)::int AS all_events, (SELECT count(*) FROM usage_hourly)::int AS hourly,
                (SELECT count(*) FROM ledger_entries)::int AS entries, (SELECT count(*) FROM payments)::int AS payments`,
        [`${DAY}T00:00:00Z`],
      )
    ).rows[0] as { events: number; all_events: number; hourly: number; entries: number; payments: number };
    log(`seeded in ${seedS.toFixed(1)} s: ${counts.events} events on ${DAY}${HISTORY_DAYS ? ` (${counts.all_events} with ${HISTORY_DAYS} earlier days)` : ''}, ${counts.hourly} usage_hourly rows, ${counts.entries} ledger entries, ${counts.payments} payments`);
    log(`sizes: ${Object.entries(sizes).map(([k, v]) => `${k} ${v}`).join(', ')}`);

    // ---- the reconciliation, as the workflow runs it
    const window = reconcileWindow('day', DAY);
    const now = new Date(new Date(window.end).getTime() + 3_600_000); // the daily run, an hour after the day
    const reportId = randomUUID();
    const recorder = statementRecorder(db);
    const loadAtRun = os.loadavg().map((v) => round(v, 2));
    await sleep(1_500); // let the seeding session's statistics settle before the first snapshot
    const statsStart = await dbStats(monitor.client, database);
    nodeMem.reset();
    monitor.reset();
    const results: CheckResult[] = [];
    let runMs = 0;

    recorder.setPhase('open');
    let t0 = performance.now();
    await openReport(db, { id: reportId, workflowId: workflowIds.reconcile('day', DAY), window, trigger: 'staff', requestedBy: 'bench' });
    const openMs = performance.now() - t0;
    runMs += openMs;
    for (const check of CHECKS) {
      const before = await dbStats(monitor.client, database);
      recorder.setPhase(check);
      const ctx: CheckContext = { db, reportId, window, now, settlementLagS: SETTLEMENT_LAG_S, paymentGraceS: PAYMENT_GRACE_S, overdraftAllowance: new Money(OVERDRAFT) };
      t0 = performance.now();
      const found = await CHECK_FUNCTIONS[check](ctx);
      const ms = performance.now() - t0;
      t0 = performance.now();
      const c = await recordCheck(db, reportId, check, found, ms);
      const recordMs = performance.now() - t0;
      runMs += ms + recordMs;
      recorder.setPhase('between');
      await sleep(1_500); // outside the timing: lets the backends report their counters
      const after = await dbStats(monitor.client, database);
      const stmts = recorder.of(check);
      results.push({
        check,
        ...c,
        ms: Math.round(ms),
        recordMs: Math.round(recordMs),
        statements: stmts.length,
        slowest: [...stmts].sort((a, b) => b.ms - a.ms).slice(0, 3).map((s) => ({ ms: Math.round(s.ms), rows: s.rows, sql: oneLine(s.sql) })),
        pg: statsDelta(before, after),
      });
      log(`  ${check}: ${(ms / 1000).toFixed(2)} s (+ ${Math.round(recordMs)} ms to record), ${c.found} found, ${c.repaired} repaired, ${c.needsAttention} need attention`);
    }
    recorder.setPhase('close');
    t0 = performance.now();
    const summary = await closeReport(db, reportId);
    const closeMs = performance.now() - t0;
    runMs += closeMs;
    const nodePeak = nodeMem.peak();
    const pgPeak = monitor.peak();
    const statsEnd = await dbStats(monitor.client, database);
    const loadAfter = os.loadavg().map((v) => round(v, 2));

    // ---- exactly the planted discrepancies?
    const rows = (
      await db('reconciliation_discrepancies').where({ report_id: reportId }).orderBy('id').select('kind', 'subject', 'account_id', 'resolution', 'check_name')
    ) as { kind: string; subject: string; account_id: string | null; resolution: string; check_name: string }[];
    const expected = expectedDiscrepancies();
    const problems: string[] = [];
    const unmatched = [...rows];
    for (const e of expected) {
      const i = unmatched.findIndex((d) => d.kind === e.kind && e.matches(d));
      if (i < 0) {
        problems.push(`not found: ${e.kind} (${e.describe})`);
        continue;
      }
      if (unmatched[i]!.resolution !== e.resolution) problems.push(`${e.kind} (${e.describe}) is ${unmatched[i]!.resolution}, expected ${e.resolution}`);
      unmatched.splice(i, 1);
    }
    for (const d of unmatched) problems.push(`unexpected: ${d.kind} ${d.subject}`);
    const wantRepaired = expected.filter((e) => e.resolution === 'repaired').length;
    if (summary.verdict !== 'needs_attention' || summary.found !== expected.length || summary.repaired !== wantRepaired) {
      problems.push(`report: verdict ${summary.verdict}, ${summary.found} found, ${summary.repaired} repaired (expected needs_attention, ${expected.length}, ${wantRepaired})`);
    }

    // ---- output
    const rowsOut: (string | number)[][] = [['step', 'ms', 'found', 'repaired', 'attention', 'statements', 'slowest stmt ms', 'temp MiB', 'blocks read']];
    rowsOut.push(['open report', Math.round(openMs), '', '', '', 1, '', '', '']);
    for (const r of results) rowsOut.push([r.check, r.ms + r.recordMs, r.found, r.repaired, r.needsAttention, r.statements, r.slowest[0]?.ms ?? 0, r.pg.tempMiB.toFixed(1), r.pg.blocksRead]);
    rowsOut.push(['close report', Math.round(closeMs), summary.found, summary.repaired, summary.needsAttention, '', '', '', '']);
    rowsOut.push(['total', Math.round(runMs), '', '', '', '', '', ((statsEnd.temp_bytes - statsStart.temp_bytes) / 2 ** 20).toFixed(1), statsEnd.blks_read - statsStart.blks_read]);
    console.log(`\nseeding (${ACCOUNTS} accounts, ${EVENTS} events):\n${table([['phase', 'ms', 'rows'], ...seedPhases.map((p) => [p.phase, p.ms, p.rows ?? ''])])}\ntotal ${seedS.toFixed(1)} s\n`);
    console.log(`reconciliation of ${DAY}:\n${table(rowsOut)}\n`);
    for (const r of results) for (const s of r.slowest.slice(0, 1)) if (s.ms >= 1_000) console.log(`  slowest in ${r.check}: ${s.ms} ms, ${s.rows} rows: ${s.sql}`);
    const met = runMs < TARGET_MS;
    log(`total ${(runMs / 1000).toFixed(1)} s (target < ${TARGET_MS / 1000} s: ${met ? 'met' : 'NOT met'}), verdict ${summary.verdict}; node peak RSS ${nodePeak.rssMiB} MiB (heap ${nodePeak.heapUsedMiB} MiB)${pgPeak ? `, PostgreSQL active backends' private memory peak ${pgPeak.activeBackendsAnonPeakMiB} MiB` : ''}`);
    log(`load average: ${loadBefore.join(' ')} at start, ${loadAtRun.join(' ')} when the checks started, ${loadAfter.join(' ')} at the end`);
    if (problems.length) for (const p of problems) log(`ASSERTION FAILED: ${p}`);
    else log(`found exactly the ${expected.length} planted discrepancies (${wantRepaired} repaired)`);

    // ---- plans of the slowest reads, after the run (the repairs are in place; these statements only read)
    const plans: { check: string; ms: number; sql: string; plan: string[] }[] = [];
    if (EXPLAIN) {
      const slow = recorder
        .all()
        .filter((s) => CHECKS.includes(s.check as CheckName) && s.ms >= 1_000 && /^\s*(select|with)\b/i.test(s.sql))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 4);
      for (const s of slow) {
        const r = await monitor.client.query(`EXPLAIN (ANALYZE, BUFFERS) ${s.sql}`, s.bindings as unknown[]);
        plans.push({ check: s.check, ms: Math.round(s.ms), sql: oneLine(s.sql, 4_000), plan: r.rows.map((x: Record<string, string>) => x['QUERY PLAN']!) });
      }
      if (plans.length) log(`EXPLAIN ANALYZE of the ${plans.length} slowest statements (≥ 1 s) written to the results`);
    }

    const out = {
      benchmark: 'reconcile',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        postgres: { version: server.v, sharedBuffers: server.sb, workMem: server.wm, maxParallelWorkersPerGather: Number(server.pw), sameHost: monitor.visible },
        loadAverage: { atStart: loadBefore, whenChecksStarted: loadAtRun, atEnd: loadAfter },
      },
      setup: {
        quick: QUICK,
        day: DAY,
        accounts: ACCOUNTS,
        events: counts.events,
        historyDays: HISTORY_DAYS,
        eventsAllDays: counts.all_events,
        eventsPerBatch: BATCH,
        usageHourlyRows: counts.hourly,
        ledgerEntries: counts.entries,
        payments: counts.payments,
        settlementLagS: SETTLEMENT_LAG_S,
        paymentGraceS: PAYMENT_GRACE_S,
        now: now.toISOString(),
        tableSizes: sizes,
      },
      seeding: { seconds: round(seedS, 1), phases: seedPhases },
      reconciliation: {
        totalMs: Math.round(runMs),
        openReportMs: Math.round(openMs),
        closeReportMs: Math.round(closeMs),
        checks: Object.fromEntries(results.map(({ check, ...r }) => [check, r])),
        verdict: summary.verdict,
        found: summary.found,
        repaired: summary.repaired,
        needsAttention: summary.needsAttention,
        postgres: statsDelta(statsStart, statsEnd),
      },
      memory: { nodePeakRssMiB: nodePeak.rssMiB, nodePeakHeapUsedMiB: nodePeak.heapUsedMiB, postgres: pgPeak },
      planted: expected.map((e) => ({ kind: e.kind, resolution: e.resolution, what: e.describe })),
      assertions: { passed: problems.length === 0, problems },
      target: { totalUnderTwoMinutes: met, atFullSize: ACCOUNTS >= 10_000 && counts.events >= 10_000_000 },
      plans,
    };
    writeResults(RESULTS_FILE, out, log);
    return problems.length ? 1 : 0;
  } finally {
    nodeMem.stop();
    await monitor?.stop();
    await db?.destroy();
    await dropOrKeepDatabase(databaseUrl, KEEP_DB, log);
    live.databaseUrl = undefined;
  }
}

runMain('reconcile', main);
