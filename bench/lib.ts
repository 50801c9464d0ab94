/**
 * Shared helpers for the benchmarks: child processes, load runs (autocannon and
 * a paced open-loop generator), percentiles, Prometheus histogram scraping,
 * CPU-profile summaries and plain-text tables. Every loop here is bounded in
 * count and in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Pool } from 'undici';

import { configSchema } from '../src/config';
import { dropDatabase } from '../src/db/database';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** This process's environment without any MixRoute setting, so a child sees only what a benchmark sets. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(configSchema.shape)) delete env[k];
  return env;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- child processes

export interface Child {
  name: string;
  proc: ChildProcess;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node [nodeArgs] script` with an IPC channel (children exit when it
 * closes, so a crashed benchmark leaves no orphans) and stdout/stderr inherited.
 */
export function spawnNode(name: string, nodeArgs: string[], env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, nodeArgs, { cwd: REPO_ROOT, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child: Child = {
    name,
    proc,
    exit: undefined,
    exited: new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        child.exit = { code, signal };
        resolve();
      });
    }),
    async stop(graceMs = 15_000) {
      if (child.exit) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await child.exited;
      clearTimeout(timer);
    },
  };
  proc.once('error', () => undefined);
  return child;
}

/** Waits for the child's `{ ready: true, port }` IPC message. */
export async function waitForReadyMessage(child: Child, timeoutMs = 20_000): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${child.name} did not report ready within ${timeoutMs} ms`)), timeoutMs);
    child.proc.on('message', (m: { ready?: boolean; port?: number }) => {
      if (m?.ready && typeof m.port === 'number') {
        clearTimeout(timer);
        resolve(m.port);
      }
    });
    void child.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited before it was ready (code ${child.exit?.code}, signal ${child.exit?.signal})`));
    });
  });
}

/** Polls `url` until it answers 200, the child exits, or the time is up. */
export async function waitForHttpOk(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exit) throw new Error(`${child.name} exited during start (code ${child.exit.code}, signal ${child.exit.signal})`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      last = `${r.status} ${await r.text()}`;
      if (r.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`${child.name} not ready at ${url} within ${timeoutMs} ms (last answer: ${last.slice(0, 300)})`);
}

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export function summarize(latenciesMs: number[]): LatencySummary {
  const s = Float64Array.from(latenciesMs).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    samples: s.length,
    p50Ms: round(percentile(s, 50)),
    p90Ms: round(percentile(s, 90)),
    p99Ms: round(percentile(s, 99)),
    meanMs: round(s.length ? sum / s.length : NaN),
    maxMs: round(s.length ? s[s.length - 1]! : NaN),
  };
}

export const round = (v: number, digits = 3) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v);

// ---------------------------------------------------------------- load runs

export interface RequestSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc; null where there is no /proc. */
export function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
/** USER_HZ: 100 on every Linux build this runs on (sysconf(_SC_CLK_TCK) is not reachable from Node). */
const CLOCK_TICKS = 100;

export interface RunResult {
  /** 2xx responses. */
  completed: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  timeouts: number;
  /** Start to last response. */
  durationS: number;
  /** completed / durationS */
  rps: number;
  latency: LatencySummary;
  /** CPU time of the measured process per completed request, in microseconds, where measured. */
  cpuUsPerRequest?: number;
}

/** The run in progress, so that Ctrl-C can stop it. */
let currentStop: (() => void) | undefined;
export function stopCurrentRun(): void {
  currentStop?.();
}

/**
 * One autocannon run (POST). Latencies come from the per-response event in
 * milliseconds with sub-millisecond resolution (autocannon's own histogram
 * keeps whole milliseconds, too coarse here); 2xx responses only.
 */
export async function cannon(
  spec: RequestSpec,
  opts: { connections: number; amount?: number; durationS?: number; overallRate?: number },
): Promise<RunResult> {
  const latencies: number[] = [];
  const started = performance.now();
  let lastResponseAt = started;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: 'POST',
        headers: spec.headers,
        body: spec.body,
        connections: opts.connections,
        ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.durationS ?? 10 }),
        ...(opts.overallRate !== undefined ? { overallRate: opts.overallRate } : {}),
        timeout: 10,
      },
      (err, res) => (err ? reject(err as Error) : resolve(res)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      lastResponseAt = performance.now();
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
    currentStop = () => instance.stop();
  }).finally(() => {
    currentStop = undefined;
  });
  // autocannon notices the end of a run on its 1-second tick; the last response marks the real end.
  const durationS = (lastResponseAt - started) / 1000;
  const completed = result['2xx'];
  return {
    completed,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS: round(durationS, 2),
    rps: round(completed / durationS, 1),
    latency: summarize(latencies),
  };
}

export interface PacedResult extends RunResult {
  targetRps: number;
  /** Requests sent / time spent sending: whether the generator kept the pace. */
  sentRps: number;
  maxInFlight: number;
}

/**
 * Open-loop load at a steady rate: every millisecond tick sends the requests
 * that are due by the clock (so the gaps stay ~1 ms instead of a burst at the
 * top of each second), over a keep-alive pool. Sends exactly `amount` requests
 * and waits for all of them; each request times out after 10 s.
 */
export async function paced(spec: RequestSpec, opts: { rate: number; amount: number; connections: number }): Promise<PacedResult> {
  const u = new URL(spec.url);
  const pool = new Pool(u.origin, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const latencies: number[] = [];
  let completed = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const one = async () => {
    const start = performance.now();
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    try {
      const r = await pool.request({ path: u.pathname, method: 'POST', headers: spec.headers, body: spec.body });
      await r.body.arrayBuffer();
      if (r.statusCode >= 200 && r.statusCode < 300) {
        completed++;
        latencies.push(performance.now() - start);
      } else non2xx++;
    } catch (err) {
      errors++;
      if (/timeout/i.test((err as Error).name ?? '')) timeouts++;
    } finally {
      inFlight--;
    }
  };
  const pending: Promise<void>[] = [];
  let stopped = false;
  currentStop = () => {
    stopped = true;
  };
  const started = performance.now();
  let sendingEnded = started;
  try {
    await new Promise<void>((resolve) => {
      const hardStop = started + (opts.amount / opts.rate) * 1000 + 30_000;
      const timer = setInterval(() => {
        const now = performance.now();
        const due = Math.min(opts.amount, Math.floor(((now - started) * opts.rate) / 1000) + 1);
        while (pending.length < due) pending.push(one());
        if (pending.length >= opts.amount || stopped || now > hardStop) {
          clearInterval(timer);
          sendingEnded = now;
          resolve();
        }
      }, 1);
    });
    await Promise.all(pending);
  } finally {
    currentStop = undefined;
    await pool.close();
  }
  const durationS = (performance.now() - started) / 1000;
  return {
    targetRps: opts.rate,
    sentRps: round(pending.length / Math.max(0.001, (sendingEnded - started) / 1000), 1),
    maxInFlight,
    completed,
    non2xx,
    errors,
    timeouts,
    durationS: round(durationS, 2),
    rps: round(completed / durationS, 1),
    latency: summarize(latencies),
  };
}

// ---------------------------------------------------------------- Prometheus

/** Cumulative bucket counts of one histogram (`le` → count) from a /metrics text. */
export function histogramBuckets(metricsText: string, name: string): Map<string, number> {
  const buckets = new Map<string, number>();
  const prefix = `${name}_bucket{`;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (le !== undefined && Number.isFinite(value)) buckets.set(le, (buckets.get(le) ?? 0) + value);
  }
  return buckets;
}

/**
 * The p-th percentile of the samples added between two scrapes, by bucket
 * upper bound (seconds; Infinity when it falls in +Inf). `samples` is the count.
 */
export function histogramDeltaPercentile(before: Map<string, number>, after: Map<string, number>, p: number): { value: number; samples: number; buckets: Record<string, number> } {
  const les = [...after.keys()].sort((a, b) => parseLe(a) - parseLe(b));
  const delta = les.map((le) => [le, (after.get(le) ?? 0) - (before.get(le) ?? 0)] as const);
  const total = delta.at(-1)?.[1] ?? 0;
  const buckets = Object.fromEntries(delta);
  if (total <= 0) return { value: NaN, samples: 0, buckets };
  const need = (p / 100) * total;
  for (const [le, count] of delta) if (count >= need) return { value: parseLe(le), samples: total, buckets };
  return { value: Infinity, samples: total, buckets };
}

/** Values of one metric keyed by one label's value (`nodejs_gc_duration_seconds_sum` by `kind`, say). */
export function seriesByLabel(metricsText: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const key = re.exec(line)?.[1];
    if (key !== undefined) out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** The value of an unlabelled (or single-series) gauge, NaN when absent. */
export function gaugeValue(metricsText: string, name: string): number {
  for (const line of metricsText.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

const parseLe = (le: string) => (le === '+Inf' ? Infinity : Number(le));

// ---------------------------------------------------------------- CPU profiles

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  /** Share of the non-idle time. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  idleMs: number;
  busyMs: number;
  samplingIntervalUs: number;
  top: ProfileEntry[];
  byArea: { area: string; selfMs: number; percent: number }[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const root = `file://${REPO_ROOT}`;
  let u = url.startsWith(root) ? url.slice(root.length) : url;
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm);
  return u;
}

/** Which part of the system a frame belongs to: an npm package, a repo directory, Node itself, or V8's pseudo-frames. */
function area(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const u = shortUrl(url);
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1]!;
  const parts = u.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Self time per function (hitCount × sampling interval), aggregated by function name, URL and line. */
export function summarizeCpuProfile(file: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const totalHits = profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0) || profile.samples?.length || 1;
  const intervalUs = (profile.endTime - profile.startTime) / totalHits;
  const byFn = new Map<string, { name: string; where: string; hits: number }>();
  const byArea = new Map<string, number>();
  let idleHits = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleHits += hits;
      continue;
    }
    const name = functionName || '(anonymous)';
    // tsx-compiled TypeScript reports line 0 for every function: the file is the useful part there.
    const where = url ? `${shortUrl(url)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : '';
    const key = `${name}\u0000${where}`;
    const e = byFn.get(key) ?? { name, where, hits: 0 };
    e.hits += hits;
    byFn.set(key, e);
    const a = area(url, functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + hits);
  }
  const busyHits = totalHits - idleHits;
  const ms = (hits: number) => round((hits * intervalUs) / 1000, 1);
  const pct = (hits: number) => round((100 * hits) / Math.max(1, busyHits), 1);
  return {
    file,
    totalMs: ms(totalHits),
    idleMs: ms(idleHits),
    busyMs: ms(busyHits),
    samplingIntervalUs: round(intervalUs, 1),
    top: [...byFn.values()]
      .sort((a, b) => b.hits - a.hits)
      .slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, selfMs: ms(e.hits), percent: pct(e.hits) })),
    byArea: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([a, hits]) => ({ area: a, selfMs: ms(hits), percent: pct(hits) })),
  };
}

/**
 * The main thread's .cpuprofile in `dir` (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile,
 * thread 0; tsx's loader worker writes its own), else the largest one, else undefined.
 */
export function mainThreadCpuProfile(dir: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const main = files.find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  if (main) return path.join(dir, main);
  return files.map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
}

// ---------------------------------------------------------------- output

/** A plain-text table: first row is the header; numbers right-aligned. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[], header: boolean) =>
    r.map((c, i) => (i === 0 || header || Number.isNaN(Number(c.replace(/[x%,]/g, ''))) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!, true), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map((r) => line(r, false))].join('\n');
}

export function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(Math.abs(v) >= 100 ? 1 : digits);
}

// ---------------------------------------------------------------- settings, SQL text, results

/** An integer setting from the environment (underscores and commas allowed), at least `min`. */
export function intEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/[_,]/g, ''));
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

/** A statement on one line, cut at `max` characters, for logs and results. */
export function oneLine(sql: string, max = 160): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Where a benchmark's raw results go: .data/bench/ (BENCH_RESULTS_DIR), never the repository. */
export function benchResultsFile(name: string): string {
  return path.join(process.env.BENCH_RESULTS_DIR ?? path.join(REPO_ROOT, '.data/bench'), name);
}

/** Writes a benchmark's results as pretty JSON and says where. */
export function writeResults(file: string, out: unknown, log: (line: string) => void): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`written to ${path.relative(REPO_ROOT, file)}`);
}

/** Drops a benchmark's database at the end, or keeps it (BENCH_KEEP_DB=1) and says how to drop it. */
export async function dropOrKeepDatabase(databaseUrl: string, keep: boolean, log: (line: string) => void): Promise<void> {
  const database = new URL(databaseUrl).pathname.slice(1);
  if (keep) log(`BENCH_KEEP_DB=1: kept ${database}; drop it with: psql -c 'DROP DATABASE ${database}'`);
  else await dropDatabase(databaseUrl).catch((err: unknown) => log(`could not drop ${database}: ${(err as Error).message}`));
}

/** Runs a benchmark's main and exits with its code; a crash prints its stack and exits 1. */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`[${name}] failed: ${(err as Error).stack ?? (err as Error).message}`);
      process.exit(1);
    },
  );
}


// ---------------------------------------------------------------- Temporal histories

export interface WorkflowTaskStats {
  /** Workflow tasks completed inside the window, over every run (continue-as-new) of the workflows. */
  completed: number;
  timedOut: number;
  failed: number;
  /** Milliseconds from a signal to the workflow task that took it, and each workflow task's run. */
  signalToTaskStartMs: number[];
  taskRunMs: number[];
}

/**
 * Counts workflow tasks from histories: every run of each workflow id (found
 * through visibility, so continued-as-new runs count too), events inside
 * [from, to) only. The Temporal server's work per settlement is this count.
 */
export async function workflowTaskStats(
  client: import('@temporalio/client').Client,
  workflowIds: string[],
  from: Date,
  to: Date,
): Promise<WorkflowTaskStats> {
  const out: WorkflowTaskStats = { completed: 0, timedOut: 0, failed: 0, signalToTaskStartMs: [], taskRunMs: [] };
  const ms = (t: unknown) => {
    const ts = t as { seconds?: unknown; nanos?: number | null } | null | undefined;
    return Number(ts?.seconds ?? 0) * 1000 + (ts?.nanos ?? 0) / 1e6;
  };
  for (const workflowId of workflowIds) {
    const runs: string[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(w.runId);
    for (const runId of runs) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      let signalAt: number | null = null;
      let startedAt: number | null = null;
      for (const e of history.events ?? []) {
        const at = ms(e.eventTime);
        if (at < from.getTime() || at >= to.getTime()) continue;
        if (e.workflowExecutionSignaledEventAttributes) signalAt ??= at;
        else if (e.workflowTaskStartedEventAttributes) {
          startedAt = at;
          if (signalAt !== null) out.signalToTaskStartMs.push(at - signalAt);
          signalAt = null;
        } else if (e.workflowTaskCompletedEventAttributes) {
          out.completed += 1;
          if (startedAt !== null) out.taskRunMs.push(at - startedAt);
          startedAt = null;
        } else if (e.workflowTaskTimedOutEventAttributes) out.timedOut += 1;
        else if (e.workflowTaskFailedEventAttributes) out.failed += 1;
      }
    }
  }
  out.signalToTaskStartMs.sort((a, b) => a - b);
  out.taskRunMs.sort((a, b) => a - b);
  return out;
}
