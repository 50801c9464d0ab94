/**
 * Losing a node (issue 24, part 4): the production topology (scripts/cluster: two
 * Temporal nodes over TLS on PostgreSQL, two gateways, two workers, the admin server)
 * under steady load through both gateways, with an invoice run going, loses Temporal
 * node 1, worker 1 and gateway 1 to SIGKILL at once, and gets them back. Afterwards:
 *
 *   - every request a client saw completed is metered once (one usage event per request id),
 *   - every event is settled once (its ledger entry equals its events' cost),
 *   - every balance equals its ledger, and reconciliation of the days and the period is clean,
 *   - the invoice run finished with gapless invoice numbers.
 *
 * Why node 1 with worker 1 and gateway 1: in this cluster they are the processes pointed
 * at node 1, so together they are "the host of node 1 died"; node 1 also initialized the
 * cluster. The survivors (gateway 2, worker 2) talk to node 2, which must take over node
 * 1's history shards and task queue partitions while load goes on.
 *
 * Only the model provider is a fake. Recovery times are printed (one JSON line starting
 * with {"faultTest":), never asserted; docs/operations.md#losing-a-node-what-the-fault-test-shows
 * holds the figures.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { ClusterHandle } from '../../scripts/cluster/cluster';
import { startTestCluster } from './helpers/testCluster';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { createDb, type Db } from '../../src/db/knex';
import { taxRates } from '../../src/invoicing/taxRates.service';
import { postEntry } from '../../src/ledger/ledger.data';
import { Money } from '../../src/shared/money.rules';
import { workflowIds } from '../../src/temporal/conventions';
import { invoiceRunStatusQuery, type InvoiceRunState } from '../../workflows/messages';
import { runCliJson } from '../helpers/cli';
import { eventually, StopWaiting, untilTrue } from '../helpers/eventually';
import { createCustomer, UPSTREAM_KEY, UPSTREAM_KEY_ENV, type Customer } from '../helpers/gateway';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { insertUsageEvents } from '../helpers/usageEvents';
import { completeRegisterEntry } from '../helpers/registerEntry';

/** Accounts with last month's usage for the invoice run: 30 prepaid, 10 postpaid. */
const INVOICE_ACCOUNTS = 40;
const PREPAID_INVOICE_ACCOUNTS = 30;
/** Accounts the load is spread over, and concurrent clients. */
const LOAD_ACCOUNTS = 4;
const CLIENTS = 4;
/** How long only the survivors serve, and how long load goes on after everything is back. */
const SURVIVORS_ONLY_MS = 8_000;
const AFTER_RECOVERY_MS = 4_000;

let cluster: ClusterHandle;
let upstream: FakeUpstream;
let db: Db;
let connection: Connection | undefined;
let unexpectedExit: string | undefined;
const load = { stop: false, done: Promise.resolve() as Promise<unknown> };

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  cluster = await startTestCluster('faults', 20200);
  // A process that dies without being killed by the test is a failure of its own.
  void cluster.unexpectedExit.then((e) => (unexpectedExit = `${e.name} exited (${e.signal ?? `code ${e.code}`})`));
  db = createDb({ databaseUrl: cluster.state.databaseUrl, poolMax: 3 });
  connection = await Connection.connect(cluster.temporalConnectOptions(2));
});

afterAll(async () => {
  load.stop = true;
  await load.done;
  await connection?.close();
  await db?.destroy();
  await cluster?.stop();
  await upstream?.close();
});

// ---------------------------------------------------------------------------
// Load: clients alternating between the gateways, every fourth request streamed.

interface Outcome {
  gateway: number;
  stream: boolean;
  /** HTTP 200 with the whole answer: the client saw it completed. */
  completed: boolean;
  requestId?: string;
  /** When the answer ended (or the attempt failed), ms since the epoch. */
  at: number;
  /** How an attempt without an HTTP answer failed: its gateway was down, or died during it. */
  failure?: 'refused' | 'cut';
}

async function request(gatewayUrl: string, customer: Customer, stream: boolean): Promise<Omit<Outcome, 'gateway' | 'stream' | 'at'>> {
  const res = await fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: customer.model, max_tokens: 16, stream, messages: [{ role: 'user', content: 'Hello cluster' }] }),
    signal: AbortSignal.timeout(30_000),
  });
  // Throws when the gateway dies mid-answer: not completed.
  const text = await res.text();
  const requestId = res.headers.get('x-request-id') ?? undefined;
  let completed = false;
  if (res.status === 200) {
    if (stream) completed = text.trimEnd().endsWith('data: [DONE]');
    else completed = ((JSON.parse(text) as { choices?: { message?: { content?: string } }[] }).choices?.[0]?.message?.content ?? '').includes('fake upstream');
  }
  return { completed, ...(requestId ? { requestId } : {}) };
}

function startLoad(gateways: string[], customers: Customer[], outcomes: Outcome[]): Promise<unknown> {
  const client = async (i: number) => {
    for (let n = 0; !load.stop; n++) {
      const gateway = (i + n) % gateways.length;
      const stream = n % 4 === 3;
      const customer = customers[(i + n) % customers.length]!;
      try {
        outcomes.push({ gateway, stream, ...(await request(gateways[gateway]!, customer, stream)), at: Date.now() });
      } catch (err) {
        // Refused or cut off: its gateway is down. A short pause keeps a dead gateway from spinning the loop.
        const refused = (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
        outcomes.push({ gateway, stream, completed: false, at: Date.now(), failure: refused ? 'refused' : 'cut' });
        await sleep(20);
      }
    }
  };
  return Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
}

// ---------------------------------------------------------------------------

/** The previous calendar month (UTC), YYYY-MM: its invoice run can start now (with --force inside the grace hours). */
function previousMonth(now = new Date()): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

/** Accounts with unsettled usage in `period`, as the gateways would have left it; returns their ids. */
async function invoiceAccounts(period: string, upstreamUrl: string): Promise<string[]> {
  const ops = accountsService({ db, clock: systemClock });
  await taxRates(db).set({ country: 'DE', rate: '0.19', effectiveFrom: '2020-01-01' });
  await ops.addProvider({ name: 'faults-invoiced', baseUrl: upstreamUrl, apiKeyEnv: UPSTREAM_KEY_ENV });
  const model = await ops.addModel({ name: 'faults-invoiced-model', provider: 'faults-invoiced', upstreamModel: 'fake-model', inputPerMtok: '2.5', outputPerMtok: '10', effectiveFrom: '2020-01-01T00:00:00Z' });
  const ids: string[] = [];
  for (let i = 0; i < INVOICE_ACCOUNTS; i++) {
    const prepaid = i < PREPAID_INVOICE_ACCOUNTS;
    const a = await ops.createAccount({ name: `Invoiced ${i}`, country: 'DE', plan: prepaid ? 'prepaid' : 'postpaid', billingEmail: `billing-${i}@example.com` });
    if (prepaid) {
      await postEntry(db, { accountId: a.id, kind: 'grant', contra: 'promotions', amount: new Money('50'), idempotencyKey: `faults-grant:${a.id}`, referenceType: 'test', referenceId: 'faults', actor: 'test' }, { overdraftAllowance: new Money(0) });
    }
    ids.push(a.id);
  }
  // 100,000 input tokens at 2.5 and 10,000 output at 10 per million: 0.35 each.
  const usage = (accountId: string, at: string) => ({ account_id: accountId, occurred_at: at, model: 'faults-invoiced-model', provider: 'faults-invoiced', price_id: model.price!.id, input_tokens: 100_000, output_tokens: 10_000, cost: '0.35' });
  await insertUsageEvents(db, ids.flatMap((id) => [usage(id, `${period}-10T10:00:00Z`), usage(id, `${period}-20T15:30:00Z`)]));
  return ids;
}

/**
 * `mixroute … --json` against the cluster. The cluster holds about 75 of PostgreSQL's
 * connection slots (100 by default), shared with whatever else runs on that server: a
 * command refused a slot ("too many clients") tries again; any other failure fails at once.
 */
function cli<T>(args: string[], env: Record<string, string>): Promise<T> {
  return eventually(
    () =>
      runCliJson<T>(args, env).catch((err: Error) => {
        if (/too many clients/.test(err.message)) throw err;
        throw new StopWaiting(err.message);
      }),
    { timeoutMs: 60_000, intervalMs: 1_000, message: `mixroute ${args.join(' ')}` },
  );
}

/** The `n` of a one-row count query. */
const count = async (q: PromiseLike<unknown>) => Number(((await q) as { n: string | number }[])[0]!.n);

describe('losing a Temporal node, a worker and a gateway under load', () => {
  it('meters and settles every completed request once, keeps balances equal to ledgers, and finishes the invoice run gapless', { timeout: 600_000 }, async () => {
    const { gateways, namespace } = cluster.state;
    const client = new Client({ connection: connection!, namespace });
    const gatewayUrls = gateways.map((g) => g.url);
    const customers: Customer[] = [];
    for (let i = 0; i < LOAD_ACCOUNTS; i++) customers.push(await createCustomer(db, upstream.url, { credit: '1000' }));
    const period = previousMonth();
    const invoiced = await invoiceAccounts(period, upstream.url);
    const cliEnv = { ...cluster.mixrouteEnv(2), DATABASE_POOL_MAX: '2', INVOICE_RUN_CONCURRENCY: '1', INVOICE_RUN_PAGE_SIZE: '1' };

    // Both gateways route every load account's model before the load is measured.
    for (const url of gatewayUrls) {
      for (const c of customers) {
        await untilTrue(async () => (await request(url, c, false)).completed, { timeoutMs: 30_000, message: `${url} to route ${c.model}` });
      }
    }

    // 1. Warm-up under load through both gateways.
    const outcomes: Outcome[] = [];
    const t0 = Date.now();
    load.done = startLoad(gatewayUrls, customers, outcomes);
    const servedBy = (g: number, after = 0) => outcomes.filter((o) => o.completed && o.gateway === g && o.at > after).length;
    await untilTrue(() => servedBy(0) >= 50 && servedBy(1) >= 50 && Date.now() - t0 >= 3_000, { timeoutMs: 60_000, message: 'warm-up: 50 requests through each gateway' });

    // 2. The invoice run of last month, one account per page: slow enough to be going when the faults hit.
    const runStartAt = Date.now();
    const run = await cli<{ workflowId: string }>(['invoice-run', 'start', '--period', period, '--force'], cliEnv);
    expect(run.workflowId).toBe(workflowIds.invoiceRun(period));
    const runHandle = client.workflow.getHandle(run.workflowId);
    // Under way, not just started: a few accounts invoiced, most still to do.
    const atKill = await untilTrue(
      async () => {
        const state = await runHandle.query(invoiceRunStatusQuery);
        return state.done >= 3 ? state : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, message: 'the invoice run to invoice its first accounts' },
    );
    expect((await runHandle.describe()).status.name).toBe('RUNNING');

    // 3. The host of node 1 dies: Temporal node 1, worker 1 and gateway 1, SIGKILL, together.
    const killedAt = Date.now();
    await Promise.all([cluster.kill('temporal', 0), cluster.kill('worker', 0), cluster.kill('gateway', 0)]);
    const survivorsFrom = Date.now();
    await sleep(SURVIVORS_ONLY_MS);
    const servedBySurvivor = servedBy(1, survivorsFrom);

    // 4. Back: the node first (worker 1 and gateway 1 connect to it), then the two processes.
    const nodeRestartAt = Date.now();
    await cluster.restart('temporal', 0);
    const nodeReadyAt = Date.now();
    const appsRestartAt = Date.now();
    const [workerReadyAt, gatewayReadyAt] = await Promise.all([
      cluster.restart('worker', 0).then(() => Date.now()),
      cluster.restart('gateway', 0).then(() => Date.now()),
    ]);
    await untilTrue(() => servedBy(0, appsRestartAt) >= 20, { timeoutMs: 60_000, message: 'the restarted gateway 1 to serve 20 requests' });
    await sleep(AFTER_RECOVERY_MS);
    load.stop = true;
    await load.done;
    const loadStoppedAt = Date.now();

    // 5. Everything the clients saw completed reaches usage_events, and everything settles.
    const completed = outcomes.filter((o) => o.completed).map((o) => o.requestId!);
    expect(new Set(completed).size).toBe(completed.length);
    expect(completed.every(Boolean)).toBe(true);
    const metered = () => count(db('usage_events').whereRaw('request_id = ANY(?::text[])', [completed]).countDistinct('request_id as n'));
    await untilTrue(async () => (await metered()) === completed.length, { timeoutMs: 120_000, message: 'every completed request to be metered' });
    await untilTrue(async () => (await count(db('usage_events').whereNull('settled_at').count('* as n'))) === 0, { timeoutMs: 180_000, message: 'every usage event to be settled' });
    await untilTrue(async () => (await runHandle.describe()).status.name === 'COMPLETED', { timeoutMs: 180_000, intervalMs: 500, message: 'the invoice run to complete' });
    const runClosedAt = (await runHandle.describe()).closeTime?.getTime() ?? Date.now();
    const runState = (await runHandle.result()) as InvoiceRunState;

    // Metered once: exactly one event per completed request id, and no request id twice anywhere.
    const perRequest = await db('usage_events').whereRaw('request_id = ANY(?::text[])', [completed]).groupBy('request_id').havingRaw('count(*) <> 1').select('request_id');
    expect(perRequest).toEqual([]);
    expect(await db('usage_events').groupBy('request_id').havingRaw('count(*) > 1').select('request_id')).toEqual([]);

    // Settled once: every settlement batch (key, account) has its one ledger entry of minus its events' cost
    // (none when free), and no usage entry lacks its events.
    const badBatches = await db.raw(`
      WITH batch AS (SELECT settlement_key, account_id, sum(cost) AS cost FROM usage_events GROUP BY 1, 2)
      SELECT b.settlement_key, b.account_id, b.cost, l.amount, l.account_id AS entry_account
        FROM batch b LEFT JOIN ledger_entries l ON l.idempotency_key = b.settlement_key
       WHERE b.settlement_key IS NULL
          OR (b.cost > 0 AND (l.id IS NULL OR l.amount <> -b.cost OR l.account_id <> b.account_id))
          OR (b.cost = 0 AND l.id IS NOT NULL)`);
    expect(badBatches.rows).toEqual([]);
    const orphanEntries = await db.raw(`
      SELECT l.id, l.idempotency_key FROM ledger_entries l
       WHERE l.kind = 'usage' AND NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.settlement_key = l.idempotency_key)`);
    expect(orphanEntries.rows).toEqual([]);
    // Per account: the usage entries add up to the events' cost.
    const perAccount = await db.raw(`
      WITH ev AS (SELECT account_id, sum(cost) AS cost FROM usage_events GROUP BY 1),
           le AS (SELECT account_id, -sum(amount) AS charged FROM ledger_entries WHERE kind = 'usage' GROUP BY 1)
      SELECT ev.account_id, ev.cost, le.charged FROM ev FULL JOIN le USING (account_id)
       WHERE COALESCE(ev.cost, 0) <> COALESCE(le.charged, 0)`);
    expect(perAccount.rows).toEqual([]);

    // Balances equal their ledgers.
    const balances = await db.raw(`
      WITH le AS (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY 1)
      SELECT account_id, b.balance, le.total FROM account_balances b FULL JOIN le USING (account_id)
       WHERE COALESCE(b.balance, 0) <> COALESCE(le.total, 0)`);
    expect(balances.rows).toEqual([]);

    // Reconciliation agrees: every day with load, and the invoiced period (its usage and invoices).
    // Its register check reports providers that carried traffic without a complete entry: give each one.
    for (const { name } of await db('providers as p').leftJoin('recipients as r', 'r.provider_id', 'p.id').whereNull('r.id').select('p.name')) await completeRegisterEntry(db, name);
    const days = (await db('usage_events').whereRaw('request_id = ANY(?::text[])', [completed]).distinct(db.raw(`to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day`))).map((r: { day: string }) => r.day);
    const reports: { label: string; scope: string; verdict: string }[] = [];
    for (const window of [...days.map((d) => ['--day', d]), ['--period', period]]) {
      const report = await cli<{ label: string; scope: string; verdict: string; discrepancies: unknown[] }>(['reconcile', ...window], cliEnv);
      expect({ window: window.join(' '), discrepancies: report.discrepancies }).toEqual({ window: window.join(' '), discrepancies: [] });
      expect(report.verdict).toBe('clean');
      reports.push(report);
    }

    // The invoice run: every account invoiced once, numbers 1..N in each series, no gap, no duplicate.
    expect(runState).toMatchObject({ status: 'completed', failed: 0, invoiced: INVOICE_ACCOUNTS });
    const invoices = await db('invoices').where({ period, kind: 'invoice' }).select('account_id', 'series', 'number');
    expect(invoices.map((i: { account_id: string }) => i.account_id).sort()).toEqual([...invoiced].sort());
    const bySeries = new Map<string, number[]>();
    for (const i of await db('invoices').whereNotNull('number').select('series', 'number')) {
      bySeries.set(i.series, [...(bySeries.get(i.series) ?? []), Number(String(i.number).slice(i.series.length + 1))]);
    }
    for (const [series, numbers] of bySeries) {
      numbers.sort((a, b) => a - b);
      expect({ series, numbers }).toEqual({ series, numbers: numbers.map((_, i) => i + 1) });
    }

    // No process died that the test did not kill.
    expect(unexpectedExit).toBeUndefined();

    // Figures (reported, never asserted).
    const settledTimes = (await db('usage_events').whereNotNull('settled_at').where('settled_at', '>=', new Date(killedAt - 2_000)).where('settled_at', '<=', new Date(loadStoppedAt)).orderBy('settled_at').pluck('settled_at')).map((d: Date) => d.getTime());
    let stall = 0;
    for (let i = 1; i < settledTimes.length; i++) stall = Math.max(stall, settledTimes[i]! - settledTimes[i - 1]!);
    const firstSettledAfter = async (t: number) => {
      const row = await db('usage_events').where('settled_at', '>', new Date(t)).min('settled_at as at').first();
      return row?.at ? new Date(row.at).getTime() - t : null;
    };
    const lag = await db('usage_events').whereRaw('request_id = ANY(?::text[])', [completed]).select(db.raw('max(extract(epoch FROM settled_at - finished_at)) * 1000 AS max_ms')).first();
    const firstServed = outcomes.filter((o) => o.completed && o.gateway === 0 && o.at > appsRestartAt).map((o) => o.at)[0];
    const figures = {
      faultTest: {
        date: new Date().toISOString(),
        machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? 'unknown CPU'}`,
        killed: ['temporal node 1', 'worker 1', 'gateway 1'],
        requests: {
          sent: outcomes.length,
          completed: completed.length,
          failed: outcomes.length - completed.length,
          refusedByDownGateway: outcomes.filter((o) => o.failure === 'refused').length,
          cutByKill: outcomes.filter((o) => o.failure === 'cut').length,
          answeredNotCompleted: outcomes.filter((o) => !o.completed && !o.failure).length,
          streamedCompleted: outcomes.filter((o) => o.completed && o.stream).length,
          completedByGateway: [servedBy(0), servedBy(1)],
          completedBySurvivorWhileDown: servedBySurvivor,
          loadSeconds: Math.round((loadStoppedAt - t0) / 100) / 10,
        },
        usageEvents: await count(db('usage_events').count('* as n')),
        usageEventsOfLoad: await count(db('usage_events').whereNot('gateway_instance', 'test').count('* as n')),
        settled: await count(db('usage_events').whereNotNull('settled_at').count('* as n')),
        settlementBatches: await count(db('usage_events').countDistinct('settlement_key as n')),
        usageLedgerEntries: await count(db('ledger_entries').where({ kind: 'usage' }).count('* as n')),
        reconciliation: reports.map((r) => `${r.scope} ${r.label}: ${r.verdict}`),
        invoiceRun: { accounts: INVOICE_ACCOUNTS, invoiced: runState.invoiced, failed: runState.failed, doneAtKill: atKill.done, startToKillMs: killedAt - runStartAt, startToCompletedMs: runClosedAt - runStartAt, issued: invoices.length, series: Object.fromEntries([...bySeries].map(([s, n]) => [s, `1..${n.length}`])) },
        recoveryMs: {
          temporalNodeRestartToReady: nodeReadyAt - nodeRestartAt,
          workerRestartToPolling: workerReadyAt - appsRestartAt,
          gatewayRestartToReady: gatewayReadyAt - appsRestartAt,
          gatewayRestartToFirstServed: firstServed ? firstServed - appsRestartAt : null,
          killToFirstSettlement: await firstSettledAfter(killedAt),
          nodeRestartToFirstSettlement: await firstSettledAfter(nodeRestartAt),
          longestSettlementPauseUnderLoad: stall,
          longestRequestToSettlement: Math.round(Number(lag?.max_ms ?? 0)),
          killToInvoiceRunCompleted: runClosedAt - killedAt,
        },
      },
    };
    console.log(JSON.stringify(figures));
  });
});
