/**
 * Invoice runs at scale: seed N accounts (1,000 and 10,000) with a month of
 * hourly usage over three models, run the period, and report invoices per
 * second and the worker's peak memory (VmHWM). Target: 10,000 invoices in
 * under 5 minutes on this machine, and time growing no faster than linearly.
 *
 *   npm run bench -- invoices        (BENCH_QUICK=1: 200 and 1,000 accounts;
 *                                     BENCH_INVOICE_ACCOUNTS=1000,10000: those sizes)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { systemClock } from '../src/clock';
import { dropDatabase, ensureDatabase } from '../src/db/database';
import { createDb, type Db } from '../src/db/knex';
import { migrateLatest } from '../src/db/migrate';
import { accountsService } from '../src/accounts/accounts.service';
import { findTemporalCli, startDevServer, type DevServer } from '../src/temporal/devServer';
import { workflowIds } from '../src/temporal/conventions';
import { freePort } from '../src/util/ports';
import type { InvoiceRunState } from '../workflows/messages';
import { cleanEnv, REPO_ROOT, round, sleep, spawnNode, type Child, benchResultsFile } from './lib';

const QUICK = process.env.BENCH_QUICK === '1';
// BENCH_INVOICE_ACCOUNTS=1000 (or 1000,10000) runs chosen sizes: a 10,000-account run alone takes half an hour here.
const SIZES = process.env.BENCH_INVOICE_ACCOUNTS ? process.env.BENCH_INVOICE_ACCOUNTS.split(',').map((n) => Number(n.trim())) : QUICK ? [200, 1_000] : [1_000, 10_000];
const PERIOD = '2026-09';
const HOURS = 30 * 24;
const MODELS = 3;
const RESULTS_FILE = benchResultsFile('invoices.json');
const log = (line: string) => process.stdout.write(`[invoices] ${line}\n`);


function peakRssMiB(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? round(Number(m[1]) / 1024, 1) : null;
  } catch {
    return null;
  }
}

async function seed(db: Db, accounts: number, tag: string): Promise<void> {
  const ops = accountsService({ db, clock: systemClock });
  const provider = `bench-${tag}`;
  await ops.addProvider({ name: provider, baseUrl: 'http://127.0.0.1:9/v1' });
  const priceIds: string[] = [];
  for (let m = 0; m < MODELS; m++) {
    const r = await ops.addModel({ name: `bench-${tag}-m${m}`, provider, upstreamModel: `m${m}`, inputPerMtok: ['0.15', '2.5', '0.4'][m]!, cachedInputPerMtok: ['0.075', '1.25', null][m] ?? undefined, outputPerMtok: ['0.6', '10', '1.6'][m]!, effectiveFrom: '2020-01-01T00:00:00Z' } as never);
    priceIds.push((r as { price: { id: string } }).price.id);
  }
  await db.raw(`INSERT INTO tax_rates (country, rate, effective_from) VALUES ('DE', 0.19, '2020-01-01') ON CONFLICT DO NOTHING`);
  await db.raw(
    `INSERT INTO accounts (name, country, plan) SELECT 'Bench ' || ? || ' ' || g, 'DE', 'postpaid' FROM generate_series(1, ?) g`,
    [tag, accounts],
  );
  // A month of hourly usage per account and model, already settled (as the metering workflow leaves it).
  await db.raw(
    `INSERT INTO usage_hourly (account_id, hour, model, provider, price_id, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost)
     SELECT a.id, ?::timestamptz + (h || ' hours')::interval, 'bench-' || ? || '-m' || m, ?, (?::text[])[m + 1],
            3, 1500 + (h % 17) * 10, 200, 0, 400 + (h % 5), 0, 0.0005
       FROM accounts a, generate_series(0, ? - 1) h, generate_series(0, ? - 1) m
      WHERE a.name LIKE 'Bench ' || ? || ' %'`,
    [`${PERIOD}-01T00:00:00Z`, tag, provider, priceIds, HOURS, MODELS, tag],
  );
}

/** What is running now, so Ctrl-C can clean it up instead of leaving a dev server and a database behind. */
const live: { children: Child[]; temporal?: DevServer; databaseUrl?: string } = { children: [] };
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void (async () => {
      for (const c of live.children) await c.stop(5_000);
      await live.temporal?.stop();
      if (live.databaseUrl) await dropDatabase(live.databaseUrl).catch(() => undefined);
      process.exit(130);
    })();
  });
}

async function main(): Promise<number> {
  const results: Record<string, unknown>[] = [];
  for (const size of SIZES) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-invoices-'));
    const u = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    u.pathname = `/mixroute_bench_invoices_${Date.now()}`;
    const databaseUrl = u.toString();
    const children: Child[] = [];
    let db: Db | undefined;
    let temporal: DevServer | undefined;
    let connection: Connection | undefined;
    live.children = children;
    live.databaseUrl = databaseUrl;
    try {
      await ensureDatabase(databaseUrl);
      db = createDb({ databaseUrl, poolMax: 2 });
      await migrateLatest(db);
      const tag = randomUUID().slice(0, 6);
      const t0 = performance.now();
      await seed(db, size, tag);
      const rows = Number((await db('usage_hourly').count('* as n').first())!.n);
      log(`${size} accounts: seeded ${rows} usage_hourly rows in ${round((performance.now() - t0) / 1000, 1)} s`);

      temporal = await startDevServer({ cliPath: findTemporalCli(undefined), port: await freePort(), logFile: path.join(tmp, 'temporal.log') });
      live.temporal = temporal;
      const env = { ...cleanEnv(), DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_TASK_QUEUE: `bench-${tag}`, LOG_LEVEL: 'warn', DATABASE_POOL_MAX: '20', ...(process.env.BENCH_INVOICE_CONCURRENCY ? { INVOICE_RUN_CONCURRENCY: process.env.BENCH_INVOICE_CONCURRENCY } : {}) };
      const worker = spawnNode('worker', ['bin/mixroute.js', 'worker'], env);
      children.push(worker);
      connection = await Connection.connect({ address: temporal.address });
      const client = new Client({ connection });
      const started = performance.now();
      const handle = await client.workflow.start('invoiceRun', {
        taskQueue: `bench-${tag}`,
        workflowId: workflowIds.invoiceRun(PERIOD),
        args: [{ period: PERIOD, dryRun: false, concurrency: 20, pageSize: 200 }],
      });
      const state = (await handle.result()) as InvoiceRunState;
      const seconds = (performance.now() - started) / 1000;
      const peak = peakRssMiB(worker.proc.pid);
      const invoices = Number((await db('invoices').count('* as n').first())!.n);
      const numbers = (await db('invoices').pluck('number')).map((n: string) => Number(n.split('-').at(-1))).sort((a, b) => a - b);
      const gapless = numbers.every((n, i) => n === i + 1);
      const r = {
        accounts: size,
        usageHourlyRows: rows,
        seconds: round(seconds, 1),
        invoicesPerSecond: round(invoices / seconds, 1),
        invoices,
        runStatus: state.status,
        failed: state.failed,
        gaplessNumbers: gapless,
        workerPeakRssMiB: peak,
      };
      results.push(r);
      log(`${size} accounts: ${invoices} invoices in ${r.seconds} s (${r.invoicesPerSecond}/s), worker peak RSS ${peak} MiB, numbers gapless: ${gapless}`);
    } finally {
      await connection?.close();
      for (const c of children.reverse()) await c.stop();
      await temporal?.stop();
      await db?.destroy();
      await dropDatabase(databaseUrl).catch(() => undefined);
      fs.rmSync(tmp, { recursive: true, force: true });
      await sleep(500);
    }
  }
  const [small, big] = results as { accounts: number; seconds: number; invoices: number }[];
  const growth = small && big ? round(big.seconds / small.seconds / (big.accounts / small.accounts), 2) : null;
  const largest = results.at(-1) as { accounts: number; seconds: number } | undefined;
  const out = {
    benchmark: 'invoices',
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version },
    setup: { period: PERIOD, hoursOfUsage: HOURS, models: MODELS, concurrency: 20, pageSize: 200, quick: QUICK },
    runs: results,
    timeGrowthVsLinear: growth,
    targets: {
      tenThousandUnderFiveMinutes: largest && largest.accounts === 10_000 ? largest.seconds < 300 : null,
      noWorseThanLinear: growth === null ? null : growth <= 1.1,
    },
  };
  fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  fs.writeFileSync(RESULTS_FILE, `${JSON.stringify(out, null, 2)}\n`);
  log(`time growth relative to linear: ${growth} (1.0 = linear); written to ${path.relative(REPO_ROOT, RESULTS_FILE)}`);
  return results.every((r) => (r as { gaplessNumbers: boolean }).gaplessNumbers) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[invoices] failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
