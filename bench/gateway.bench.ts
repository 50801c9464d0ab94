/**
 * Gateway benchmark: what the gateway (authentication, rate limit, validation,
 * routing, forwarding, metering) costs on top of the provider's own time.
 *
 * Three targets, each for a small JSON completion and a 50-chunk SSE stream:
 *   direct   load generator -> mock upstream
 *   proxy    load generator -> bare node:http proxy -> mock (the floor for any Node proxy)
 *   gateway  load generator -> `mixroute gateway` (fresh database, own Temporal dev server) -> mock
 * The mock, the proxy and the gateway are child processes; the load generator
 * (autocannon, and a paced generator for steady rates) runs in this process.
 *
 * Runs:
 *   1. sequential: 1 connection, 300 warm-up then 2,000 requests: p50/p99 per target;
 *      overhead = target p50 - direct p50
 *   2. 1,000 req/s on the gateway (~10 s): p99 of `gateway_overhead_seconds` for that
 *      run only (bucket counts minus those scraped just before), by bucket upper bound.
 *      Once with autocannon `overallRate`, once with the paced generator (see below).
 *   1b. Anthropic's Messages API, sequential like 1: /v1/messages passthrough (to the
 *      mock's /v1/messages) and translated (to its /v1/chat/completions); their overhead
 *      as a ratio of the chat passthrough overhead of run 1 (targets 1.2 and 1.5)
 *   3. max throughput: 50 connections, ~10 s per target: requests/s; gateway / proxy
 *   Then every request the gateway completed must be exactly one row in usage_events.
 *
 * Gateway runs are bounded by request count, not by time, so that no request is
 * cut off at the end of a run (a cut-off request is metered as 499, which would
 * blur the metering check).
 *
 * `npm run bench -- gateway`; `BENCH_CPU_PROF=1 npm run bench -- gateway` (or
 * `node --import tsx bench/gateway.bench.ts --cpu-prof`) also profiles the gateway
 * and prints its top self-time functions. `BENCH_QUICK=1` shrinks every run (smoke test).
 * Writes .data/bench/gateway.json (not on a profiled run: the profiler skews
 * the figures). Exit code: 0 even when a performance target is missed; 1 when the
 * metering check fails or anything crashes.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Money } from '../src/shared/money.rules';
import { systemClock } from '../src/clock';
import { dropDatabase, ensureDatabase } from '../src/db/database';
import { createDb, type Db } from '../src/db/knex';
import { postEntry } from '../src/ledger/ledger.data';
import { migrateLatest } from '../src/db/migrate';

/**
 * The bench account limited to the EEA (its providers process in DE) and under a
 * data-processing agreement with `held` other providers held back by pending
 * notices: the cached caller then carries a hold set that large.
 */
async function callerPolicy(db: Db, accountId: string, served: string[], held: number): Promise<void> {
  await db.raw(`INSERT INTO recipients (name, kind, provider_id, role, countries)
                SELECT 'recipient ' || name, 'model_provider', id, 'sub_processor', ARRAY['DE'] FROM providers WHERE name = ANY(?)`, [served]);
  await db('account_region_policies').insert({ account_id: accountId, allowed_countries: ['DE', 'FR', 'IE'], label: 'EEA' });
  await db('account_processing_agreements').insert({ account_id: accountId, agreement_ref: 'DPA-bench', signed_on: '2026-01-01', set_by: 'bench', reason: 'benchmark' });
  await db.raw(
    `WITH p AS (INSERT INTO providers (name, base_url, api_key_env) SELECT 'held-' || g, 'http://127.0.0.1:9/v1', 'PROVIDER_HELD_API_KEY' FROM generate_series(1, ?) g RETURNING id, name),
          r AS (INSERT INTO recipients (name, kind, provider_id, role, countries) SELECT 'recipient ' || name, 'model_provider', id, 'sub_processor', ARRAY['DE'] FROM p RETURNING id),
          c AS (INSERT INTO register_changes (entity_type, entity_id, action, actor, reason) SELECT 'recipient', id, 'created', 'bench', 'benchmark' FROM r RETURNING id, entity_id),
          s AS (INSERT INTO subprocessor_changes (register_change_id, recipient_id, kind, countries, notice_period_ms, announced_at, effective_at)
                SELECT id, entity_id, 'recipient_added', ARRAY['DE'], 86400000, now(), now() + interval '1 day' FROM c RETURNING id)
     INSERT INTO subprocessor_notices (change_id, account_id) SELECT id, ? FROM s`,
    [held, accountId],
  );
}
import { accountsService } from '../src/accounts/accounts.service';
import { findTemporalCli, startDevServer, type DevServer } from '../src/temporal/devServer';
import { freePort } from '../src/util/ports';
import {
  cannon,
  fmt,
  gaugeValue,
  histogramBuckets,
  histogramDeltaPercentile,
  mainThreadCpuProfile,
  paced,
  REPO_ROOT,
  processCpuSeconds,
  round,
  seriesByLabel,
  spawnNode,
  stopCurrentRun,
  summarizeCpuProfile,
  table,
  waitForHttpOk,
  waitForReadyMessage,
  type Child,
  type PacedResult,
  type ProfileSummary,
  type RequestSpec,
  type RunResult,
  cleanEnv,
  intEnv,
  benchResultsFile,
} from './lib';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, MOCK_STREAM_CHUNKS } from './mockUpstream';

const CPU_PROF = process.argv.includes('--cpu-prof') || process.env.BENCH_CPU_PROF === '1';
const QUICK = process.env.BENCH_QUICK === '1';

/**
 * Sequential warm-up requests per target and case (`BENCH_SEQ_WARMUP`). The
 * gateway runs far more JavaScript per request than the bare proxy, and V8
 * takes thousands of requests to optimize it: after 300 the gateway still spent
 * twice the CPU per sequential request it spends after 5,000 (1,320 against
 * 685 us here), so a short warm-up measured the JIT, not the gateway.
 */
const SEQ_WARMUP = intEnv('BENCH_SEQ_WARMUP', QUICK ? 50 : 5_000, 0);
/** Measured sequential requests per target and case (`BENCH_SEQ_REQUESTS`; a large count makes a profile mostly sequential). */
const SEQ_AMOUNT = intEnv('BENCH_SEQ_REQUESTS', QUICK ? 200 : 2_000, 1);
const LOAD_CONNECTIONS = 50;
const LOAD_SECONDS = QUICK ? 2 : 10;
/** Gateway max-throughput runs: a probe of this many requests sizes the measured run to ~LOAD_SECONDS. */
const GATEWAY_PROBE = QUICK ? 500 : 2_000;
const RATE = 1_000;
const RATE_SECONDS = QUICK ? 2 : 10;
/**
 * autocannon's overallRate is not a steady pace: each connection sends its share
 * (rate / connections) back to back at the top of every second, then waits. Few
 * connections keep those bursts shallow; the paced generator gives the steady figure.
 */
const RATE_CANNON_CONNECTIONS = 8;
const RATE_PACED_CONNECTIONS = 64;
const METERING_DRAIN_MS = 30_000;
/** prom-client's default eventLoopMonitoringPrecision: its delay figures include this interval. */
const EVENT_LOOP_RESOLUTION_MS = 10;
const GATEWAY_HISTOGRAMS = ['gateway_overhead_seconds', 'gateway_request_duration_seconds', 'gateway_upstream_duration_seconds'] as const;

const TARGETS = { sequentialOverheadFactor: 2, overheadP99Ms: 2, throughputRatio: 0.3, messagesPassthroughRatio: 1.2, messagesTranslatedRatio: 1.5 } as const;

const UPSTREAM_KEY_ENV = 'PROVIDER_BENCH_UPSTREAM_API_KEY';
const BENCH_CREDIT_USD = '10000';
const RESULTS_FILE = benchResultsFile('gateway.json');

type CaseName = 'json' | 'sse';
type TargetName = 'direct' | 'proxy' | 'gateway';
/** `BENCH_CASES=json` (or `sse`) runs one case only, for profiling it alone. */
const CASES: CaseName[] = (process.env.BENCH_CASES?.split(',') as CaseName[] | undefined)?.filter((c) => c === 'json' || c === 'sse') ?? ['json', 'sse'];
const TARGET_NAMES: TargetName[] = ['direct', 'proxy', 'gateway'];

let interrupted = false;
function checkInterrupted(): void {
  if (interrupted) throw new Error('interrupted');
}

function log(message: string): void {
  console.log(`[bench] ${message}`);
}

function benchDatabaseUrl(): string {
  const u = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  u.pathname = `/mixroute_bench_${Date.now()}_${process.pid}`;
  return u.toString();
}


async function scrape(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}`);
  return r.text();
}

interface UsageCounts {
  total: number;
  ok: number;
  estimated: number;
  wrongTokens: number;
}

async function usageCounts(db: Db, accountId: string): Promise<UsageCounts> {
  const row = (await db('usage_events')
    .where('account_id', accountId)
    .first(
      db.raw('count(*)::int AS total'),
      db.raw('(count(*) FILTER (WHERE status_code BETWEEN 200 AND 299))::int AS ok'),
      db.raw('(count(*) FILTER (WHERE usage_estimated))::int AS estimated'),
      db.raw('(count(*) FILTER (WHERE input_tokens <> ? OR output_tokens <> ?))::int AS wrong_tokens', [MOCK_PROMPT_TOKENS, MOCK_COMPLETION_TOKENS]),
    )) as { total: number; ok: number; estimated: number; wrong_tokens: number };
  return { total: row.total, ok: row.ok, estimated: row.estimated, wrongTokens: row.wrong_tokens };
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-bench-'));
  const profDir = CPU_PROF ? fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-bench-cpuprof-')) : undefined;
  const databaseUrl = benchDatabaseUrl();
  const children: Child[] = [];
  let db: Db | undefined;
  let dbCreated = false;
  let temporal: DevServer | undefined;
  let gateway: Child | undefined;
  let exitCode = 0;

  try {
    // ---------------------------------------------------------------- set-up
    const loadAtStart = os.loadavg();
    if (loadAtStart[0]! > os.cpus().length / 2) log(`WARNING: 1-minute load average is ${fmt(loadAtStart[0]!, 2)} on ${os.cpus().length} CPUs: other work on this machine will skew the figures`);
    log(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}${QUICK ? ' [QUICK]' : ''}${CPU_PROF ? ' [CPU profile]' : ''}`);
    dbCreated = await ensureDatabase(databaseUrl);
    db = createDb({ databaseUrl, poolMax: 2, applicationName: 'mixroute-bench' });
    await migrateLatest(db);
    log(`database ${new URL(databaseUrl).pathname.slice(1)} created and migrated`);

    const temporalPort = await freePort();
    temporal = await startDevServer({ cliPath: findTemporalCli(undefined), port: temporalPort, logFile: path.join(tmp, 'temporal.log') });
    log(`Temporal dev server at ${temporal.address} (headless, in memory)`);

    const mock = spawnNode('mock upstream', ['--import', 'tsx', 'bench/mockUpstream.ts'], cleanEnv());
    children.push(mock);
    const mockPort = await waitForReadyMessage(mock);
    const mockUrl = `http://127.0.0.1:${mockPort}`;

    const proxy = spawnNode('bare proxy', ['--import', 'tsx', 'bench/bareProxy.ts'], { ...cleanEnv(), UPSTREAM_URL: mockUrl });
    children.push(proxy);
    const proxyPort = await waitForReadyMessage(proxy);
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;
    log(`mock upstream ${mockUrl}, bare proxy ${proxyUrl}`);

    const ops = accountsService({ db, clock: systemClock });
    const tag = randomUUID().slice(0, 8);
    const provider = `bench-${tag}`;
    await ops.addProvider({ name: provider, baseUrl: `${mockUrl}/v1`, apiKeyEnv: UPSTREAM_KEY_ENV });
    const model = `bench-model-${tag}`;
    await ops.addModel({ name: model, provider, upstreamModel: 'bench-model', inputPerMtok: '2.5', cachedInputPerMtok: '1.25', outputPerMtok: '10', effectiveFrom: '2020-01-01T00:00:00Z' });
    // Anthropic's Messages API (issue 21): a model of an Anthropic-kind provider on the same mock.
    const anthropicProvider = `bench-anthropic-${tag}`;
    await ops.addProvider({ name: anthropicProvider, baseUrl: `${mockUrl}/v1`, apiKeyEnv: UPSTREAM_KEY_ENV, kind: 'anthropic' });
    const claudeModel = `bench-claude-${tag}`;
    await ops.addModel({ name: claudeModel, provider: anthropicProvider, upstreamModel: 'bench-model', inputPerMtok: '2.5', cachedInputPerMtok: '1.25', outputPerMtok: '10', effectiveFrom: '2020-01-01T00:00:00Z' });
    const account = await ops.createAccount({ name: `Bench ${tag}` });
    // Prepaid credit for the balance gate (as test/helpers/gateway.ts grants it): ~$0.0001 a request, so plenty.
    await postEntry(
      db,
      { accountId: account.id, kind: 'grant', contra: 'promotions', amount: new Money(BENCH_CREDIT_USD), idempotencyKey: `bench-grant:${account.id}`, referenceType: 'bench', referenceId: tag, actor: 'bench' },
      { overdraftAllowance: new Money(0) },
    );
    const user = await ops.createUser({ accountId: account.id, name: `Bench ${tag}`, email: `bench-${tag}@example.com` });
    // 1,000,000 is the largest limit the key schema accepts: a 1M-request burst, refilled at ~16.7k/s.
    const key = await ops.createKey({ accountId: account.id, userId: user.id, name: 'bench', rateLimitRpm: 1_000_000 });
    // BENCH_KEY_SPEND_LIMIT: the key gets a daily spend limit this large, so the balance gate checks it (issue 22).
    if (process.env.BENCH_KEY_SPEND_LIMIT) await db('api_keys').where({ id: key.id }).update({ spend_limit: process.env.BENCH_KEY_SPEND_LIMIT, limit_window: 'daily' });
    // BENCH_CALLER_POLICY=1 (issue 25): the account has an EEA region policy and a data-processing agreement
    // with BENCH_HELD_PROVIDERS (default 1,000) other providers held back from it, so every request runs
    // both route filters against a large hold set; compare with a run without it.
    if (process.env.BENCH_CALLER_POLICY === '1') await callerPolicy(db, account.id, [provider, anthropicProvider], Number(process.env.BENCH_HELD_PROVIDERS ?? 1000));

    const gatewayPort = await freePort();
    const metricsPort = await freePort();
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    gateway = spawnNode('gateway', [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), 'bin/mixroute.js', 'gateway'], {
      ...cleanEnv(),
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: `bench-${tag}`,
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_METRICS_PORT: String(metricsPort),
      UPSTREAM_ALLOWED_HOSTS: '127.0.0.1',
      DATA_DIR: path.join(tmp, 'data'),
      LOG_LEVEL: 'warn',
      [UPSTREAM_KEY_ENV]: 'sk-bench-upstream',
    });
    children.push(gateway);
    await waitForHttpOk(gateway, `${gatewayUrl}/readyz`);
    log(`gateway ${gatewayUrl} ready (model ${model})`);

    // ---------------------------------------------------------------- requests
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key.key}` };
    const messages = [{ role: 'user', content: 'Say hello in one short sentence.' }];
    const bodies: Record<CaseName, string> = {
      json: JSON.stringify({ model, messages, max_tokens: 16 }),
      sse: JSON.stringify({ model, messages, max_tokens: 16, stream: true, stream_options: { include_usage: true } }),
    };
    const spec = (target: TargetName, c: CaseName): RequestSpec => ({
      url: `${target === 'direct' ? mockUrl : target === 'proxy' ? proxyUrl : gatewayUrl}/v1/chat/completions`,
      headers,
      body: bodies[c],
    });

    /**
     * The CPU time the target's own process spent per completed request (the mock's
     * for direct). Unlike requests per second it barely moves when other work shares
     * the cores, so it shows whether a change made the gateway cheaper.
     */
    const pidOf: Record<TargetName, number | undefined> = { direct: mock.proc.pid, proxy: proxy.proc.pid, gateway: gateway.proc.pid };
    const withCpu = async (t: TargetName, run: () => Promise<RunResult>): Promise<RunResult> => {
      const before = processCpuSeconds(pidOf[t]);
      const r = await run();
      const after = processCpuSeconds(pidOf[t]);
      return before === null || after === null || r.completed === 0 ? r : { ...r, cpuUsPerRequest: round(((after - before) * 1e6) / r.completed, 1) };
    };

    // Sanity: every target answers each case as expected before anything is measured.
    for (const c of CASES) {
      for (const t of TARGET_NAMES) {
        const s = spec(t, c);
        const r = await fetch(s.url, { method: 'POST', headers: s.headers, body: s.body, signal: AbortSignal.timeout(10_000) });
        const text = await r.text();
        const ok = c === 'json' ? r.ok && JSON.parse(text).usage?.completion_tokens === MOCK_COMPLETION_TOKENS : r.ok && text.split('chat.completion.chunk').length - 1 === MOCK_STREAM_CHUNKS + 1 && text.endsWith('data: [DONE]\n\n');
        if (!ok) throw new Error(`${t} ${c}: unexpected answer ${r.status}: ${text.slice(0, 300)}`);
      }
    }
    // The sanity requests above went through the gateway too.
    const gatewayCounts = { completed: CASES.length, failed: 0 };
    const countGateway = (t: TargetName, r: RunResult) => {
      if (t !== 'gateway') return;
      gatewayCounts.completed += r.completed;
      gatewayCounts.failed += r.non2xx + r.errors;
    };
    const runs: Record<string, unknown>[] = [];
    const record = (phase: string, target: TargetName, c: CaseName, r: RunResult) => {
      countGateway(target, r);
      runs.push({ phase, target, case: c, ...r });
      const bad = r.non2xx + r.errors ? `  non-2xx ${r.non2xx}, errors ${r.errors}` : '';
      const cpu = r.cpuUsPerRequest === undefined ? '' : `  CPU ${fmt(r.cpuUsPerRequest, 1)} us/req`;
      log(`${phase.padEnd(18)} ${target.padEnd(7)} ${c.padEnd(4)} ${String(r.completed).padStart(6)} ok in ${fmt(r.durationS, 2).padStart(5)} s = ${fmt(r.rps).padStart(8)} req/s  p50 ${fmt(r.latency.p50Ms)} ms  p99 ${fmt(r.latency.p99Ms)} ms${cpu}${bad}`);
      return r;
    };

    // 1. sequential
    const sequential = {} as Record<CaseName, Record<TargetName, RunResult>>;
    for (const c of CASES) {
      sequential[c] = {} as Record<TargetName, RunResult>;
      for (const t of TARGET_NAMES) {
        checkInterrupted();
        record('seq warm-up', t, c, await cannon(spec(t, c), { connections: 1, amount: SEQ_WARMUP }));
        checkInterrupted();
        sequential[c][t] = record('sequential', t, c, await withCpu(t, () => cannon(spec(t, c), { connections: 1, amount: SEQ_AMOUNT })));
      }
    }

    // 1b. Anthropic's Messages API, sequential
    const messagesHeaders = { 'content-type': 'application/json', 'x-api-key': key.key, 'anthropic-version': '2023-06-01' };
    const messagesBody = (m: string, c: CaseName) => JSON.stringify({ model: m, messages, max_tokens: 16, ...(c === 'sse' ? { stream: true } : {}) });
    const messagesSpecs = (c: CaseName): Record<'direct' | 'passthrough' | 'translated', RequestSpec> => ({
      direct: { url: `${mockUrl}/v1/messages`, headers: messagesHeaders, body: messagesBody('bench-model', c) },
      passthrough: { url: `${gatewayUrl}/v1/messages`, headers: messagesHeaders, body: messagesBody(claudeModel, c) },
      translated: { url: `${gatewayUrl}/v1/messages`, headers: messagesHeaders, body: messagesBody(model, c) },
    });
    const messagesSeq = {} as Record<CaseName, Record<'direct' | 'passthrough' | 'translated', RunResult>>;
    for (const c of CASES) {
      messagesSeq[c] = {} as Record<'direct' | 'passthrough' | 'translated', RunResult>;
      for (const [name, s] of Object.entries(messagesSpecs(c)) as ['direct' | 'passthrough' | 'translated', RequestSpec][]) {
        const t: TargetName = name === 'direct' ? 'direct' : 'gateway';
        const r = await fetch(s.url, { method: 'POST', headers: s.headers, body: s.body, signal: AbortSignal.timeout(10_000) });
        const text = await r.text();
        if (!r.ok || (c === 'sse' ? !text.includes('event: message_stop') : JSON.parse(text).usage?.output_tokens !== MOCK_COMPLETION_TOKENS)) {
          throw new Error(`messages ${name} ${c}: unexpected answer ${r.status}: ${text.slice(0, 300)}`);
        }
        if (t === 'gateway') gatewayCounts.completed += 1;
        checkInterrupted();
        record(`msg warm-up ${name.slice(0, 5)}`, t, c, await cannon(s, { connections: 1, amount: SEQ_WARMUP }));
        checkInterrupted();
        messagesSeq[c][name] = record(`msg seq ${name.slice(0, 5)}`, t, c, await withCpu(t, () => cannon(s, { connections: 1, amount: SEQ_AMOUNT })));
      }
    }

    // 2. 1,000 req/s through the gateway
    const rate = {} as Record<CaseName, { autocannon: RateRun; paced: RateRun }>;
    for (const c of CASES) {
      const measure = async (gen: 'autocannon' | 'paced'): Promise<RateRun> => {
        checkInterrupted();
        // This scrape also resets the event-loop delay monitor, so the next one covers this run only.
        const textBefore = await scrape(metricsUrl);
        const before = Object.fromEntries(GATEWAY_HISTOGRAMS.map((h) => [h, histogramBuckets(textBefore, h)]));
        const amount = RATE * RATE_SECONDS;
        const r =
          gen === 'autocannon'
            ? await cannon(spec('gateway', c), { connections: RATE_CANNON_CONNECTIONS, amount, overallRate: RATE })
            : await paced(spec('gateway', c), { rate: RATE, amount, connections: RATE_PACED_CONNECTIONS });
        const textAfter = await scrape(metricsUrl);
        const delta = (h: (typeof GATEWAY_HISTOGRAMS)[number], p: number) => histogramDeltaPercentile(before[h]!, histogramBuckets(textAfter, h), p);
        const p99 = delta('gateway_overhead_seconds', 99);
        const p50 = delta('gateway_overhead_seconds', 50);
        const total99 = delta('gateway_request_duration_seconds', 99);
        const upstream99 = delta('gateway_upstream_duration_seconds', 99);
        // monitorEventLoopDelay reports the whole interval between its samples: take its resolution off.
        const lagP99Ms = round(Math.max(0, gaugeValue(textAfter, 'nodejs_eventloop_lag_p99_seconds') * 1000 - EVENT_LOOP_RESOLUTION_MS));
        const lagMaxMs = round(Math.max(0, gaugeValue(textAfter, 'nodejs_eventloop_lag_max_seconds') * 1000 - EVENT_LOOP_RESOLUTION_MS));
        const gcBefore = seriesByLabel(textBefore, 'nodejs_gc_duration_seconds_sum', 'kind');
        const gcAfter = seriesByLabel(textAfter, 'nodejs_gc_duration_seconds_sum', 'kind');
        const gcCountBefore = seriesByLabel(textBefore, 'nodejs_gc_duration_seconds_count', 'kind');
        const gcCountAfter = seriesByLabel(textAfter, 'nodejs_gc_duration_seconds_count', 'kind');
        const gc = Object.fromEntries(
          [...gcAfter.keys()].map((k) => [k, { ms: round(((gcAfter.get(k) ?? 0) - (gcBefore.get(k) ?? 0)) * 1000, 1), count: (gcCountAfter.get(k) ?? 0) - (gcCountBefore.get(k) ?? 0) }]),
        );
        const heapUsedMiB = round(gaugeValue(textAfter, 'nodejs_heap_size_used_bytes') / 2 ** 20, 1);
        record(`${RATE}/s ${gen}`, 'gateway', c, r);
        log(
          `${''.padEnd(18)} gateway_overhead_seconds over ${p99.samples} samples: p50 <= ${fmtLe(p50.value)} ms, p99 <= ${fmtLe(p99.value)} ms; ` +
            `request p99 <= ${fmtLe(total99.value)} ms, upstream p99 <= ${fmtLe(upstream99.value)} ms; event-loop delay (beyond the ${EVENT_LOOP_RESOLUTION_MS} ms tick) p99 ${fmt(lagP99Ms)} ms, max ${fmt(lagMaxMs)} ms; ` +
            `GC ${Object.entries(gc).map(([k, v]) => `${k} ${v.count}x ${fmt(v.ms, 1)} ms`).join(', ')}; heap used ${fmt(heapUsedMiB, 1)} MiB`,
        );
        return {
          generator: gen,
          connections: gen === 'autocannon' ? RATE_CANNON_CONNECTIONS : RATE_PACED_CONNECTIONS,
          ...r,
          overheadP50Ms: leMs(p50.value),
          overheadP99Ms: leMs(p99.value),
          overheadSamples: p99.samples,
          overheadBuckets: p99.buckets,
          gatewayRequestP99Ms: leMs(total99.value),
          gatewayUpstreamP99Ms: leMs(upstream99.value),
          eventLoopDelayP99Ms: lagP99Ms,
          eventLoopDelayMaxMs: lagMaxMs,
          gc,
          heapUsedMiB,
        };
      };
      rate[c] = { autocannon: await measure('autocannon'), paced: await measure('paced') };
    }

    // 3. max throughput
    const throughput = {} as Record<CaseName, Record<TargetName, RunResult>>;
    for (const c of CASES) {
      throughput[c] = {} as Record<TargetName, RunResult>;
      for (const t of TARGET_NAMES) {
        checkInterrupted();
        if (t === 'gateway') {
          // Bounded by count (see the top comment), sized by a probe to last about LOAD_SECONDS.
          const probe = record('throughput probe', t, c, await cannon(spec(t, c), { connections: LOAD_CONNECTIONS, amount: GATEWAY_PROBE }));
          checkInterrupted();
          const amount = Math.max(GATEWAY_PROBE, Math.min(200_000, Math.round(probe.rps * LOAD_SECONDS)));
          throughput[c][t] = record('throughput', t, c, await withCpu(t, () => cannon(spec(t, c), { connections: LOAD_CONNECTIONS, amount })));
        } else {
          throughput[c][t] = record('throughput', t, c, await withCpu(t, () => cannon(spec(t, c), { connections: LOAD_CONNECTIONS, durationS: LOAD_SECONDS })));
        }
      }
    }

    // ---------------------------------------------------------------- metering check
    checkInterrupted();
    log(`waiting for the metering journal to reach usage_events (${gatewayCounts.completed} requests completed)...`);
    const drainStart = Date.now();
    let counts = await usageCounts(db, account.id);
    let unchangedSince = Date.now();
    while (counts.total !== gatewayCounts.completed && Date.now() - drainStart < METERING_DRAIN_MS && Date.now() - unchangedSince < 6_000) {
      await new Promise((r) => setTimeout(r, 250));
      const next = await usageCounts(db, account.id);
      if (next.total !== counts.total) unchangedSince = Date.now();
      counts = next;
    }
    const metering = {
      requestsCompleted: gatewayCounts.completed,
      requestsFailed: gatewayCounts.failed,
      usageEvents: counts.total,
      usageEvents2xx: counts.ok,
      usageEventsEstimated: counts.estimated,
      usageEventsWithOtherTokenCounts: counts.wrongTokens,
      drainWaitMs: Date.now() - drainStart,
      equal: counts.total === gatewayCounts.completed,
    };
    log(`metering: ${metering.requestsCompleted} requests completed, ${metering.usageEvents} usage events (${metering.usageEvents2xx} with 2xx, ${metering.usageEventsEstimated} estimated) -> ${metering.equal ? 'equal' : 'NOT EQUAL'}`);

    // ---------------------------------------------------------------- CPU profile
    let cpuProfile: (ProfileSummary & { note: string }) | undefined;
    if (profDir) {
      log('stopping the gateway (SIGTERM) so that it writes its CPU profile...');
      await gateway.stop(30_000);
      const file = mainThreadCpuProfile(profDir);
      if (!file) throw new Error(`the gateway wrote no CPU profile into ${profDir} (exit ${JSON.stringify(gateway.exit)})`);
      cpuProfile = { ...summarizeCpuProfile(file), note: 'whole gateway process lifetime, start-up included; self time = hitCount x sampling interval' };
    }

    // ---------------------------------------------------------------- figures
    const perCase = Object.fromEntries(
      CASES.map((c) => {
        const seq = sequential[c];
        const tp = throughput[c];
        const gatewayOverheadMs = round(seq.gateway.latency.p50Ms - seq.direct.latency.p50Ms);
        const bareProxyOverheadMs = round(seq.proxy.latency.p50Ms - seq.direct.latency.p50Ms);
        return [
          c,
          {
            sequential: seq,
            sequentialOverheadMs: { gateway: gatewayOverheadMs, bareProxy: bareProxyOverheadMs },
            rate1000: rate[c],
            throughput: tp,
            throughputRatioGatewayToProxy: round(tp.gateway.rps / tp.proxy.rps),
          },
        ];
      }),
    ) as Record<CaseName, { sequential: Record<TargetName, RunResult>; sequentialOverheadMs: { gateway: number; bareProxy: number }; rate1000: { autocannon: RateRun; paced: RateRun }; throughput: Record<TargetName, RunResult>; throughputRatioGatewayToProxy: number }>;

    const perCaseTarget = <T>(f: (c: CaseName) => T & { pass: boolean }) => {
      const byCase = Object.fromEntries(CASES.map((c) => [c, f(c)])) as Record<CaseName, T & { pass: boolean }>;
      return { ...byCase, pass: CASES.every((c) => byCase[c].pass) };
    };
    const targets = {
      sequentialOverhead: {
        rule: `gateway p50 overhead <= ${TARGETS.sequentialOverheadFactor} x the bare proxy's (overhead = p50 - direct p50, 1 connection)`,
        ...perCaseTarget((c) => {
          const o = perCase[c].sequentialOverheadMs;
          const limitMs = round(TARGETS.sequentialOverheadFactor * o.bareProxy);
          return { gatewayMs: o.gateway, bareProxyMs: o.bareProxy, limitMs, pass: o.gateway <= limitMs };
        }),
      },
      overheadP99At1000Rps: {
        rule: `p99 of gateway_overhead_seconds <= ${TARGETS.overheadP99Ms} ms during a ${RATE} req/s run (autocannon overallRate, as specified); the paced figure is given alongside`,
        ...perCaseTarget((c) => {
          const r = rate[c];
          return {
            autocannonP99Ms: r.autocannon.overheadP99Ms,
            pacedP99Ms: r.paced.overheadP99Ms,
            limitMs: TARGETS.overheadP99Ms,
            pass: r.autocannon.overheadP99Ms <= TARGETS.overheadP99Ms,
            passPaced: r.paced.overheadP99Ms <= TARGETS.overheadP99Ms,
          };
        }),
      },
      throughput: {
        rule: `gateway req/s >= ${TARGETS.throughputRatio * 100}% of the bare proxy's (${LOAD_CONNECTIONS} connections)`,
        ...perCaseTarget((c) => ({ gatewayRps: perCase[c].throughput.gateway.rps, bareProxyRps: perCase[c].throughput.proxy.rps, ratio: perCase[c].throughputRatioGatewayToProxy, min: TARGETS.throughputRatio, pass: perCase[c].throughputRatioGatewayToProxy >= TARGETS.throughputRatio })),
      },
      metering: { rule: 'usage_events rows == requests the gateway completed (2xx, warm-ups included)', pass: metering.equal },
      messagesOverhead: {
        rule: `sequential p50 overhead of /v1/messages passthrough <= ${TARGETS.messagesPassthroughRatio} x, translated <= ${TARGETS.messagesTranslatedRatio} x that of /v1/chat/completions passthrough (passthrough overhead against the mock's /v1/messages, translated against its /v1/chat/completions)`,
        ...perCaseTarget((c) => {
          const chatMs = perCase[c].sequentialOverheadMs.gateway;
          const passthroughMs = round(messagesSeq[c].passthrough.latency.p50Ms - messagesSeq[c].direct.latency.p50Ms);
          const translatedMs = round(messagesSeq[c].translated.latency.p50Ms - sequential[c].direct.latency.p50Ms);
          const passthroughRatio = round(passthroughMs / chatMs);
          const translatedRatio = round(translatedMs / chatMs);
          return {
            chatMs,
            passthroughMs,
            translatedMs,
            passthroughRatio,
            translatedRatio,
            pass: passthroughRatio <= TARGETS.messagesPassthroughRatio && translatedRatio <= TARGETS.messagesTranslatedRatio,
          };
        }),
      },
    };
    for (const c of CASES) {
      const m = targets.messagesOverhead[c];
      log(`messages overhead (${c}): chat ${fmt(m.chatMs)} ms; passthrough ${fmt(m.passthroughMs)} ms = ${fmt(m.passthroughRatio, 2)}x (max ${TARGETS.messagesPassthroughRatio}); translated ${fmt(m.translatedMs)} ms = ${fmt(m.translatedRatio, 2)}x (max ${TARGETS.messagesTranslatedRatio}) -> ${yes(m.pass)}`);
    }

    const finishedAt = new Date();
    const output = {
      benchmark: 'gateway',
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationS: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1),
      quick: QUICK,
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        totalMemGiB: round(os.totalmem() / 2 ** 30, 1),
        platform: os.platform(),
        release: os.release(),
        node: process.version,
        /** 1/5/15-minute load averages: anything well above 0 before the start means other work shared the CPUs. */
        loadAvgAtStart: loadAtStart.map((v) => round(v, 2)),
        loadAvgAtEnd: os.loadavg().map((v) => round(v, 2)),
      },
      setup: {
        loadGenerator: 'autocannon 8 in the benchmark process; mock upstream, bare proxy and gateway are separate child processes on the same machine',
        mock: `node:http; JSON answer with usage ${MOCK_PROMPT_TOKENS}+${MOCK_COMPLETION_TOKENS} tokens; SSE: ${MOCK_STREAM_CHUNKS} chunks written back to back, then a usage chunk and [DONE]`,
        gateway: 'node bin/mixroute.js gateway (LOG_LEVEL=warn), fresh PostgreSQL database, headless Temporal dev server, no worker',
        sequential: { connections: 1, warmup: SEQ_WARMUP, requests: SEQ_AMOUNT },
        rate1000: { rate: RATE, requests: RATE * RATE_SECONDS, autocannonConnections: RATE_CANNON_CONNECTIONS, pacedConnections: RATE_PACED_CONNECTIONS },
        throughput: { connections: LOAD_CONNECTIONS, seconds: LOAD_SECONDS, gateway: `count-bounded: a ${GATEWAY_PROBE}-request probe sizes the run to ~${LOAD_SECONDS} s` },
        latencyUnit: 'ms, per 2xx response as seen by the load generator',
      },
      cases: perCase,
      messages: messagesSeq,
      metering,
      targets,
      runs,
      ...(cpuProfile ? { cpuProfile } : {}),
    };

    printReport(output.machine, perCase, targets, metering, cpuProfile);
    if (CPU_PROF) {
      log(`profiled run: figures not written to ${path.relative(REPO_ROOT, RESULTS_FILE)} (the profiler skews them)`);
    } else {
      fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
      fs.writeFileSync(RESULTS_FILE, `${JSON.stringify(output, null, 2)}\n`);
      log(`written ${path.relative(REPO_ROOT, RESULTS_FILE)}`);
    }
    if (!metering.equal) {
      console.error('[bench] METERING CHECK FAILED: usage events differ from the requests the gateway completed');
      exitCode = 1;
    }
  } catch (err) {
    console.error(`[bench] failed: ${(err as Error)?.stack ?? String(err)}`);
    exitCode = 1;
  } finally {
    // ---------------------------------------------------------------- clean-up
    for (const child of [...children].reverse()) {
      await child.stop(child === gateway ? 30_000 : 5_000).catch((e: unknown) => console.error(`[bench] stopping ${child.name}: ${String(e)}`));
    }
    if (temporal) await temporal.stop().catch((e: unknown) => console.error(`[bench] stopping Temporal: ${String(e)}`));
    if (db) await db.destroy().catch(() => undefined);
    if (dbCreated || db) await dropDatabase(databaseUrl).catch((e: unknown) => console.error(`[bench] dropping the database: ${String(e)}`));
    fs.rmSync(tmp, { recursive: true, force: true });
    log('cleaned up (children stopped, Temporal stopped, database dropped)');
  }
  return exitCode;
}

type RateRun = RunResult &
  Partial<Pick<PacedResult, 'targetRps' | 'sentRps' | 'maxInFlight'>> & {
  generator: 'autocannon' | 'paced';
  connections: number;
  /** Upper bound of the histogram bucket holding the percentile, in ms (Infinity above the last bucket). */
  overheadP50Ms: number;
  overheadP99Ms: number;
  overheadSamples: number;
  overheadBuckets: Record<string, number>;
  /** The gateway's own view (bucket upper bounds): whole request, and time waiting on the provider. */
  gatewayRequestP99Ms: number;
  gatewayUpstreamP99Ms: number;
  /** perf_hooks.monitorEventLoopDelay over the run (prom-client default metrics), minus its 10 ms sampling interval. */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** GC pauses during the run by kind (prom-client's nodejs_gc_duration_seconds). */
  gc: Record<string, { ms: number; count: number }>;
  heapUsedMiB: number;
};

const leMs = (seconds: number) => (Number.isFinite(seconds) ? round(seconds * 1000, 4) : seconds);
const fmtLe = (seconds: number) => (Number.isFinite(seconds) ? fmt(seconds * 1000, 2) : seconds === Infinity ? '>100' : 'n/a');
const yes = (b: boolean) => (b ? 'met' : 'MISSED');

function printReport(
  machine: { cpus: number; cpuModel: string | null; node: string },
  perCase: Record<CaseName, { sequential: Record<TargetName, RunResult>; sequentialOverheadMs: { gateway: number; bareProxy: number }; rate1000: { autocannon: RateRun; paced: RateRun }; throughput: Record<TargetName, RunResult>; throughputRatioGatewayToProxy: number }>,
  targets: {
    sequentialOverhead: Record<CaseName, { gatewayMs: number; bareProxyMs: number; limitMs: number; pass: boolean }> & { pass: boolean };
    overheadP99At1000Rps: Record<CaseName, { autocannonP99Ms: number; pacedP99Ms: number; pass: boolean; passPaced: boolean }> & { pass: boolean };
    throughput: Record<CaseName, { ratio: number; pass: boolean }> & { pass: boolean };
    metering: { pass: boolean };
  },
  metering: { requestsCompleted: number; usageEvents: number; equal: boolean },
  cpuProfile: ProfileSummary | undefined,
): void {
  const out: string[] = [];
  out.push('', `Gateway benchmark: ${machine.cpus} CPUs (${machine.cpuModel ?? '?'}), node ${machine.node}`, '');
  const rows: (string | number)[][] = [['case / target', 'seq p50 ms', 'seq p99 ms', 'overhead p50 ms', 'max req/s', 'p50 @50c ms', 'p99 @50c ms', 'CPU us/req @50c', 'non-2xx+err']];
  for (const c of CASES) {
    const p = perCase[c];
    for (const t of TARGET_NAMES) {
      const s = p.sequential[t];
      const tp = p.throughput[t];
      const over = t === 'direct' ? '-' : fmt(t === 'gateway' ? p.sequentialOverheadMs.gateway : p.sequentialOverheadMs.bareProxy);
      rows.push([`${c} ${t}`, s.latency.p50Ms, s.latency.p99Ms, over, tp.rps, tp.latency.p50Ms, tp.latency.p99Ms, tp.cpuUsPerRequest === undefined ? '-' : fmt(tp.cpuUsPerRequest, 1), s.non2xx + s.errors + tp.non2xx + tp.errors]);
    }
  }
  out.push(table(rows), '');
  const rateRows: (string | number)[][] = [['1000 req/s on the gateway', 'req/s', 'client p50 ms', 'client p99 ms', 'overhead p50 <=', 'overhead p99 <=', 'gw request p99 <=', 'gw upstream p99 <=', 'loop delay p99', 'loop delay max', 'non-2xx+err']];
  // Loop delay: how late a 10 ms timer fired (monitorEventLoopDelay), in ms.
  for (const c of CASES) {
    for (const g of ['autocannon', 'paced'] as const) {
      const r = perCase[c].rate1000[g];
      rateRows.push([`${c} ${g}`, r.rps, r.latency.p50Ms, r.latency.p99Ms, fmt(r.overheadP50Ms), fmt(r.overheadP99Ms), fmt(r.gatewayRequestP99Ms), fmt(r.gatewayUpstreamP99Ms), r.eventLoopDelayP99Ms, r.eventLoopDelayMaxMs, r.non2xx + r.errors]);
    }
  }
  out.push(table(rateRows), '');
  const t = targets;
  out.push('Targets:');
  for (const c of CASES) {
    const so = t.sequentialOverhead[c];
    out.push(`  sequential overhead (${c}): gateway ${fmt(so.gatewayMs)} ms vs bare proxy ${fmt(so.bareProxyMs)} ms, limit ${fmt(so.limitMs)} ms -> ${yes(so.pass)}`);
  }
  for (const c of CASES) {
    const o = t.overheadP99At1000Rps[c];
    out.push(`  overhead p99 at 1000 req/s (${c}): autocannon <= ${fmt(o.autocannonP99Ms)} ms -> ${yes(o.pass)}; paced <= ${fmt(o.pacedP99Ms)} ms -> ${yes(o.passPaced)} (limit 2 ms)`);
  }
  for (const c of CASES) {
    const r = t.throughput[c];
    out.push(`  throughput (${c}): gateway / bare proxy = ${fmt(r.ratio * 100, 1)}% (min 30%) -> ${yes(r.pass)}`);
    const gw = perCase[c].throughput.gateway.cpuUsPerRequest;
    const px = perCase[c].throughput.proxy.cpuUsPerRequest;
    if (gw !== undefined && px !== undefined) {
      out.push(`    CPU per request under load (${c}): gateway ${fmt(gw, 1)} us vs bare proxy ${fmt(px, 1)} us = ${fmt((px / gw) * 100, 1)}% (the ratio a CPU-bound run tends to)`);
    }
  }
  out.push(`  metering: ${metering.requestsCompleted} requests completed, ${metering.usageEvents} usage events -> ${metering.equal ? 'equal' : 'NOT EQUAL'}`);
  if (cpuProfile) {
    out.push('', `CPU profile: ${cpuProfile.file}`, `  ${fmt(cpuProfile.busyMs, 1)} ms busy, ${fmt(cpuProfile.idleMs, 1)} ms idle, sampled every ${cpuProfile.samplingIntervalUs} us; top self time:`);
    out.push(
      table([
        ['function', 'where', 'self ms', '% busy'],
        ...cpuProfile.top.map((e) => [e.name, e.where, e.selfMs, `${fmt(e.percent, 1)}%`]),
      ])
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
      '',
      '  by area:',
      table([['area', 'self ms', '% busy'], ...cpuProfile.byArea.map((a) => [a.area, a.selfMs, `${fmt(a.percent, 1)}%`])])
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
  console.log(out.join('\n'));
}

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    signals += 1;
    if (signals > 1) process.exit(130);
    console.error(`[bench] ${sig}: stopping the current run and cleaning up (again to exit at once)`);
    interrupted = true;
    stopCurrentRun();
  });
}

process.exitCode = await main();
