/**
 * The client read API at scale (issue 22): GET /v1/key, /v1/credits,
 * /v1/generation and /v1/activity through a real `mixroute gateway` (fresh
 * database, own Temporal dev server), with 10,000,000 usage events in the
 * database. Target: each endpoint's p99 under 50 ms.
 *
 * Seeding (set-based SQL only, one day partition at a time): BENCH_CLIENT_API_EVENTS
 * settled usage events over BENCH_CLIENT_API_DAYS UTC days ending yesterday, spread
 * over BENCH_CLIENT_API_ACCOUNTS accounts of 3 keys each and 5 models; 1 % of them
 * belong to the measured account. usage_daily_keys is filled from the events (as
 * settlement would), and the measured account also gets a year of history of its
 * 10 keys × 20 older models (73,200 aggregate rows), the worst case of a 366-day
 * activity query.
 *
 * Measured, each sequentially over one keep-alive connection, after a warm-up:
 *   key          GET /v1/key (inference key with a monthly limit)
 *   credits      GET /v1/credits
 *   generation   GET /v1/generation?id= (a random event of the measured account, any day)
 *   activity     GET /v1/activity (366 days, group_by=day,model,key, first page of 100)
 *   activity_by_model_90d   GET /v1/activity (the 90 days of events, group_by=model: sums ~22,500 rows)
 *   activity_by_model_366d_worst   the same over 366 days (sums all 75,000 rows: 10 keys using 20
 *                models every day for a year); reported, not held to the target, which the issue
 *                sets for 10 million events (this account's share is 100,000 events)
 * The plan of the generation lookup (EXPLAIN ANALYZE) goes into the results.
 *
 *   npm run bench -- client-api        (BENCH_QUICK=1: 200,000 events, 200 requests per endpoint)
 *
 * Overrides: BENCH_CLIENT_API_EVENTS (10,000,000), BENCH_CLIENT_API_DAYS (90),
 * BENCH_CLIENT_API_ACCOUNTS (1,000), BENCH_CLIENT_API_REQUESTS (1,000 per endpoint),
 * BENCH_DATABASE_URL, BENCH_KEEP_DB=1. Writes .data/bench/client-api.json.
 * Exit code 0 even when a target is missed; 1 when anything crashes or an answer is wrong.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Pool } from 'undici';
import { accountsService } from '../src/accounts/accounts.service';
import { systemClock } from '../src/clock';
import { ensureDatabase } from '../src/db/database';
import { createDb, type Db } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';
import { postEntry } from '../src/ledger/ledger.data';
import { Money } from '../src/shared/money.rules';
import { findTemporalCli, startDevServer, type DevServer } from '../src/temporal/devServer';
import { freePort } from '../src/util/ports';
import {
  benchResultsFile,
  cleanEnv,
  dropOrKeepDatabase,
  intEnv,
  round,
  runMain,
  spawnNode,
  summarize,
  table,
  waitForHttpOk,
  writeResults,
  type Child,
  type LatencySummary,
} from './lib';

const QUICK = process.env.BENCH_QUICK === '1';
const EVENTS = intEnv('BENCH_CLIENT_API_EVENTS', QUICK ? 200_000 : 10_000_000, 1_000);
const DAYS = intEnv('BENCH_CLIENT_API_DAYS', 90, 1);
const ACCOUNTS = intEnv('BENCH_CLIENT_API_ACCOUNTS', 1_000, 10);
const REQUESTS = intEnv('BENCH_CLIENT_API_REQUESTS', QUICK ? 200 : 1_000, 10);
const WARMUP = Math.min(100, REQUESTS);
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const TARGET_P99_MS = 50;
const KEYS_PER_ACCOUNT = 3;
const MEASURED_KEYS = 10;
const HISTORY_MODELS = 20;
const HISTORY_DAYS = 366;
const DAY_MS = 86_400_000;
const RESULTS_FILE = benchResultsFile('client-api.json');
const log = (line: string) => process.stdout.write(`[client-api] ${line}\n`);

const accountSql = (expr: string) => `('00000000-0000-4000-8000-' || lpad(to_hex(${expr}), 12, '0'))::uuid`;
const keySql = (expr: string) => `('00000000-0000-4000-a000-' || lpad(to_hex(${expr}), 12, '0'))::uuid`;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

interface Measured {
  accountId: string;
  inferenceKey: string;
  managementKey: string;
  keyIds: string[];
}

async function seed(databaseUrl: string, m: Measured, days: string[]): Promise<{ phase: string; ms: number }[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-client-api-seed' });
  await client.connect();
  const phases: { phase: string; ms: number }[] = [];
  const step = async (phase: string, sql: string, params: unknown[] = []) => {
    const t0 = performance.now();
    await client.query(sql, params);
    const ms = Math.round(performance.now() - t0);
    phases.push({ phase, ms });
    return ms;
  };
  try {
    await client.query(`SET synchronous_commit = off`);
    // date + interval is a timestamp without zone: read as UTC, as the partitions' bounds are.
    await client.query(`SET TimeZone = 'UTC'`);
    await client.query(`SET maintenance_work_mem = '512MB'`);
    await client.query(`SET work_mem = '128MB'`);
    await step('accounts', `INSERT INTO accounts (id, name, country, plan) SELECT ${accountSql('n')}, 'Bench account ' || n, 'DE', 'prepaid' FROM generate_series(0, ${ACCOUNTS - 1}) n`);
    await step(
      'api_keys',
      `INSERT INTO api_keys (id, account_id, key_hash, prefix) SELECT ${keySql('n')}, ${accountSql(`n / ${KEYS_PER_ACCOUNT}`)}, 'bench-hash-' || n, 'mr-bench'
         FROM generate_series(0, ${ACCOUNTS * KEYS_PER_ACCOUNT - 1}) n`,
    );
    const perDay = Math.ceil(EVENTS / days.length);
    let total = 0;
    const t0 = performance.now();
    for (const [i, day] of days.entries()) {
      const count = Math.min(perDay, EVENTS - total);
      if (count <= 0) break;
      await client.query(`SELECT ensure_usage_events_partition($1::date)`, [day]);
      // Every 100th event is the measured account's (spread over its keys); the rest go round the synthetic accounts.
      await client.query(
        `INSERT INTO usage_events (request_id, occurred_at, finished_at, account_id, api_key_id, endpoint, model, provider, status_code, stream,
                                   input_tokens, output_tokens, cost, latency_ms, upstream_latency_ms, gateway_instance, settled_at, network_minimised)
         SELECT 'req-bench-' || $1::text || '-' || n,
                $1::date + (n * interval '1 millisecond' * (86400000.0 / $2)),
                $1::date + (n * interval '1 millisecond' * (86400000.0 / $2)) + interval '800 milliseconds',
                CASE WHEN n % 100 = 0 THEN $3::uuid ELSE ${accountSql(`n % ${ACCOUNTS}`)} END,
                CASE WHEN n % 100 = 0 THEN ($4::uuid[])[1 + (n / 100) % ${MEASURED_KEYS}] ELSE ${keySql(`(n % ${ACCOUNTS}) * ${KEYS_PER_ACCOUNT} + (n / ${ACCOUNTS}) % ${KEYS_PER_ACCOUNT}`)} END,
                'chat.completions', 'bench-model-' || ((n / 7) % 5), 'bench-provider', 200, n % 3 = 0,
                100 + n % 900, 20 + n % 300, ((100 + n % 900) * 2.5 + (20 + n % 300) * 10) / 1000000, 800, 750, 'bench', $1::date + interval '1 day', true
           FROM generate_series(0, $2 - 1) n`,
        [day, count, m.accountId, m.keyIds],
      );
      total += count;
      if (i % 10 === 9 || total >= EVENTS) log(`  seeded ${total.toLocaleString('en')} events (${days.slice(0, i + 1).length} days, ${Math.round((performance.now() - t0) / 1000)} s)`);
    }
    phases.push({ phase: 'usage_events', ms: Math.round(performance.now() - t0) });
    await step(
      'usage_daily_keys from events',
      `INSERT INTO usage_daily_keys (account_id, day, api_key_id, model, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
       SELECT account_id, (occurred_at AT TIME ZONE 'UTC')::date, api_key_id, COALESCE(model, ''), count(*), sum(input_tokens), sum(cache_read_tokens),
              sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost)
         FROM usage_events GROUP BY 1, 2, 3, 4`,
    );
    // A year of the measured account's history on older models: the 366-day worst case.
    await step(
      'measured account history',
      `INSERT INTO usage_daily_keys (account_id, day, api_key_id, model, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
       SELECT $1::uuid, current_date - d, k, 'bench-history-' || lpad(mo::text, 2, '0'), 10, 10000, 0, 0, 2000, 0, 0.045
         FROM generate_series(0, ${HISTORY_DAYS - 1}) d, unnest($2::uuid[]) k, generate_series(0, ${HISTORY_MODELS - 1}) mo`,
      [m.accountId, m.keyIds],
    );
    await step('analyze', `ANALYZE`);
  } finally {
    await client.end();
  }
  return phases;
}

async function main(): Promise<number> {
  const u = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  u.pathname = `/mixroute_bench_client_api_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const databaseUrl = u.toString();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-bench-client-api-'));
  let db: Db | undefined;
  let temporal: DevServer | undefined;
  let gateway: Child | undefined;
  let http: Pool | undefined;
  const load = os.loadavg()[0]!;
  log(`machine: ${os.cpus().length} CPUs, load ${round(load, 2)}; ${EVENTS.toLocaleString('en')} events over ${DAYS} days${QUICK ? ' [QUICK]' : ''}`);
  try {
    await ensureDatabase(databaseUrl);
    db = createDb({ databaseUrl, poolMax: 2, applicationName: 'bench-client-api' });
    await migrateLatest(db);

    // The measured account, made the way staff make one: its keys are real secrets the gateway can authenticate.
    const ops = accountsService({ db, clock: systemClock });
    const account = await ops.createAccount({ name: 'Bench measured' });
    await postEntry(
      db,
      { accountId: account.id, kind: 'grant', contra: 'promotions', amount: new Money('1000'), idempotencyKey: `bench-grant:${account.id}`, referenceType: 'bench', referenceId: 'bench', actor: 'bench' },
      { overdraftAllowance: new Money(0) },
    );
    const keys = [];
    for (let i = 0; i < MEASURED_KEYS; i++) keys.push(await ops.createKey({ accountId: account.id, name: `bench ${i}`, rateLimitRpm: 1_000_000 }));
    await db('api_keys').where({ id: keys[0]!.id }).update({ spend_limit: '500', limit_window: 'monthly' });
    await db('api_keys').where({ id: keys[1]!.id }).update({ kind: 'management' });
    const measured: Measured = { accountId: account.id, inferenceKey: keys[0]!.key, managementKey: keys[1]!.key, keyIds: keys.map((k) => k.id) };

    const todayMs = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const days = Array.from({ length: DAYS }, (_, i) => isoDay(todayMs - (DAYS - i) * DAY_MS));
    const phases = await seed(databaseUrl, measured, days);
    for (const p of phases) log(`  seed ${p.phase}: ${(p.ms / 1000).toFixed(1)} s`);
    const counts = (await db.raw(
      `SELECT (SELECT count(*) FROM usage_events)::bigint AS events, (SELECT count(*) FROM usage_daily_keys)::bigint AS daily,
              (SELECT count(*) FROM usage_daily_keys WHERE account_id = ?)::bigint AS measured_daily`,
      [account.id],
    )).rows[0] as { events: number; daily: number; measured_daily: number };
    log(`usage_events ${counts.events}, usage_daily_keys ${counts.daily} (measured account ${counts.measured_daily})`);

    const ids = (await db.raw(
      `SELECT request_id FROM usage_events WHERE account_id = ? ORDER BY random() LIMIT ?`,
      [account.id, REQUESTS + WARMUP],
    )).rows.map((r: { request_id: string }) => r.request_id) as string[];
    const plan = (await db.raw(
      `EXPLAIN (ANALYZE, BUFFERS) SELECT request_id FROM usage_events WHERE request_id = ? AND account_id = ?::uuid LIMIT 1`,
      [ids[0]!, account.id],
    )).rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']) as string[];
    const planSummary = plan.filter((l) => /Planning Time|Execution Time/.test(l)).map((l) => l.trim());
    log(`generation lookup: ${planSummary.join(', ')}; ${plan.filter((l) => /Index/.test(l)).length} index probes in the plan`);

    temporal = await startDevServer({ cliPath: findTemporalCli(undefined), port: await freePort(), logFile: path.join(tmp, 'temporal.log') });
    const gatewayPort = await freePort();
    gateway = spawnNode('gateway', ['bin/mixroute.js', 'gateway'], {
      ...cleanEnv(),
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: `bench-client-api`,
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_METRICS_PORT: String(await freePort()),
      // The account API's own per-key bound would refuse a benchmark's sequential run.
      GATEWAY_ACCOUNT_API_RPM: '0',
      DATA_DIR: path.join(tmp, 'data'),
      LOG_LEVEL: 'warn',
    });
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await waitForHttpOk(gateway, `${gatewayUrl}/readyz`);
    http = new Pool(gatewayUrl, { connections: 1, pipelining: 1 });

    const from = isoDay(todayMs - (HISTORY_DAYS - 1) * DAY_MS);
    const to = isoDay(todayMs);
    const recentFrom = days[0]!;
    /** `target: false`: reported, not held to the 50 ms target (beyond the issue's scenario: see the header). */
    const cases: { name: string; key: string; target?: false; path: (i: number) => string; check: (body: Record<string, unknown>) => boolean }[] = [
      { name: 'key', key: measured.inferenceKey, path: () => '/v1/key', check: (b) => (b.data as { limit_reset: string }).limit_reset === 'monthly' },
      { name: 'credits', key: measured.inferenceKey, path: () => '/v1/credits', check: (b) => (b.data as { balance: string }).balance === '1000' },
      { name: 'generation', key: measured.managementKey, path: (i) => `/v1/generation?id=${ids[i % ids.length]}`, check: (b) => typeof (b.data as { id: string }).id === 'string' },
      { name: 'activity', key: measured.managementKey, path: () => `/v1/activity?from=${from}&to=${to}&group_by=day,model,key&limit=100`, check: (b) => (b.data as unknown[]).length === 100 },
      {
        name: 'activity_by_model_90d',
        key: measured.managementKey,
        path: () => `/v1/activity?from=${recentFrom}&to=${to}&group_by=model&limit=100`,
        check: (b) => (b.data as unknown[]).length === HISTORY_MODELS + 5,
      },
      {
        name: 'activity_by_model_366d_worst',
        key: measured.managementKey,
        target: false,
        path: () => `/v1/activity?from=${from}&to=${to}&group_by=model&limit=100`,
        check: (b) => (b.data as unknown[]).length === HISTORY_MODELS + 5,
      },
    ];
    const results: Record<string, LatencySummary & { heldToTarget: boolean }> = {};
    let wrong = 0;
    for (const c of cases) {
      const samples: number[] = [];
      for (let i = 0; i < WARMUP + REQUESTS; i++) {
        const t0 = performance.now();
        const res = await http.request({ method: 'GET', path: c.path(i), headers: { authorization: `Bearer ${c.key}` } });
        const text = await res.body.text();
        const ms = performance.now() - t0;
        if (res.statusCode !== 200 || !c.check(JSON.parse(text) as Record<string, unknown>)) {
          wrong++;
          if (wrong <= 3) log(`unexpected answer from ${c.path(i)}: ${res.statusCode} ${text.slice(0, 300)}`);
        }
        if (i >= WARMUP) samples.push(ms);
      }
      results[c.name] = { ...summarize(samples), heldToTarget: c.target !== false };
    }
    const rows = Object.entries(results).map(([name, s]) => [name, s.samples, s.p50Ms, s.p90Ms, s.p99Ms, s.maxMs, !s.heldToTarget ? '(not a target)' : s.p99Ms < TARGET_P99_MS ? 'yes' : 'NO']);
    log(`\n${table([['endpoint', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', `p99 < ${TARGET_P99_MS} ms`], ...rows])}`);
    writeResults(
      RESULTS_FILE,
      {
        at: new Date().toISOString(),
        machine: { cpus: os.cpus().length, loadAtStart: round(load, 2), loadAtEnd: round(os.loadavg()[0]!, 2) },
        settings: { events: EVENTS, days: DAYS, accounts: ACCOUNTS, requests: REQUESTS, warmup: WARMUP, quick: QUICK },
        rows: counts,
        seed: phases,
        latency: results,
        targetP99Ms: TARGET_P99_MS,
        allUnderTarget: Object.values(results).every((s) => !s.heldToTarget || s.p99Ms < TARGET_P99_MS),
        wrongAnswers: wrong,
        generationPlan: plan,
      },
      log,
    );
    return wrong > 0 ? 1 : 0;
  } finally {
    await http?.close();
    await gateway?.stop();
    await temporal?.stop().catch(() => undefined);
    await db?.destroy();
    await dropOrKeepDatabase(databaseUrl, KEEP_DB, log);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runMain('client-api', main);
