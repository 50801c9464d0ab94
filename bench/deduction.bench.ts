/**
 * Deduction lag: request finished -> balance reduced, at a rate spread over a
 * number of accounts (issue 18's targets: p99 under 2 s at 500 requests/s over
 * 100, 1,000 and 10,000 active accounts, under 3 s at 1,500 requests/s over
 * 10,000; no 402 for an account whose balance covers its requests; worker CPU
 * per 1,000 settled events at 10,000 accounts at most twice that at 100).
 *
 * Real parts: gateway and worker processes, a headless Temporal dev server, a
 * fresh PostgreSQL database; the provider is bench/mockUpstream.ts. The lag of
 * each request is measured in PostgreSQL as settled_at (the moment the
 * settlement transaction marked it, clock_timestamp(), just before it commits
 * the balance change) minus finished_at (when the gateway finished it). Both
 * clocks are this machine's. Each run also reports the workers' CPU seconds
 * per 1,000 settled events (from /proc) and the Temporal workflow tasks per
 * second (counted in the settlement shards' histories).
 *
 *   BENCH_RATE=1500 BENCH_ACCOUNTS=10000 npm run bench -- deduction   (BENCH_QUICK=1 for a short run)
 *
 * Settings: BENCH_RATE (requests/s, 500), BENCH_ACCOUNTS (100), BENCH_SECONDS
 * (measured, 20; 6 quick), BENCH_LOAD_WARMUP_S, BENCH_WORKERS (worker
 * processes, 1), BENCH_GATEWAYS (gateway processes, 1), BENCH_SHARDS
 * (SETTLEMENT_SHARDS), BENCH_SIGNAL_THROTTLE_MS, BENCH_DATABASE_POOL_MAX,
 * BENCH_WORKFLOW_THREADS, BENCH_WORKER_CPU_PROF=DIR. Raw results go to
 * .data/bench/ (BENCH_RESULTS_DIR), never into the repository.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'undici';
import { issueSecret } from '../src/auth/secrets';
import { systemClock } from '../src/clock';
import { dropDatabase, ensureDatabase } from '../src/db/database';
import { createDb, type Db } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';
import { allShards } from '../src/metering/shards.rules';
import { accountsService } from '../src/accounts/accounts.service';
import { workflowIds } from '../src/temporal/conventions';
import { findTemporalCli, startDevServer, type DevServer } from '../src/temporal/devServer';
import { freePort } from '../src/util/ports';
import { cleanEnv, intEnv, percentile, processCpuSeconds, REPO_ROOT, round, sleep, spawnNode, waitForHttpOk, waitForReadyMessage, workflowTaskStats, type Child } from './lib';

const QUICK = process.env.BENCH_QUICK === '1';
const RATE = intEnv('BENCH_RATE', 500, 1);
const ACCOUNTS = intEnv('BENCH_ACCOUNTS', 100, 1);
const SECONDS = intEnv('BENCH_SECONDS', QUICK ? 6 : 20, 1);
const WORKERS = intEnv('BENCH_WORKERS', 1, 1);
const GATEWAYS = intEnv('BENCH_GATEWAYS', 1, 1);
/**
 * Seconds of load at the full rate before the measured window (`BENCH_LOAD_WARMUP_S`):
 * the target is the lag at the rate, and the first seconds after an idle
 * system goes to that rate are a ramp (JIT, pools, the shards' first passes
 * at once). The lag including the ramp is printed as well.
 */
const LOAD_WARMUP_SECONDS = intEnv('BENCH_LOAD_WARMUP_S', QUICK ? 0 : 5, 0);
const CREDIT = '1000';
const UPSTREAM_KEY_ENV = 'PROVIDER_BENCH_UPSTREAM_API_KEY';
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? path.join(REPO_ROOT, '.data/bench');
const log = (line: string) => process.stdout.write(`[deduction] ${line}\n`);

/** Accounts, their grants and their keys in a few statements: 10,000 one by one took minutes. */
async function createAccounts(db: Db, tag: string): Promise<{ id: string; key: string }[]> {
  const ops = accountsService({ db, clock: systemClock });
  const template = await ops.createAccount({ name: `Deduction ${tag} 0` });
  const ids: string[] = [template.id];
  if (ACCOUNTS > 1) {
    const rows = await db.raw(
      // The columns' defaults are createAccount's: a prepaid account in USD.
      `INSERT INTO accounts (name) SELECT 'Deduction ' || ? || ' ' || g FROM generate_series(1, ?) g RETURNING id`,
      [tag, ACCOUNTS - 1],
    );
    ids.push(...rows.rows.map((r: { id: string }) => r.id));
  }
  await db.raw(`INSERT INTO account_balances (account_id) SELECT unnest(?::uuid[]) ON CONFLICT DO NOTHING`, [ids]);
  await db.raw(
    `WITH e AS (
       INSERT INTO ledger_entries (account_id, kind, contra, amount, idempotency_key, reference_type, reference_id, actor, balance_after)
       SELECT b.account_id, 'grant', 'promotions', ?::numeric, 'bench:' || b.account_id, 'bench', ?, 'bench', b.balance + ?::numeric
         FROM account_balances b WHERE b.account_id = ANY(?::uuid[])
       RETURNING account_id, amount)
     UPDATE account_balances b SET balance = b.balance + e.amount FROM e WHERE b.account_id = e.account_id`,
    [CREDIT, tag, CREDIT, ids],
  );
  const accounts: { id: string; key: string }[] = [];
  for (let i = 0; i < ids.length; i += 1_000) {
    const chunk = ids.slice(i, i + 1_000).map((id) => ({ id, issued: issueSecret('api_key') }));
    await db('api_keys').insert(chunk.map((c) => ({ account_id: c.id, key_hash: c.issued.hash, prefix: c.issued.displayPrefix, rate_limit_rpm: 1_000_000 })));
    accounts.push(...chunk.map((c) => ({ id: c.id, key: c.issued.secret })));
  }
  return accounts;
}

async function main(): Promise<number> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-deduction-'));
  const u = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  u.pathname = `/mixroute_bench_deduction_${Date.now()}`;
  const databaseUrl = u.toString();
  const children: Child[] = [];
  let db: Db | undefined;
  let temporal: DevServer | undefined;
  let connection: Connection | undefined;
  try {
    await ensureDatabase(databaseUrl);
    db = createDb({ databaseUrl, poolMax: 4, applicationName: 'mixroute-bench' });
    await migrateLatest(db);
    temporal = await startDevServer({ cliPath: findTemporalCli(undefined), port: await freePort(), logFile: path.join(tmp, 'temporal.log') });
    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });

    const mock = spawnNode('mock upstream', ['--import', 'tsx', 'bench/mockUpstream.ts'], cleanEnv());
    children.push(mock);
    const mockUrl = `http://127.0.0.1:${await waitForReadyMessage(mock)}`;

    const ops = accountsService({ db, clock: systemClock });
    const tag = randomUUID().slice(0, 8);
    await ops.addProvider({ name: `bench-${tag}`, baseUrl: `${mockUrl}/v1`, apiKeyEnv: UPSTREAM_KEY_ENV });
    const model = `bench-model-${tag}`;
    await ops.addModel({ name: model, provider: `bench-${tag}`, upstreamModel: 'bench-model', inputPerMtok: '2.5', outputPerMtok: '10', effectiveFrom: '2020-01-01T00:00:00Z' });
    const accounts = await createAccounts(db, tag);
    log(`${ACCOUNTS} accounts with ${CREDIT} each`);

    const taskQueue = `bench-${tag}`;
    const env = {
      ...cleanEnv(),
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      LOG_LEVEL: 'warn',
      [UPSTREAM_KEY_ENV]: 'sk-bench',
      ...(process.env.BENCH_SIGNAL_THROTTLE_MS ? { METERING_SIGNAL_THROTTLE_MS: process.env.BENCH_SIGNAL_THROTTLE_MS } : {}),
      ...(process.env.BENCH_DATABASE_POOL_MAX ? { DATABASE_POOL_MAX: process.env.BENCH_DATABASE_POOL_MAX } : {}),
      ...(process.env.BENCH_WORKFLOW_THREADS ? { WORKER_WORKFLOW_THREADS: process.env.BENCH_WORKFLOW_THREADS } : {}),
      ...(process.env.BENCH_SHARDS ? { SETTLEMENT_SHARDS: process.env.BENCH_SHARDS } : {}),
    };
    const shards = Number(env.SETTLEMENT_SHARDS ?? 16);
    // BENCH_WORKER_CPU_PROF=DIR: each worker writes a CPU profile (main thread and workflow threads) there on exit.
    const workerProf = process.env.BENCH_WORKER_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_WORKER_CPU_PROF}`] : [];
    const workers: Child[] = [];
    for (let i = 0; i < WORKERS; i++) workers.push(spawnNode(`worker ${i + 1}`, [...workerProf, 'bin/mixroute.js', 'worker'], env));
    children.push(...workers);
    const gatewayUrls: string[] = [];
    for (let i = 0; i < GATEWAYS; i++) {
      const port = await freePort();
      const gateway = spawnNode(`gateway ${i + 1}`, ['bin/mixroute.js', 'gateway'], {
        ...env,
        GATEWAY_PORT: String(port),
        GATEWAY_METRICS_PORT: '0',
        GATEWAY_INSTANCE_ID: `bench-gw-${i + 1}`,
        UPSTREAM_ALLOWED_HOSTS: '127.0.0.1',
        // Every request comes from one address: the per-address limit on key lookups would refuse the warm-up.
        GATEWAY_AUTH_FAILURES_PER_MIN: '0',
        DATA_DIR: path.join(tmp, `data-${i + 1}`),
      });
      children.push(gateway);
      await waitForHttpOk(gateway, `http://127.0.0.1:${port}/readyz`);
      gatewayUrls.push(`http://127.0.0.1:${port}`);
    }

    const pools = gatewayUrls.map((url) => new Pool(url, { connections: Math.ceil(64 / GATEWAYS), pipelining: 1, keepAliveTimeout: 60_000 }));
    const body = JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'Say something short.' }] });
    let completed = 0;
    let failed = 0;
    const statuses: Record<string, number> = {};
    const send = async (i: number) => {
      const a = accounts[i % ACCOUNTS]!;
      try {
        const r = await pools[i % GATEWAYS]!.request({ path: '/v1/chat/completions', method: 'POST', headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' }, body });
        await r.body.arrayBuffer();
        statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
        if (r.statusCode === 200) completed++;
        else failed++;
      } catch {
        statuses.error = (statuses.error ?? 0) + 1;
        failed++;
      }
    };

    // Warm-up: one request per account (its first balance hold, the key in each gateway's cache), 64 at a time.
    for (let i = 0; i < ACCOUNTS; i += 64) await Promise.all(Array.from({ length: Math.min(64, ACCOUNTS - i) }, (_, j) => send(i + j)));
    const warm = completed;
    await sleep(3_000);
    const rampStart = new Date();
    let loadStart = rampStart;
    const cpu = () => workers.reduce((sum, w) => sum + (processCpuSeconds(w.proc.pid) ?? Number.NaN), 0);
    let cpuAtStart = cpu();
    log(`load: ${RATE} requests/s for ${LOAD_WARMUP_SECONDS} s of warm-up, then ${SECONDS} s measured, over ${ACCOUNTS} accounts; ${WORKERS} worker(s), ${GATEWAYS} gateway(s), ${shards} shards`);
    const warmupTotal = RATE * LOAD_WARMUP_SECONDS;
    const total = warmupTotal + RATE * SECONDS;
    const pending: Promise<void>[] = [];
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * RATE) / 1000) + 1);
        while (pending.length < due) {
          if (pending.length === warmupTotal && warmupTotal > 0) {
            loadStart = new Date();
            cpuAtStart = cpu();
          }
          pending.push(send(pending.length));
        }
        if (pending.length >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    await Promise.all(pending);
    const sendSeconds = (performance.now() - t0) / 1000;
    await Promise.all(pools.map((p) => p.close()));
    log(`sent ${total} in ${round(sendSeconds, 1)} s: ${completed - warm} completed, ${failed} failed (${JSON.stringify(statuses)})`);

    // Wait (bounded) for every event of the run to be settled.
    const deadline = Date.now() + 120_000;
    let unsettled = -1;
    while (Date.now() < deadline) {
      const row = await db('usage_events').whereNull('settled_at').count('* as n').first();
      unsettled = Number(row!.n);
      if (unsettled === 0) break;
      await sleep(250);
    }
    const settledBy = new Date();
    const cpuSeconds = cpu() - cpuAtStart;
    const lag = await db.raw(
      `SELECT count(*)::int AS n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - finished_at)) AS p50,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - finished_at)) AS p95,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - finished_at)) AS p99,
              max(extract(epoch FROM settled_at - finished_at)) AS max,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - finished_at)) AS rec_p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - finished_at)) AS rec_p99,
              count(DISTINCT account_id)::int AS accounts
         FROM usage_events WHERE occurred_at >= ? AND settled_at IS NOT NULL`,
      [loadStart],
    );
    const l = lag.rows[0];
    // Events settled while the CPU was measured (from the measured window's start to the end of settlement).
    const settledInWindow = Number((await db('usage_events').where('settled_at', '>=', loadStart).count('* as n').first())!.n);
    const ramp = (
      await db.raw(
        `SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - finished_at)) AS p99
           FROM usage_events WHERE occurred_at >= ? AND settled_at IS NOT NULL`,
        [rampStart],
      )
    ).rows[0];
    const events = Number((await db('usage_events').count('* as n').first())!.n);
    const books = await db.raw(
      `SELECT count(*)::int AS wrong FROM account_balances b
        WHERE b.balance <> (SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.account_id = b.account_id)
           OR b.balance <> ?::numeric - (SELECT coalesce(sum(cost), 0) FROM usage_events u WHERE u.account_id = b.account_id AND u.settled_at IS NOT NULL)`,
      [CREDIT],
    );
    // Lag by the second the request finished in: a warm-up transient and a steady backlog look alike in one p99.
    const bySecond: { s: number; n: number; p99: number }[] = (
      await db.raw(
        `SELECT floor(extract(epoch FROM finished_at - ?::timestamptz))::int AS s, count(*)::int AS n,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - finished_at)) AS p99
           FROM usage_events WHERE occurred_at >= ? AND settled_at IS NOT NULL GROUP BY 1 ORDER BY 1`,
        [loadStart, loadStart],
      )
    ).rows.map((r: { s: number; n: number; p99: string }) => ({ s: r.s, n: r.n, p99: round(Number(r.p99)) }));
    log(`lag p99 by second of the load: ${bySecond.map((b) => `${b.s}s ${b.p99}`).join(', ')}`);

    // Temporal's share: workflow tasks of the shards from the measured window's start to the end of settlement.
    const windowSeconds = (settledBy.getTime() - loadStart.getTime()) / 1000;
    const tasks = await workflowTaskStats(client, allShards(shards).map((s) => workflowIds.settlement(s, taskQueue)), loadStart, settledBy);
    const q = (xs: number[], p: number) => (xs.length ? round(percentile(xs, p) / 1000) : null);
    const status402 = statuses['402'] ?? 0;
    const result = {
      benchmark: 'deduction',
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg().map((v) => round(v, 2)) },
      setup: { rate: RATE, accounts: ACCOUNTS, seconds: SECONDS, loadWarmupSeconds: LOAD_WARMUP_SECONDS, quick: QUICK, workers: WORKERS, gateways: GATEWAYS, shards, settleMinIntervalMs: 0, meteringBatchMs: 200, signalThrottleMs: Number(process.env.BENCH_SIGNAL_THROTTLE_MS ?? 500), workflowThreads: Number(process.env.BENCH_WORKFLOW_THREADS ?? 1) },
      requests: { sent: total + ACCOUNTS, completed, failed, statuses, sendSeconds: round(sendSeconds, 2) },
      events: { recorded: events, unsettledAtEnd: unsettled, measured: l.n, accountsActiveInWindow: l.accounts, settledInCpuWindow: settledInWindow },
      lagSeconds: { p50: round(Number(l.p50)), p95: round(Number(l.p95)), p99: round(Number(l.p99)), max: round(Number(l.max)), p99WithRamp: round(Number(ramp.p99)) },
      lagP99BySecond: bySecond,
      // The first leg: request finished -> row in usage_events (journal, batcher).
      recordedLagSeconds: { p50: round(Number(l.rec_p50)), p99: round(Number(l.rec_p99)) },
      worker: { cpuSeconds: round(cpuSeconds, 2), cpuSecondsPer1000SettledEvents: round((cpuSeconds / Math.max(1, settledInWindow)) * 1000, 4) },
      temporal: {
        windowSeconds: round(windowSeconds, 2),
        workflowTasks: tasks.completed,
        workflowTasksPerSecond: round(tasks.completed / windowSeconds, 1),
        workflowTaskTimeouts: tasks.timedOut,
        workflowTaskFailures: tasks.failed,
        signalToWorkflowTaskSeconds: { p50: q(tasks.signalToTaskStartMs, 50), p99: q(tasks.signalToTaskStartMs, 99) },
        workflowTaskRunSeconds: { p50: q(tasks.taskRunMs, 50), p99: q(tasks.taskRunMs, 99), max: q(tasks.taskRunMs, 100) },
      },
      booksAgree: Number(books.rows[0].wrong) === 0,
      targets: { noRefusal: status402 === 0, everyRequestMetered: events === completed, everyEventSettled: unsettled === 0 },
    };
    const file = path.join(RESULTS_DIR, `deduction-${RATE}rps-${ACCOUNTS}acc-${WORKERS}w-${result.at.replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`events ${events} for ${completed} completed requests; unsettled at end ${unsettled}; 402s: ${status402}`);
    log(`deduction lag p50 ${result.lagSeconds.p50} s, p95 ${result.lagSeconds.p95} s, p99 ${result.lagSeconds.p99} s, max ${result.lagSeconds.max} s; with the ${LOAD_WARMUP_SECONDS} s ramp included: p99 ${result.lagSeconds.p99WithRamp} s`);
    log(`of which finished -> in usage_events: p50 ${result.recordedLagSeconds.p50} s, p99 ${result.recordedLagSeconds.p99} s`);
    log(`worker CPU ${result.worker.cpuSeconds} s for ${settledInWindow} settled events: ${result.worker.cpuSecondsPer1000SettledEvents} s per 1,000`);
    log(`Temporal: ${tasks.completed} workflow tasks in ${round(windowSeconds, 1)} s = ${result.temporal.workflowTasksPerSecond}/s; timeouts ${tasks.timedOut}, failures ${tasks.failed}; signal -> task p50 ${result.temporal.signalToWorkflowTaskSeconds.p50} s, p99 ${result.temporal.signalToWorkflowTaskSeconds.p99} s; task run p50 ${result.temporal.workflowTaskRunSeconds.p50} s, p99 ${result.temporal.workflowTaskRunSeconds.p99} s`);
    log(`books agree: ${result.booksAgree}; written to ${path.relative(REPO_ROOT, file)}`);
    return result.booksAgree && result.targets.everyRequestMetered && result.targets.everyEventSettled ? 0 : 1;
  } finally {
    for (const c of children.reverse()) await c.stop();
    await connection?.close();
    await temporal?.stop();
    await db?.destroy();
    await dropDatabase(databaseUrl).catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[deduction] failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
