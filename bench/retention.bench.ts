/**
 * Expiry of usage events at scale, under live metering: seed 30 UTC days of
 * 1,000,000 settled usage events each (set-based SQL), then run
 * expireUsageEvents (src/retention/expiry.service.ts) with the production cutoff of the
 * `usage_events` retention policy (90 days), which covers exactly the 20
 * oldest days, while usage events go in the way the metering batcher inserts
 * them: one multi-row INSERT of 100 rows into usage_events every 100 ms
 * (1,000 rows per second) for today, ON CONFLICT DO NOTHING, in a transaction
 * committed asynchronously and followed by the two WAL-position queries the
 * batcher makes before it may delete a journal segment, on a pool of its own.
 * Reports the expiry time and the insert latency during the expiry
 * against a baseline without it, checks that exactly the right partitions
 * went and the right rows stayed, and writes .data/bench/retention.json.
 * Target: the 20 days expire in under 30 s, and the insert p99 during the
 * expiry is at most twice the p99 without it.
 *
 * What is kept back: one account under legal hold (all its events of the
 * expired days move to the default partition usage_events_retained) and one
 * account with uninvoiced cost from the middle of the expired range (its
 * events from that day on move there; those before the uninvoiced hour are
 * then deleted by the same run's clean-up of the default partition).
 *
 * Insert latency is measured from the moment each INSERT was due (its 100 ms
 * tick) to its answer, so time spent waiting for a pooled connection or
 * behind a lock counts (no coordinated omission). While the expiry runs, a
 * monitor samples pg_stat_activity / pg_blocking_pids every 100 ms, and every
 * statement of the expiry is timed; when a target is missed the slowest
 * statements are re-run under EXPLAIN (ANALYZE, BUFFERS) against the oldest
 * day that is still there (in a rolled-back transaction).
 *
 *   npm run bench -- retention       (BENCH_QUICK=1: 20,000 events a day, 3 s baseline)
 *
 * Overrides: BENCH_RETENTION_DAYS (30), BENCH_RETENTION_EXPIRE_DAYS (20),
 * BENCH_RETENTION_EVENTS_PER_DAY (1,000,000), BENCH_RETENTION_ACCOUNTS (1,000),
 * BENCH_RETENTION_RATE (rows inserted per second, 1,000),
 * BENCH_RETENTION_ROWS_PER_INSERT (100), BENCH_RETENTION_BASELINE_S (15),
 * BENCH_RETENTION_BATCH_SIZE (ctx.batchSize, 5,000 as RETENTION_BATCH_SIZE),
 * BENCH_RETENTION_PAUSE_FACTOR (ctx.pauseFactor, 0.3 as RETENTION_PAUSE_FACTOR),
 * BENCH_RETENTION_MINIMISED=0 (seed the old events with full source IPs and
 * User-Agents instead of minimised, as usage_events.network leaves them
 * after 7 days), BENCH_EXPLAIN (1 always, 0 never; default only when a
 * target is missed), BENCH_DATABASE_URL, BENCH_KEEP_DB=1.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { dropDatabase, ensureDatabase } from '../src/db/database';
import { createDb, type Db } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';
import { expireUsageEvents } from '../src/retention/expiry.service';
import { cutoffFor, type CategoryOutcome, type Policy } from '../src/retention/retention.rules';
import { DEFAULT_RETENTION_PAUSE_FACTOR as DEFAULT_PAUSE_FACTOR } from '../src/config';
import { dropOrKeepDatabase, intEnv, oneLine, round, runMain, sleep, summarize, table, writeResults, type LatencySummary, benchResultsFile } from './lib';

const QUICK = process.env.BENCH_QUICK === '1';
const DAYS = intEnv('BENCH_RETENTION_DAYS', 30, 2);
const EXPIRE_DAYS = intEnv('BENCH_RETENTION_EXPIRE_DAYS', 20, 1);
const EVENTS_PER_DAY = intEnv('BENCH_RETENTION_EVENTS_PER_DAY', QUICK ? 20_000 : 1_000_000, 1_000);
const ACCOUNTS = intEnv('BENCH_RETENTION_ACCOUNTS', 1_000, 20);
const RATE = intEnv('BENCH_RETENTION_RATE', 1_000, 10);
const ROWS_PER_INSERT = intEnv('BENCH_RETENTION_ROWS_PER_INSERT', 100, 1);
const BASELINE_S = intEnv('BENCH_RETENTION_BASELINE_S', QUICK ? 3 : 15, 1);
const BATCH_SIZE = intEnv('BENCH_RETENTION_BATCH_SIZE', 5_000, 100);
const MINIMISED = process.env.BENCH_RETENTION_MINIMISED !== '0';
/** As RETENTION_PAUSE_FACTOR: the pause after each dropped day, in multiples of the time the day took. */
const PAUSE_FACTOR = process.env.BENCH_RETENTION_PAUSE_FACTOR === undefined ? DEFAULT_PAUSE_FACTOR : Number(process.env.BENCH_RETENTION_PAUSE_FACTOR);
const EXPLAIN_MODE = process.env.BENCH_EXPLAIN === '1' ? 'always' : process.env.BENCH_EXPLAIN === '0' ? 'never' : 'when-missed';
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const INSERT_INTERVAL_MS = (ROWS_PER_INSERT / RATE) * 1000;
const WARMUP_MS = 2_000;
const AFTER_MS = 1_000;
const TARGET_EXPIRY_S = 30;
const TARGET_P99_RATIO = 2;
const HELD_ACCOUNT = 7;
const UNBILLED_ACCOUNT = 13;
const DAY_MS = 86_400_000;
const RESULTS_FILE = benchResultsFile('retention.json');
const log = (line: string) => process.stdout.write(`[retention] ${line}\n`);

if (EXPIRE_DAYS >= DAYS) throw new Error(`BENCH_RETENTION_EXPIRE_DAYS (${EXPIRE_DAYS}) must be below BENCH_RETENTION_DAYS (${DAYS})`);

const MODELS = [
  { name: 'bench-mini', upstream: 'gpt-4o-mini', priceId: '00000000-0000-4000-9000-000000000001', input: 0.15, cached: 0.075, output: 0.6 },
  { name: 'bench-large', upstream: 'gpt-4o', priceId: '00000000-0000-4000-9000-000000000002', input: 2.5, cached: 1.25, output: 10 },
  { name: 'bench-reason', upstream: 'o3-mini', priceId: '00000000-0000-4000-9000-000000000003', input: 1.1, cached: 0.55, output: 4.4 },
] as const;
const USER_AGENTS = ['OpenAI/Python 1.54.4', 'OpenAI/NodeJS/4.73.1', 'curl/8.5.0', 'LangChain/0.3.9'];

/** Account n's id and its API key's id: deterministic, so SQL and this file name the same rows without a lookup. */
const accountId = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const apiKeyId = (n: number) => `00000000-0000-4000-a000-${n.toString(16).padStart(12, '0')}`;
const accountSql = (expr: string) => `('00000000-0000-4000-8000-' || lpad(to_hex(${expr}), 12, '0'))`;
const apiKeySql = (expr: string) => `('00000000-0000-4000-a000-' || lpad(to_hex(${expr}), 12, '0'))`;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const partitionOf = (day: string) => `usage_events_${day.replace(/-/g, '')}`;
/** A statement with its partition names and literals generalised, so the 20 days' statements group together. */
const template = (sql: string) => oneLine(sql.replace(/usage_events_\d{8}/g, 'usage_events_<day>'), 140);

// ------------------------------------------------------------------ seeding (set-based SQL only)

interface SeedPhase {
  phase: string;
  ms: number;
  rows: number | null;
}

interface Plan {
  /** The DAYS seeded days, oldest first. */
  days: string[];
  /** UTC midnight of today. */
  todayMs: number;
  policy: Pick<Policy, 'period' | 'unit'>;
  /** The hour of UNBILLED_ACCOUNT's uninvoiced usage (inside the expired range). */
  unbilledHour: string;
}

async function seed(databaseUrl: string, plan: Plan): Promise<SeedPhase[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-retention-seed' });
  await client.connect();
  const phases: SeedPhase[] = [];
  const step = async (phase: string, sql: string, params: unknown[] = []): Promise<number | null> => {
    const t0 = performance.now();
    const r = await client.query(sql, params);
    const ms = performance.now() - t0;
    const rows = r.command === 'INSERT' || r.command === 'UPDATE' ? r.rowCount : null;
    phases.push({ phase, ms: Math.round(ms), rows });
    log(`  seed ${phase}: ${(ms / 1000).toFixed(1)} s${rows !== null ? ` (${rows} rows)` : ''}`);
    return rows;
  };
  const arr = (f: (m: (typeof MODELS)[number]) => string | number) => `ARRAY[${MODELS.map((m) => (typeof f(m) === 'number' ? String(f(m)) : `'${f(m)}'`)).join(', ')}]`;
  try {
    // A bulk load, not the workload: no waiting for WAL flushes, room for sorts and index builds.
    await client.query(`SET synchronous_commit = off`);
    await client.query(`SET maintenance_work_mem = '1GB'`);
    await client.query(`SET work_mem = '256MB'`);

    await step(
      'accounts',
      `INSERT INTO accounts (id, name, country, plan) SELECT ${accountSql('n')}::uuid, 'Bench account ' || n, 'DE', 'postpaid' FROM generate_series(0, ${ACCOUNTS - 1}) n`,
    );

    // The indexes of usage_events as the migrations left them, dropped for the load and rebuilt once
    // afterwards (far cheaper than maintaining them row by row). Read from the catalogue, so the
    // rebuilt set is exactly what the migrations define today.
    const constraints = (
      await client.query(
        `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'usage_events'::regclass AND contype IN ('p', 'u') ORDER BY conname`,
      )
    ).rows as { conname: string; def: string }[];
    const indexes = (
      await client.query(
        `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i
          WHERE i.indrelid = 'usage_events'::regclass
            AND i.indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = 'usage_events'::regclass)
          ORDER BY 1`,
      )
    ).rows as { name: string; def: string }[];
    await step(
      `drop usage_events indexes (${constraints.length + indexes.length})`,
      [...constraints.map((c) => `ALTER TABLE usage_events DROP CONSTRAINT "${c.conname}";`), ...indexes.map((i) => `DROP INDEX ${i.name};`)].join('\n'),
    );

    // Event i of a day: account i % A, at i × (1 day / N) into the day, model (i / 7) % 3; about 1 % refused (429).
    // Settled 20 s after it finished, in batches of about 100 events per account (the settlement key).
    const stepUs = Math.floor((DAY_MS * 1000) / EVENTS_PER_DAY);
    const sourceIp = MINIMISED ? `('10.' || (a % 256) || '.' || (i % 200) || '.0/24')::inet` : `('10.' || (a % 256) || '.' || (i % 200) || '.' || (1 + i % 250))::inet`;
    const userAgent = MINIMISED ? 'NULL' : `(ARRAY[${USER_AGENTS.map((u) => `'${u}'`).join(', ')}])[i % ${USER_AGENTS.length} + 1]`;
    for (const day of plan.days) {
      const part = (await client.query(`SELECT ensure_usage_events_partition($1::date) AS p`, [day])).rows[0].p as string;
      await step(
        `usage_events ${day}`,
        `INSERT INTO ${part}
                (request_id, occurred_at, finished_at, account_id, api_key_id, endpoint, model, provider, upstream_model, price_id,
                 status_code, error_type, stream, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost,
                 latency_ms, upstream_latency_ms, source_ip, user_agent, gateway_instance, recorded_at, settled_at, settlement_key, network_minimised)
         SELECT 'req_${day.replace(/-/g, '')}_' || i, t, t + latency * interval '1 millisecond', acct::uuid, ${apiKeySql('a')}::uuid, 'chat.completions',
                (${arr((m) => m.name)})[m + 1], 'openai', (${arr((m) => m.upstream)})[m + 1], (${arr((m) => m.priceId)})[m + 1]::uuid,
                CASE WHEN refused THEN 429 ELSE 200 END, CASE WHEN refused THEN 'rate_limit_exceeded' END, i % 2 = 0,
                inp, cr, cw, outp, CASE WHEN m = 2 AND NOT refused THEN (i % 5) * 40 ELSE 0 END,
                round((inp * (${arr((m) => m.input)})[m + 1] + cr * (${arr((m) => m.cached)})[m + 1] + cw * (${arr((m) => m.input)})[m + 1]
                       + outp * (${arr((m) => m.output)})[m + 1]) / 1000000, 12),
                latency, CASE WHEN refused THEN NULL ELSE latency - 4 END, ${sourceIp}, ${userAgent},
                'bench-gw-' || (i % 2), t + (latency + 40) * interval '1 millisecond', t + (latency + 20000) * interval '1 millisecond',
                'usage:' || acct || ':' || md5(acct || '/${day}/' || (i / ${ACCOUNTS} / 100)), ${MINIMISED}
           FROM (SELECT i, a, refused, ${accountSql('a')} AS acct, $1::timestamptz + (i::bigint * ${stepUs}) * interval '1 microsecond' AS t, (i / 7) % 3 AS m,
                        CASE WHEN refused THEN 0 ELSE 200 + ((i::bigint * 7919) % 1800)::int END AS inp,
                        CASE WHEN refused THEN 0 ELSE (i % 4) * 100 END AS cr,
                        CASE WHEN refused OR i % 10 <> 0 THEN 0 ELSE 50 END AS cw,
                        CASE WHEN refused THEN 0 ELSE 50 + ((i::bigint * 31) % 700)::int END AS outp,
                        CASE WHEN refused THEN 20 ELSE 150 + ((i::bigint * 13) % 1500)::int END AS latency
                   FROM (SELECT i, i % ${ACCOUNTS} AS a, i % 101 = 50 AS refused FROM generate_series(0, ${EVENTS_PER_DAY - 1}) i) s) g`,
        [`${day}T00:00:00Z`],
      );
    }
    await step(
      'usage_events indexes',
      [
        ...constraints.map((c) => `ALTER TABLE usage_events ADD CONSTRAINT "${c.conname}" ${c.def};`),
        ...indexes.map((i) => `${i.def.replace(' ON ONLY ', ' ON ')};`),
      ].join('\n'),
    );

    // Every month of the seeded days has a finished period reconciliation.
    const months = [...new Set(plan.days.map((d) => d.slice(0, 7)))];
    await step(
      `reconciliation reports (${months.join(', ')})`,
      `INSERT INTO reconciliation_reports (id, workflow_id, scope, label, window_start, window_end, trigger, requested_by, status, verdict, started_at, finished_at)
       SELECT gen_random_uuid(), 'reconcile:period:' || m, 'period', m, (m || '-01T00:00:00Z')::timestamptz, (m || '-01T00:00:00Z')::timestamptz + interval '1 month',
              'schedule', 'system:schedule', 'finished', 'clean', (m || '-01T00:00:00Z')::timestamptz + interval '1 month 2 days',
              (m || '-01T00:00:00Z')::timestamptz + interval '1 month 2 days 10 minutes'
         FROM unnest($1::text[]) m`,
      [months],
    );
    await step(
      'legal hold',
      `INSERT INTO legal_holds (account_id, reason, created_by, created_at) VALUES ($1, 'bench: pending litigation', 'staff:bench', $2::timestamptz)`,
      [accountId(HELD_ACCOUNT), `${plan.days[0]}T00:00:00Z`],
    );
    // usage_hourly: today's (open, uninvoiced) usage of every account, hours after any cutoff, so
    // they keep nothing; and one uninvoiced hour of UNBILLED_ACCOUNT inside the expired range.
    await step(
      'usage_hourly',
      `INSERT INTO usage_hourly (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
       SELECT ${accountSql('n')}::uuid, $1::timestamptz + h * interval '1 hour', 'bench-mini', 'openai', '${MODELS[0].priceId}', 40, 40000, 4000, 0, 12000, 0, 0.013
         FROM generate_series(0, ${ACCOUNTS - 1}) n, generate_series(0, GREATEST(0, extract(hour FROM now() AT TIME ZONE 'UTC')::int - 1)) h
       UNION ALL
       SELECT $2::uuid, $3::timestamptz, 'bench-mini', 'openai', '${MODELS[0].priceId}', 3, 3000, 0, 0, 900, 0, 0.00099`,
      [new Date(plan.todayMs).toISOString(), accountId(UNBILLED_ACCOUNT), plan.unbilledHour],
    );
    // A running system's tables have statistics and visibility maps; a fresh load has neither.
    await step('VACUUM ANALYZE', `VACUUM ANALYZE`);
    // Start the measurement with the load's dirty pages written out, not with a checkpoint due.
    await step('CHECKPOINT', `CHECKPOINT`);
  } finally {
    await client.end();
  }
  return phases;
}

// ------------------------------------------------------------------ the insert load (the metering batcher's shape)

interface InsertSample {
  /** When the INSERT was due (its tick), performance.now() ms. */
  due: number;
  /** When it was sent (a pooled connection may be awaited first). */
  sent: number;
  done: number;
  ok: boolean;
  rows: number;
}

function insertLoad(db: Db, tag: string) {
  const samples: InsertSample[] = [];
  const failures: string[] = [];
  const pending = new Set<Promise<void>>();
  const partitions = new Set<string>();
  let seq = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let maxInFlight = 0;
  let started = 0;
  let ticks = 0;

  const rowsFor = (count: number) => {
    const nowIso = new Date().toISOString();
    return Array.from({ length: count }, () => {
      const n = seq++;
      const a = n % ACCOUNTS;
      const m = MODELS[n % MODELS.length]!;
      const input = 200 + ((n * 7919) % 1800);
      const output = 50 + ((n * 31) % 700);
      const latency = 150 + ((n * 13) % 1500);
      return {
        request_id: `live_${tag}_${n}`,
        occurred_at: nowIso,
        finished_at: new Date(Date.parse(nowIso) + latency).toISOString(),
        account_id: accountId(a),
        api_key_id: apiKeyId(a),
        user_id: null,
        endpoint: 'chat.completions',
        model: m.name,
        provider: 'openai',
        upstream_model: m.upstream,
        price_id: m.priceId,
        hold_id: null,
        status_code: 200,
        error_type: null,
        stream: n % 2 === 0,
        input_tokens: input,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        output_tokens: output,
        reasoning_tokens: 0,
        usage_estimated: false,
        cost: ((input * m.input + output * m.output) / 1e6).toFixed(12),
        currency: 'USD',
        latency_ms: latency,
        upstream_latency_ms: latency - 4,
        source_ip: `10.${a % 256}.${n % 200}.${1 + (n % 250)}`,
        user_agent: USER_AGENTS[n % USER_AGENTS.length]!,
        gateway_instance: `bench-gw-${n % 2}`,
      };
    });
  };

  const one = async (due: number) => {
    const rows = rowsFor(ROWS_PER_INSERT);
    const day = rows[0]!.occurred_at.slice(0, 10);
    let sent = performance.now();
    try {
      // As the batcher: the partition of a day is ensured once, then plain inserts into the parent.
      if (!partitions.has(day)) {
        await db.raw('SELECT ensure_usage_events_partition(?::date)', [day]);
        partitions.add(day);
      }
      sent = performance.now();
      // As the batcher (src/metering/batcher.ts): one transaction committed asynchronously, then
      // the WAL position after it, then whether PostgreSQL has flushed that far (its segment's deletion).
      await db.transaction(async (trx) => {
        await trx.raw(`SET LOCAL synchronous_commit = off`);
        await trx('usage_events').insert(rows).onConflict(['request_id', 'occurred_at']).ignore();
      });
      await db.raw(`SELECT pg_current_wal_insert_lsn()::text AS lsn, pg_postmaster_start_time()::text AS server`);
      await db.raw(`SELECT pg_current_wal_flush_lsn()::text AS lsn, pg_postmaster_start_time()::text AS server`);
      samples.push({ due, sent, done: performance.now(), ok: true, rows: rows.length });
    } catch (err) {
      samples.push({ due, sent, done: performance.now(), ok: false, rows: rows.length });
      if (failures.length < 20) failures.push((err as Error).message);
    }
  };

  const tick = () => {
    if (stopped) return;
    const due = started + ticks * INSERT_INTERVAL_MS;
    ticks++;
    const p = one(due).finally(() => pending.delete(p));
    pending.add(p);
    if (pending.size > maxInFlight) maxInFlight = pending.size;
    // Open loop: the next INSERT is due on its tick whether or not this one has answered.
    timer = setTimeout(tick, Math.max(0, started + ticks * INSERT_INTERVAL_MS - performance.now()));
  };

  return {
    samples,
    failures,
    start() {
      started = performance.now();
      tick();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await Promise.allSettled([...pending]);
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get rowsSent() {
      return seq;
    },
    /** Latencies (due → answer) of the successful INSERTs due in [from, to). */
    window(from: number, to: number) {
      const s = samples.filter((x) => x.ok && x.due >= from && x.due < to);
      return {
        fromDue: summarize(s.map((x) => x.done - x.due)),
        statementOnly: summarize(s.map((x) => x.done - x.sent)),
        samples: s,
      };
    },
  };
}

// ------------------------------------------------------------------ what the expiry does, statement by statement

interface Statement {
  start: number;
  end: number;
  ms: number;
  sql: string;
  bindings: unknown[];
  rows: number | null;
  error: string | null;
}

/**
 * Every statement knex sends on the expiry's pool, timed. knex reports no answer for a
 * transaction's own BEGIN and COMMIT; the expiry sends one statement at a time, so such a
 * statement is taken to end when the next one starts (or when the recording is closed).
 */
function statementRecorder(db: Db) {
  const started = new Map<string, { t: number; sql: string; bindings: unknown[] }>();
  const done: Statement[] = [];
  let bare: { t: number; sql: string } | undefined;
  let last = '';
  const closeBare = (end: number) => {
    if (bare) done.push({ start: bare.t, end, ms: end - bare.t, sql: bare.sql, bindings: [], rows: null, error: null });
    bare = undefined;
  };
  db.on('query', (q: { __knexQueryUid?: string; sql: string; bindings?: unknown[] }) => {
    const t = performance.now();
    closeBare(t);
    if (q.__knexQueryUid) {
      started.set(q.__knexQueryUid, { t, sql: q.sql, bindings: q.bindings ?? [] });
      last = q.sql;
    } else {
      // A COMMIT is named by the transaction's last statement: committing a DROP TABLE is not committing a DETACH.
      bare = { t, sql: /^\s*commit/i.test(q.sql) && last ? `COMMIT after ${template(last).slice(0, 70)}` : q.sql };
    }
  });
  const finish = (q: { __knexQueryUid: string }, rows: number | null, error: string | null) => {
    const s = started.get(q.__knexQueryUid);
    if (!s) return;
    started.delete(q.__knexQueryUid);
    const end = performance.now();
    done.push({ start: s.t, end, ms: end - s.t, sql: s.sql, bindings: s.bindings, rows, error });
  };
  db.on('query-response', (resp: unknown, q: { __knexQueryUid: string }) => {
    const r = resp as { rowCount?: number; rows?: unknown[] } | unknown[] | undefined;
    finish(q, Array.isArray(r) ? r.length : (r?.rowCount ?? r?.rows?.length ?? null), null);
  });
  db.on('query-error', (err: { code?: string; message?: string }, q: { __knexQueryUid: string }) => finish(q, null, err?.code ?? err?.message ?? 'error'));
  return {
    all: () => done,
    /** The expiry pauses after a dropped day or a slice of a day's count: the statement before has answered, and the pause lasts until the next statement. */
    pause: (after: 'drop' | 'count') => {
      const t = performance.now();
      closeBare(t);
      bare = { t, sql: after === 'drop' ? 'pause after a dropped day (RETENTION_PAUSE_FACTOR)' : "pause after a slice of a day's count (RETENTION_PAUSE_FACTOR)" };
    },
    /** Ends a BEGIN/COMMIT still open (the expiry has returned, so it has answered). */
    close: (end: number) => closeBare(end),
  };
}

interface ActivitySample {
  t: number;
  app: string;
  waitType: string | null;
  waitEvent: string | null;
  query: string;
  blockedBy: { app: string; query: string }[];
}

/** pg_stat_activity of the bench database every 100 ms: who waits on what, and who blocks whom. */
async function activityMonitor(databaseUrl: string, database: string) {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-retention-monitor' });
  await client.connect();
  const samples: ActivitySample[] = [];
  let busy = false;
  let recording = false;
  const sample = async () => {
    if (busy || !recording) return;
    busy = true;
    try {
      const t = performance.now();
      const { rows } = await client.query(
        `SELECT a.pid, a.application_name AS app, a.wait_event_type AS wtype, a.wait_event AS wevent, a.query, pg_blocking_pids(a.pid) AS blockers
           FROM pg_stat_activity a
          WHERE a.datname = $1 AND a.pid <> pg_backend_pid() AND a.state = 'active'`,
        [database],
      );
      const byPid = new Map<number, { app: string; query: string }>(rows.map((r) => [Number(r.pid), { app: r.app as string, query: template(r.query as string) }]));
      for (const r of rows) {
        samples.push({
          t,
          app: r.app,
          waitType: r.wtype,
          waitEvent: r.wevent,
          query: template(r.query),
          blockedBy: (r.blockers as number[]).map((pid) => byPid.get(Number(pid)) ?? { app: `pid ${pid}`, query: '?' }),
        });
      }
    } catch {
      // The monitor must never fail the benchmark.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void sample(), 100);
  timer.unref();
  return {
    samples,
    setRecording(on: boolean) {
      recording = on;
    },
    async stop() {
      clearInterval(timer);
      for (let i = 0; i < 100 && busy; i++) await sleep(20);
      await client.end().catch(() => undefined);
    },
  };
}

// ------------------------------------------------------------------ run

/** What is live now, so Ctrl-C can stop the load and drop the database instead of leaving gigabytes behind. */
const live: { databaseUrl?: string; stop?: () => Promise<void> } = {};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping and dropping the database`);
    void (async () => {
      await live.stop?.().catch(() => undefined);
      if (live.databaseUrl && !KEEP_DB) await dropDatabase(live.databaseUrl).catch(() => undefined);
      process.exit(130);
    })();
  });
}

const loadavg = () => os.loadavg().map((v) => round(v, 2));

async function main(): Promise<number> {
  const u = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const database = `mixroute_bench_retention_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  u.pathname = `/${database}`;
  const databaseUrl = u.toString();
  live.databaseUrl = databaseUrl;
  const loadAtStart = loadavg();
  let db: Db | undefined;
  let insertDb: Db | undefined;
  let monitor: Awaited<ReturnType<typeof activityMonitor>> | undefined;
  let load: ReturnType<typeof insertLoad> | undefined;
  live.stop = async () => {
    await load?.stop();
    await monitor?.stop();
    await insertDb?.destroy();
    await db?.destroy();
  };
  try {
    await ensureDatabase(databaseUrl);
    db = createDb({ databaseUrl, poolMax: 2, applicationName: 'bench-retention-expiry' });
    await migrateLatest(db);

    // ---- the days: the EXPIRE_DAYS oldest end on or before the policy's cutoff, the rest after it
    const policyRow = (await db('retention_policies').where({ category: 'usage_events' }).first('period', 'unit')) as Pick<Policy, 'period' | 'unit'> | undefined;
    if (!policyRow || policyRow.unit !== 'days') throw new Error(`retention policy usage_events is ${JSON.stringify(policyRow)}; this benchmark needs a period in days`);
    if (DAYS - EXPIRE_DAYS >= policyRow.period) throw new Error(`the ${DAYS - EXPIRE_DAYS} newer days would reach today (policy period ${policyRow.period} days)`);
    const n0 = new Date();
    const todayMs = Date.UTC(n0.getUTCFullYear(), n0.getUTCMonth(), n0.getUTCDate());
    const firstDayMs = todayMs - (EXPIRE_DAYS + policyRow.period) * DAY_MS;
    const days = Array.from({ length: DAYS }, (_, i) => isoDay(firstDayMs + i * DAY_MS));
    const expiredDays = days.slice(0, EXPIRE_DAYS);
    const keptDays = days.slice(EXPIRE_DAYS);
    const unbilledDayIndex = Math.floor(EXPIRE_DAYS * 0.7);
    const unbilledHour = new Date(firstDayMs + unbilledDayIndex * DAY_MS + 12 * 3_600_000).toISOString();
    const plan: Plan = { days, todayMs, policy: policyRow, unbilledHour };
    log(
      `${database}: ${DAYS} days × ${EVENTS_PER_DAY} events (${days[0]} … ${days.at(-1)}), ${ACCOUNTS} accounts; expiring the ${EXPIRE_DAYS} oldest (to ${expiredDays.at(-1)}) ` +
        `with the ${policyRow.period}-day policy cutoff; inserts ${ROWS_PER_INSERT} rows every ${INSERT_INTERVAL_MS} ms${QUICK ? ' (quick)' : ''}; load average ${loadAtStart.join(' ')}`,
    );

    const seedStarted = performance.now();
    const seedPhases = await seed(databaseUrl, plan);
    const seedS = (performance.now() - seedStarted) / 1000;
    const server = (await db.raw(`SELECT current_setting('server_version') AS v, current_setting('shared_buffers') AS sb, current_setting('work_mem') AS wm, current_setting('max_wal_size') AS mw`)).rows[0];
    const size = (await db.raw(`SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) AS total, pg_size_pretty(sum(pg_relation_size(relid))) AS heap FROM pg_partition_tree('usage_events')`)).rows[0];
    log(`seeded in ${seedS.toFixed(1)} s; usage_events ${size.total} (heap ${size.heap})`);

    // ---- what the expiry must do, worked out before it runs
    const expiredStart = `${expiredDays[0]}T00:00:00Z`;
    const expiredEnd = new Date(firstDayMs + EXPIRE_DAYS * DAY_MS).toISOString();
    const unbilledDayStart = new Date(firstDayMs + unbilledDayIndex * DAY_MS).toISOString();
    const expect = (
      await db.raw(
        `SELECT (SELECT count(*) FROM usage_events WHERE occurred_at >= ?::timestamptz AND occurred_at < ?::timestamptz)::bigint AS old_rows,
                (SELECT count(*) FROM usage_events WHERE account_id = ? AND occurred_at >= ?::timestamptz AND occurred_at < ?::timestamptz)::bigint AS held,
                (SELECT count(*) FROM usage_events WHERE account_id = ? AND occurred_at >= ?::timestamptz AND occurred_at < ?::timestamptz)::bigint AS unbilled_moved,
                (SELECT count(*) FROM usage_events WHERE account_id = ? AND occurred_at >= ?::timestamptz AND occurred_at < ?::timestamptz)::bigint AS unbilled_kept`,
        [expiredStart, expiredEnd, accountId(HELD_ACCOUNT), expiredStart, expiredEnd, accountId(UNBILLED_ACCOUNT), unbilledDayStart, expiredEnd, accountId(UNBILLED_ACCOUNT), unbilledHour, expiredEnd],
      )
    ).rows[0] as { old_rows: number; held: number; unbilled_moved: number; unbilled_kept: number };
    const keptCounts = new Map<string, number>();
    for (const d of keptDays) keptCounts.set(d, Number((await db.raw(`SELECT count(*)::bigint AS n FROM ??`, [partitionOf(d)])).rows[0].n));
    const expected = {
      partitionsDropped: EXPIRE_DAYS,
      moved: expect.held + expect.unbilled_moved,
      keptHold: expect.held,
      keptUnbilled: expect.unbilled_kept,
      expiredRows: expect.old_rows - expect.held - expect.unbilled_kept,
    };
    log(
      `expected: ${expected.partitionsDropped} partitions (${expect.old_rows} rows) dropped; ${expected.moved} rows moved to usage_events_retained ` +
        `(${expect.held} held, ${expect.unbilled_moved} unbilled), of which ${expect.unbilled_moved - expect.unbilled_kept} deleted again by the clean-up`,
    );

    // ---- the insert load: warm-up, baseline, then the expiry under it
    insertDb = createDb({ databaseUrl, poolMax: 4, applicationName: 'bench-retention-insert' });
    const tag = randomUUID().slice(0, 8);
    const loadStartWall = new Date(Date.now() - 60_000);
    load = insertLoad(insertDb, tag);
    monitor = await activityMonitor(databaseUrl, database);
    const recorder = statementRecorder(db);
    const loadAtBaseline = loadavg();
    load.start();
    const t0 = performance.now();
    await sleep(WARMUP_MS);
    const baselineFrom = performance.now();
    await sleep(BASELINE_S * 1000);
    const baselineTo = performance.now();
    log(`baseline: ${BASELINE_S} s of inserts alone; running the expiry now`);

    const loadAtExpiry = loadavg();
    monitor.setRecording(true);
    const now = new Date();
    const cutoff = cutoffFor(plan.policy, now);
    let progress = 0;
    const expiryFrom = performance.now();
    let outcome: CategoryOutcome | undefined;
    let expiryError: string | null = null;
    try {
      outcome = await expireUsageEvents({ db, now, batchSize: BATCH_SIZE, pauseFactor: PAUSE_FACTOR, onPause: (_ms, after) => recorder.pause(after), onProgress: () => progress++ }, cutoff);
    } catch (err) {
      expiryError = (err as Error).stack ?? (err as Error).message;
    }
    const expiryTo = performance.now();
    recorder.close(expiryTo);
    monitor.setRecording(false);
    const loadAfterExpiry = loadavg();
    await sleep(AFTER_MS);
    await load.stop();
    const loadEnded = performance.now();
    const expiryS = (expiryTo - expiryFrom) / 1000;
    log(`expiry: ${expiryS.toFixed(2)} s${expiryError ? `, FAILED: ${expiryError}` : ''}; ${progress} progress calls`);

    const baseline = load.window(baselineFrom, baselineTo);
    const during = load.window(expiryFrom, expiryTo);
    const after = load.window(expiryTo, loadEnded);
    const failedInserts = load.samples.filter((s) => !s.ok).length;
    const insertedRows = load.samples.filter((s) => s.ok).reduce((n, s) => n + s.rows, 0);
    const ratio = round(during.fromDue.p99Ms / baseline.fromDue.p99Ms, 2);
    const statementRatio = round(during.statementOnly.p99Ms / baseline.statementOnly.p99Ms, 2);

    // ---- verification
    const problems: string[] = [];
    if (expiryError) problems.push(`expireUsageEvents threw: ${expiryError.split('\n')[0]}`);
    const gone = (await db.raw(`SELECT d, to_regclass(d) IS NULL AS gone FROM unnest(?::text[]) d`, [expiredDays.map(partitionOf)])).rows as { d: string; gone: boolean }[];
    for (const g of gone) if (!g.gone) problems.push(`partition ${g.d} still exists`);
    const attached = new Set(
      ((await db.raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_events'::regclass`)).rows as { relname: string }[]).map((r) => r.relname),
    );
    const keptAfter: Record<string, number> = {};
    for (const d of keptDays) {
      const name = partitionOf(d);
      if (!attached.has(name)) {
        problems.push(`partition ${name} is no longer attached`);
        continue;
      }
      const n = Number((await db.raw(`SELECT count(*)::bigint AS n FROM ??`, [name])).rows[0].n);
      keptAfter[d] = n;
      if (n !== keptCounts.get(d)) problems.push(`partition ${name} has ${n} rows, had ${keptCounts.get(d)}`);
    }
    const retained = (
      await db.raw(
        `SELECT count(*) FILTER (WHERE account_id = ?)::bigint AS held, count(*) FILTER (WHERE account_id = ?)::bigint AS unbilled,
                count(*) FILTER (WHERE account_id NOT IN (?, ?))::bigint AS other, count(*) FILTER (WHERE occurred_at < ?::timestamptz AND account_id = ?)::bigint AS unbilled_early
           FROM usage_events_retained WHERE occurred_at >= ?::timestamptz AND occurred_at < ?::timestamptz`,
        [accountId(HELD_ACCOUNT), accountId(UNBILLED_ACCOUNT), accountId(HELD_ACCOUNT), accountId(UNBILLED_ACCOUNT), unbilledHour, accountId(UNBILLED_ACCOUNT), expiredStart, expiredEnd],
      )
    ).rows[0] as { held: number; unbilled: number; other: number; unbilled_early: number };
    if (retained.held !== expected.keptHold) problems.push(`usage_events_retained holds ${retained.held} rows of the held account, expected ${expected.keptHold}`);
    if (retained.unbilled !== expected.keptUnbilled) problems.push(`usage_events_retained holds ${retained.unbilled} rows of the unbilled account, expected ${expected.keptUnbilled}`);
    if (retained.other !== 0) problems.push(`usage_events_retained holds ${retained.other} rows of other accounts`);
    if (outcome) {
      if (outcome.expiredPartitions !== expected.partitionsDropped) problems.push(`outcome: ${outcome.expiredPartitions} partitions expired, expected ${expected.partitionsDropped}`);
      if (outcome.expiredRows !== expected.expiredRows) problems.push(`outcome: ${outcome.expiredRows} rows expired, expected ${expected.expiredRows}`);
      if (outcome.keptHold !== expected.keptHold) problems.push(`outcome: ${outcome.keptHold} kept for the hold, expected ${expected.keptHold}`);
      if (outcome.keptUnbilled !== expected.keptUnbilled) problems.push(`outcome: ${outcome.keptUnbilled} kept as unbilled, expected ${expected.keptUnbilled}`);
    }
    if (failedInserts) problems.push(`${failedInserts} inserts failed: ${load.failures.slice(0, 3).join(' | ')}`);
    const liveRows = Number(
      (await db.raw(`SELECT count(*)::bigint AS n FROM usage_events WHERE occurred_at >= ? AND request_id LIKE ?`, [loadStartWall, `live\\_${tag}\\_%`])).rows[0].n,
    );
    if (liveRows !== insertedRows) problems.push(`${liveRows} of the ${insertedRows} inserted rows are in usage_events`);
    const leftovers = (await db.raw(`SELECT relname FROM pg_class WHERE relname = ANY(?::text[])`, [expiredDays.map(partitionOf)])).rows.length;
    if (leftovers) problems.push(`${leftovers} expired day tables left behind (detached)`);

    // ---- where the expiry's time went
    const stmts = recorder.all().filter((s) => s.start >= expiryFrom && s.end <= expiryTo + 1);
    const byTemplate = new Map<string, { count: number; totalMs: number; maxMs: number; errors: number; rows: number }>();
    for (const s of stmts) {
      const k = template(s.sql);
      const e = byTemplate.get(k) ?? { count: 0, totalMs: 0, maxMs: 0, errors: 0, rows: 0 };
      e.count++;
      e.totalMs += s.ms;
      e.maxMs = Math.max(e.maxMs, s.ms);
      if (s.error) e.errors++;
      e.rows += s.rows ?? 0;
      byTemplate.set(k, e);
    }
    const statementBreakdown = [...byTemplate.entries()]
      .sort((a, b) => b[1].totalMs - a[1].totalMs)
      .map(([sql, e]) => ({ sql, count: e.count, totalMs: Math.round(e.totalMs), maxMs: Math.round(e.maxMs), sharePct: round((100 * e.totalMs) / ((expiryTo - expiryFrom) || 1), 1), errors: e.errors }));
    const betweenMs = expiryTo - expiryFrom - stmts.reduce((n, x) => n + x.ms, 0);
    statementBreakdown.push({ sql: '(between statements: Node, pool, network)', count: 0, totalMs: Math.round(betweenMs), maxMs: 0, sharePct: round((100 * betweenMs) / ((expiryTo - expiryFrom) || 1), 1), errors: 0 });
    const detachTimeouts = stmts.filter((s) => /DETACH PARTITION/i.test(s.sql) && s.error === '55P03').length;

    // Slow inserts during the expiry: which expiry statement was running, and what the monitor saw them wait on.
    const slowThreshold = Math.max(2 * baseline.fromDue.p99Ms, 1);
    const slow = during.samples.filter((s) => s.done - s.due > slowThreshold);
    const overlapping = new Map<string, number>();
    for (const s of slow) {
      for (const st of stmts) if (st.start < s.done && st.end > s.due) overlapping.set(template(st.sql), (overlapping.get(template(st.sql)) ?? 0) + 1);
    }
    const insertWaits = new Map<string, number>();
    const insertBlockers = new Map<string, number>();
    const expiryWaits = new Map<string, number>();
    let insertSamples = 0;
    let expirySamples = 0;
    for (const a of monitor.samples) {
      const wait = a.waitType ? `${a.waitType}:${a.waitEvent}` : 'CPU (no wait event)';
      if (a.app === 'bench-retention-insert') {
        insertSamples++;
        insertWaits.set(wait, (insertWaits.get(wait) ?? 0) + 1);
        for (const b of a.blockedBy) insertBlockers.set(`${b.app}: ${b.query}`, (insertBlockers.get(`${b.app}: ${b.query}`) ?? 0) + 1);
      } else if (a.app === 'bench-retention-expiry') {
        expirySamples++;
        const k = `${wait} | ${a.query}`;
        expiryWaits.set(k, (expiryWaits.get(k) ?? 0) + 1);
      }
    }
    const top = (m: Map<string, number>, n = 8) =>
      [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([what, count]) => ({ what, count }));

    // Insert latency by the expiry statement that was running when the INSERT was due.
    const byConcurrent = new Map<string, number[]>();
    for (const x of during.samples) {
      const st = stmts.find((y) => y.start <= x.due && x.due < y.end);
      const k = st ? template(st.sql) : '(between statements)';
      const list = byConcurrent.get(k) ?? [];
      list.push(x.done - x.due);
      byConcurrent.set(k, list);
    }
    const insertsByExpiryStatement = [...byConcurrent.entries()]
      .map(([sql, l]) => ({ sql, ...summarize(l) }))
      .sort((a, b) => b.samples - a.samples);

    const targets = {
      expiryUnder30s: !expiryError && expiryS < TARGET_EXPIRY_S,
      insertP99AtMostDoubled: Number.isFinite(ratio) && ratio <= TARGET_P99_RATIO,
      atFullSize: EVENTS_PER_DAY >= 1_000_000 && DAYS >= 30 && EXPIRE_DAYS >= 20,
    };

    // ---- EXPLAIN ANALYZE of the slowest per-day statements, against the oldest day still there
    const plans: { sql: string; originalMs: number; plan: string[] }[] = [];
    const wantExplain = EXPLAIN_MODE === 'always' || (EXPLAIN_MODE === 'when-missed' && !(targets.expiryUnder30s && targets.insertP99AtMostDoubled));
    if (wantExplain && keptDays.length) {
      const survivor = keptDays[0]!;
      const survivorEnd = new Date(Date.parse(`${survivor}T00:00:00Z`) + DAY_MS);
      const seen = new Set<string>();
      const candidates = [...stmts]
        .filter((s) => /^\s*(select|insert|with|delete)\b/i.test(s.sql) && !s.error && s.ms >= 50)
        .sort((a, b) => b.ms - a.ms)
        .filter((s) => (seen.has(template(s.sql)) ? false : (seen.add(template(s.sql)), true)))
        .slice(0, 4);
      const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-retention-explain' });
      await client.connect();
      try {
        for (const s of candidates) {
          const day = /usage_events_(\d{4})(\d{2})(\d{2})/.exec(s.sql);
          const dayEndMs = day ? Date.parse(`${day[1]}-${day[2]}-${day[3]}T00:00:00Z`) + DAY_MS : NaN;
          const sql = s.sql.replace(/usage_events_\d{8}/g, partitionOf(survivor));
          const bindings = s.bindings.map((b) => (day && (b instanceof Date || typeof b === 'string') && new Date(b as string).getTime() === dayEndMs ? survivorEnd : b));
          await client.query('BEGIN');
          try {
            const r = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, bindings);
            plans.push({ sql: oneLine(sql, 4_000), originalMs: Math.round(s.ms), plan: r.rows.map((x: Record<string, string>) => x['QUERY PLAN']!) });
          } catch (err) {
            plans.push({ sql: oneLine(sql, 4_000), originalMs: Math.round(s.ms), plan: [`EXPLAIN failed: ${(err as Error).message}`] });
          } finally {
            await client.query('ROLLBACK');
          }
        }
      } finally {
        await client.end();
      }
      if (plans.length) log(`EXPLAIN ANALYZE of ${plans.length} statements (on ${partitionOf(survivor)}, rolled back) written to the results`);
    }

    // ---- output
    const lat = (s: LatencySummary) => [s.samples, s.p50Ms, s.p99Ms, s.maxMs];
    console.log(`\nseeding (${DAYS} days × ${EVENTS_PER_DAY} events, ${ACCOUNTS} accounts):\n${table([['phase', 'ms', 'rows'], ...seedPhases.map((p) => [p.phase, p.ms, p.rows ?? ''])])}\ntotal ${seedS.toFixed(1)} s\n`);
    console.log(
      table([
        ['inserts (100 rows, due → answer)', 'count', 'p50 ms', 'p99 ms', 'max ms'],
        ['baseline (no expiry)', ...lat(baseline.fromDue)],
        ['during expiry', ...lat(during.fromDue)],
        ['after expiry', ...lat(after.fromDue)],
        ['baseline, statement only', ...lat(baseline.statementOnly)],
        ['during expiry, statement only', ...lat(during.statementOnly)],
      ]),
    );
    console.log(`\nexpiry statements (${stmts.length}):\n${table([['statement', 'count', 'total ms', 'max ms', '% of expiry'], ...statementBreakdown.slice(0, 10).map((s) => [s.sql, s.count, s.totalMs, s.maxMs, s.sharePct])])}\n`);
    console.log(
      table([
        ['figure', 'value'],
        ['seeding s', round(seedS, 1)],
        ['expiry s', round(expiryS, 2)],
        ['partitions dropped', outcome?.expiredPartitions ?? 'n/a'],
        ['rows expired', outcome?.expiredRows ?? 'n/a'],
        ['rows moved to usage_events_retained', expected.moved],
        ['rows kept (hold / unbilled)', outcome ? `${outcome.keptHold} / ${outcome.keptUnbilled}` : 'n/a'],
        ['insert p99 baseline ms', baseline.fromDue.p99Ms],
        ['insert p99 during expiry ms', during.fromDue.p99Ms],
        ['p99 ratio during / baseline', ratio],
        ['detach lock timeouts (retried)', detachTimeouts],
        ['max inserts in flight', load.maxInFlight],
        [`target expiry < ${TARGET_EXPIRY_S} s`, targets.expiryUnder30s ? 'met' : 'NOT met'],
        [`target p99 ratio ≤ ${TARGET_P99_RATIO}`, targets.insertP99AtMostDoubled ? 'met' : 'NOT met'],
      ]),
    );
    console.log(
      `\ninserts during the expiry, by the expiry statement running when they were due:\n${table([
        ['expiry statement', 'inserts', 'p50 ms', 'p99 ms', 'max ms'],
        ['(baseline, no expiry)', ...lat(baseline.fromDue)],
        ...insertsByExpiryStatement.slice(0, 8).map((r) => [r.sql.slice(0, 90), r.samples, r.p50Ms, r.p99Ms, r.maxMs]),
      ])}\n`,
    );
    if (slow.length) log(`${slow.length} inserts during the expiry took over ${round(slowThreshold, 1)} ms (2 × baseline p99); expiry statements running then: ${top(overlapping, 3).map((o) => `${o.count}× ${o.what}`).join('; ')}`);
    if (insertBlockers.size) log(`inserts seen blocked by: ${top(insertBlockers, 3).map((o) => `${o.count}× ${o.what}`).join('; ')}`);
    const loadAtEnd = loadavg();
    log(`load average: ${loadAtStart.join(' ')} at start, ${loadAtBaseline.join(' ')} at the baseline, ${loadAtExpiry.join(' ')} when the expiry started, ${loadAfterExpiry.join(' ')} when it ended (2 CPUs: other work shares them)`);
    if (problems.length) for (const p of problems) log(`CHECK FAILED: ${p}`);
    else log(`checks passed: ${EXPIRE_DAYS} partitions gone, ${keptDays.length} kept with their rows, ${expected.moved - (expect.unbilled_moved - expect.unbilled_kept)} rows held back in usage_events_retained, all ${insertedRows} inserted rows present`);

    const out = {
      benchmark: 'retention',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        postgres: { version: server.v, sharedBuffers: server.sb, workMem: server.wm, maxWalSize: server.mw },
        loadAverage: { atStart: loadAtStart, atBaseline: loadAtBaseline, whenExpiryStarted: loadAtExpiry, whenExpiryEnded: loadAfterExpiry, atEnd: loadAtEnd },
      },
      setup: {
        quick: QUICK,
        days: DAYS,
        firstDay: days[0],
        lastDay: days.at(-1),
        expireDays: EXPIRE_DAYS,
        eventsPerDay: EVENTS_PER_DAY,
        accounts: ACCOUNTS,
        oldEventsMinimised: MINIMISED,
        usageEventsSize: `${size.total} (heap ${size.heap})`,
        policy: plan.policy,
        cutoff: cutoff.toISOString(),
        batchSize: BATCH_SIZE,
        pauseFactor: PAUSE_FACTOR,
        heldAccount: accountId(HELD_ACCOUNT),
        unbilledAccount: { id: accountId(UNBILLED_ACCOUNT), uninvoicedHour: unbilledHour },
        insertLoad: { rowsPerInsert: ROWS_PER_INSERT, intervalMs: INSERT_INTERVAL_MS, rowsPerSecond: RATE, pool: 4, warmupMs: WARMUP_MS, baselineS: BASELINE_S, afterMs: AFTER_MS },
      },
      seeding: { seconds: round(seedS, 1), phases: seedPhases },
      expiry: {
        seconds: round(expiryS, 2),
        error: expiryError,
        outcome,
        expected,
        partitionsDropped: outcome?.expiredPartitions ?? null,
        rowsExpired: outcome?.expiredRows ?? null,
        rowsMovedToRetained: expected.moved,
        rowsKept: outcome ? outcome.keptHold + outcome.keptUnbilled : null,
        statements: statementBreakdown,
        detachLockTimeouts: detachTimeouts,
        monitor: { samples: expirySamples, waits: top(expiryWaits, 12) },
      },
      inserts: {
        latencyFrom: 'due time (100 ms tick) to answer; statementOnly: sent to answer',
        baseline: baseline.fromDue,
        duringExpiry: during.fromDue,
        afterExpiry: after.fromDue,
        baselineStatementOnly: baseline.statementOnly,
        duringExpiryStatementOnly: during.statementOnly,
        p99RatioDuringOverBaseline: ratio,
        statementOnlyP99Ratio: statementRatio,
        total: load.samples.length,
        failed: failedInserts,
        rowsInserted: insertedRows,
        rowsFound: liveRows,
        maxInFlight: load.maxInFlight,
        duringExpiryByExpiryStatement: insertsByExpiryStatement,
        slowDuringExpiry: { thresholdMs: round(slowThreshold, 1), count: slow.length, overlappingExpiryStatements: top(overlapping) },
        monitor: { samples: insertSamples, waits: top(insertWaits), blockedBy: top(insertBlockers) },
        loadRanS: round((loadEnded - t0) / 1000, 1),
      },
      verification: { passed: problems.length === 0, problems, keptPartitions: keptAfter, retained },
      targets: { expiryUnder30s: targets.expiryUnder30s, insertP99AtMostDoubled: targets.insertP99AtMostDoubled, atFullSize: targets.atFullSize },
      plans,
    };
    writeResults(RESULTS_FILE, out, log);
    return problems.length ? 1 : 0;
  } finally {
    await live.stop?.();
    live.stop = undefined;
    await dropOrKeepDatabase(databaseUrl, KEEP_DB, log);
    live.databaseUrl = undefined;
  }
}

runMain('retention', main);
