import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../logger';
import { Money, toAmountString } from '../shared/money.rules';
import type { UsageRecordedSignal } from '../../workflows/messages';
import type { MeteringJournal } from './journal';
import type { UsageRecord } from './record';
import { isDataError, noNul, safeErrorMessage, sqlState } from './dataErrors.rules';
import type { UsageEventStore } from './metering.service';

/**
 * Moves closed journal segments into usage_events, then wakes each affected
 * account's metering workflow, then deletes the segment. Every step is
 * idempotent (ON CONFLICT DO NOTHING on the record's key; signals are
 * wake-ups), so a crash or an outage at any point only means the segment is
 * processed again later. While PostgreSQL or Temporal is away, segments pile up
 * on disk and the gateway keeps serving.
 *
 * The inserts commit asynchronously (synchronous_commit = off): they do not
 * wait for PostgreSQL's WAL flush, so a disk that stalls its flushes (metadata
 * expiry dropping a day partition frees hundreds of MB, see the retention
 * benchmark) does not stall the batcher. The journal is what makes that safe:
 * a segment is deleted only once PostgreSQL reports its WAL flushed past the
 * segment's commit (usually by the next tick; the WAL writer flushes within
 * 3 × wal_writer_delay). If PostgreSQL crashes before that, the segment is
 * still on disk and goes in again (see settleAwaiting for a server that
 * restarted meanwhile). Anything that acts on the rows commits
 * synchronously after them (settlement, reconciliation), and WAL is flushed in
 * order, so nothing durable can depend on a row that was lost.
 *
 * One record cannot stop metering: when PostgreSQL refuses a segment for a
 * data reason (SQLSTATE class 22 data exception or 23 integrity violation;
 * the idempotent conflict never raises), the segment goes in again with each
 * chunk under a savepoint, halving a refused chunk until the refused records
 * are single ones. Those are set aside in metering_quarantine (metadata only,
 * see setAside) in the same transaction as the rest, counted in
 * metering_quarantined_records_total and logged, and the segment is done.
 * Anything else (connection lost, database down, a schema that does not match)
 * is not the record's fault: the segment stays and is retried, as before.
 */
export type AccountSignaler = (accountId: string, summary: UsageRecordedSignal) => Promise<void>;

export interface BatcherOptions {
  journal: MeteringJournal;
  /** The statements (src/metering/usageEvents.data.ts), on the metering pool. */
  events: UsageEventStore;
  signal: AccountSignaler;
  logger: Logger;
  intervalMs: number;
  /** Called after each segment reached the database, with the records' finish times (for the lag metric). */
  onRecorded?: (records: UsageRecord[]) => void;
  /**
   * At most one signal per target (account, or settlement shard) per this
   * many ms (the last one always follows): at hundreds of requests per
   * second, signalling on every batch would make Temporal's work, not
   * settlement, the limit.
   */
  signalThrottleMs?: number;
  /**
   * Whom a record's signal goes to (default: its account). For settlement
   * shards, the account's shard: a batch then sends at most one signal per
   * shard, naming the accounts (up to MAX_SIGNAL_ACCOUNTS, then a sweep).
   */
  signalTarget?: (accountId: string) => string;
  /** Where the quarantine and clamp counters are registered (the gateway's /metrics). */
  registry?: Registry;
}

const STOP_FLUSH_WAIT_MS = 5_000;
const MAX_BACKOFF_MS = 5_000;

/** What an error log line of the batcher may say: never knex's message, which carries the statement's bindings. */
const errorSummary = (err: unknown) => ({ errCode: sqlState(err) ?? (err as NodeJS.ErrnoException | null)?.code, error: safeErrorMessage(err) });

/** The UTC day a record's partition is for, when its time is one. */
function dayOf(r: UsageRecord): string | undefined {
  return typeof r.occurredAt === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(r.occurredAt) ? r.occurredAt.slice(0, 10) : undefined;
}

/** A WAL position ('16/B374D848') as a number that orders like it. */
export function lsnValue(lsn: string): bigint {
  const m = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(lsn);
  if (!m) throw new Error(`not a WAL position: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/** Where a segment's commit is in the WAL, and which run of the server wrote it (pg_postmaster_start_time). */
export interface WalMark {
  lsn: bigint;
  server: string;
}

/**
 * What becomes of the segments waiting for their commit's flush, given the
 * server's flush position now: flushed past their commit, they are durable
 * and go; written by an earlier run of the server (it restarted, or another
 * server took over), their commit may have been lost with its unflushed WAL
 * while the new run's WAL has since passed that position, so they go in
 * again; the rest keep waiting.
 */
export function settleAwaiting(awaiting: ReadonlyMap<string, WalMark>, now: WalMark): { durable: string[]; again: string[] } {
  const durable: string[] = [];
  const again: string[] = [];
  for (const [file, mark] of awaiting) {
    if (mark.server !== now.server) again.push(file);
    else if (mark.lsn <= now.lsn) durable.push(file);
  }
  return { durable, again };
}

const walMark = (row: { lsn: string; server: string }): WalMark => ({ lsn: lsnValue(row.lsn), server: row.server });

export class MeteringBatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  private readonly partitions = new Set<string>();
  private readonly pendingSignals = new Map<string, UsageRecordedSignal>();
  private readonly lastSignalAt = new Map<string, number>();
  /** Segments already in usage_events whose commit may not be flushed yet: path → WAL position after the commit. */
  private readonly awaitingFlush = new Map<string, WalMark>();
  private readonly quarantined: Counter<'code'>;
  private readonly clamped: Counter;

  constructor(private readonly opts: BatcherOptions) {
    const registers = opts.registry ? [opts.registry] : [];
    this.quarantined = new Counter({
      name: 'metering_quarantined_records_total',
      help: 'Metering records PostgreSQL refused for a data reason, set aside in metering_quarantine, by SQLSTATE',
      labelNames: ['code'],
      registers,
    });
    this.clamped = new Counter({
      name: 'metering_clamped_records_total',
      help: 'Metering records whose provider-reported token count was clamped (usage_clamped)',
      registers,
    });
  }

  start(): void {
    this.schedule(0);
  }

  /** Rotates the journal and moves every closed segment; throws if a step fails. */
  async flush(): Promise<number> {
    // One flush at a time: the timer and stop() may both ask.
    while (this.running) await this.running;
    const run = this.flushSegments();
    // The marker settles either way; the caller gets the outcome from `run`.
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  /** Stops the timer and makes a last attempt to flush; what fails stays in the journal for next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    try {
      await this.flush();
      await this.makeDurable();
      await this.flushSignals();
    } catch (err) {
      this.opts.logger.warn({ ...errorSummary(err), pendingBytes: this.opts.journal.pendingBytes() }, 'metering flush at stop failed; the journal keeps the records for the next start');
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.flush();
      this.failures = 0;
      this.schedule(this.opts.intervalMs);
    } catch (err) {
      this.failures += 1;
      const backoff = Math.min(MAX_BACKOFF_MS, this.opts.intervalMs * 2 ** this.failures);
      this.opts.logger.warn(
        { ...errorSummary(err), failures: this.failures, retryInMs: backoff, pendingBytes: this.opts.journal.pendingBytes() },
        'metering batch failed; records stay in the journal',
      );
      this.schedule(backoff);
    }
  }

  private async flushSegments(): Promise<number> {
    const { journal, logger } = this.opts;
    journal.rotate();
    let moved = 0;
    for (const segment of journal.closedSegments()) {
      if (this.awaitingFlush.has(segment.path)) continue;
      const { records, unreadable } = journal.readSegment(segment.path);
      if (unreadable > 0) logger.error({ segment: segment.path, unreadable }, 'unreadable metering journal lines');
      if (records.length > 0) {
        const { mark, accepted } = await this.insert(records, segment.path);
        this.awaitingFlush.set(segment.path, mark);
        await this.signalAccounts(accepted);
        this.opts.onRecorded?.(accepted);
      } else {
        journal.removeSegment(segment.path);
      }
      moved += records.length;
    }
    await this.removeDurable();
    // Signals go out beside the next batches instead of holding them up.
    void this.sendDueSignals(false);
    return moved;
  }

  /** Accounts whose signal is on its way: the next one for that account waits for it, no other account does. */
  private readonly signalling = new Map<string, Promise<void>>();
  private signalFailures = 0;
  private signalFailureLoggedAt = 0;

  /**
   * Sends the signals that are due, each on its own: a slow RPC for one account
   * (the server under load) holds up only that account's next signal, not a
   * whole round of them. Deferred ones wait in memory: if the process dies
   * first, the events are already in PostgreSQL and the workflow's sweep
   * settles them; a signal only makes that sooner. A failed signal goes back,
   * merged with anything newer, for the next attempt.
   */
  private sendDueSignals(all: boolean): Promise<void>[] {
    const now = Date.now();
    const throttle = this.opts.signalThrottleMs ?? 0;
    const sent: Promise<void>[] = [];
    for (const [accountId, summary] of [...this.pendingSignals]) {
      if (this.signalling.has(accountId)) continue;
      if (!all && now - (this.lastSignalAt.get(accountId) ?? 0) < throttle) continue;
      // Taken out before sending, so records folded in meanwhile start a new summary.
      this.pendingSignals.delete(accountId);
      const send = this.opts
        .signal(accountId, summary)
        .then(() => {
          this.lastSignalAt.set(accountId, Date.now());
        })
        .catch((err: unknown) => {
          const newer = this.pendingSignals.get(accountId);
          this.pendingSignals.set(accountId, newer ? mergeSummaries(summary, newer) : summary);
          // One line per few seconds, not one per account per attempt, while Temporal is away.
          this.signalFailures++;
          if (Date.now() - this.signalFailureLoggedAt > 5_000) {
            this.opts.logger.warn({ err, failures: this.signalFailures }, 'metering signals not sent yet; retrying');
            this.signalFailureLoggedAt = Date.now();
            this.signalFailures = 0;
          }
          throw err;
        })
        .finally(() => this.signalling.delete(accountId));
      send.catch(() => undefined);
      this.signalling.set(accountId, send);
      sent.push(send);
    }
    if (this.lastSignalAt.size > 100_000) this.lastSignalAt.clear();
    return sent;
  }

  /** Every pending signal, now, waiting for those on their way first; throws if one fails. */
  private async flushSignals(): Promise<void> {
    await Promise.allSettled([...this.signalling.values()]);
    const results = await Promise.allSettled(this.sendDueSignals(true));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Inserts a segment's records in one transaction committed asynchronously;
   * returns the WAL position after its commit. A segment refused for a data
   * reason goes in again record by record where needed (insertSettingAside).
   */
  private async insert(records: UsageRecord[], segment: string): Promise<{ mark: WalMark; accepted: UsageRecord[] }> {
    const { events } = this.opts;
    await this.ensurePartitions(records, false);
    let accepted = records;
    try {
      await events.insert(records);
    } catch (err) {
      if (!isDataError(err)) throw err;
      const refused = await this.insertSettingAside(records, segment);
      accepted = records.filter((r) => !refused.has(r));
    }
    const clamped = accepted.filter((r) => r.usageClamped === true).length;
    if (clamped > 0) this.clamped.inc(clamped);
    // Asked after the commit returned, so its commit record is in the WAL before this position:
    // a flush that reaches it has made the rows durable.
    return { mark: walMark(await events.walPosition('insert')), accepted };
  }

  /** Creates the day partitions the records need (once per day and process, unless `again`). */
  private async ensurePartitions(records: UsageRecord[], again: boolean): Promise<void> {
    const days = new Set<string>();
    for (const r of records) {
      const day = dayOf(r);
      if (day) days.add(day);
    }
    for (const day of days) {
      if (!again && this.partitions.has(day)) continue;
      try {
        await this.opts.events.ensurePartition(day);
        this.partitions.add(day);
      } catch (err) {
        // Not a day after all ('2026-02-31'): the records of it are refused and set aside by the insert.
        if (!isDataError(err)) throw err;
      }
    }
  }

  /**
   * The slow path, only for a segment PostgreSQL refused for a data reason:
   * each chunk under a savepoint, a refused chunk halved until the refused
   * records stand alone; those go to metering_quarantine in the same
   * transaction as the rest, so the segment is done in one commit.
   */
  private async insertSettingAside(records: UsageRecord[], segment: string): Promise<Set<UsageRecord>> {
    const { events, logger } = this.opts;
    await this.ensurePartitions(records, true);
    const refused = await events.insertSettingAside(records, isDataError);
    // Counted and logged once committed: a retried segment whose records were already set aside counts them again,
    // which at worst overstates the metric; the table holds each record once.
    for (const { record, err } of refused) {
      const code = sqlState(err) ?? 'unknown';
      this.quarantined.labels(code).inc();
      logger.error(
        { requestId: noNul(record.requestId).slice(0, 200), accountId: noNul(record.accountId).slice(0, 64), segment, ...errorSummary(err) },
        'metering record refused by PostgreSQL for a data reason; set aside in metering_quarantine, the rest of its batch went in',
      );
    }
    return new Set(refused.map((r) => r.record));
  }

  /** Deletes the segments whose commit PostgreSQL has flushed; those of an earlier server run go in again at the next tick. */
  private async removeDurable(): Promise<void> {
    if (this.awaitingFlush.size === 0) return;
    const { durable, again } = settleAwaiting(this.awaitingFlush, walMark(await this.opts.events.walPosition('flush')));
    for (const file of durable) {
      this.opts.journal.removeSegment(file);
      this.awaitingFlush.delete(file);
    }
    if (again.length > 0) this.opts.logger.warn({ segments: again.length }, 'PostgreSQL restarted before flushing some metering inserts; their segments go in again');
    for (const file of again) this.awaitingFlush.delete(file);
  }

  /**
   * At stop: waits for the WAL writer to flush what was inserted (it flushes
   * asynchronous commits within 3 × wal_writer_delay, 0.6 s by default), then
   * the segments go. What is still not flushed after STOP_FLUSH_WAIT_MS stays
   * in the journal and goes in again, as a no-op, at the next start.
   */
  private async makeDurable(): Promise<void> {
    const deadline = Date.now() + STOP_FLUSH_WAIT_MS;
    for (;;) {
      await this.removeDurable();
      if (this.awaitingFlush.size === 0 || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Folds the batch into the per-account summaries waiting to be signalled. */
  private async signalAccounts(records: UsageRecord[]): Promise<void> {
    for (const r of records) {
      const target = this.opts.signalTarget ? this.opts.signalTarget(r.accountId) : r.accountId;
      const s = this.pendingSignals.get(target) ?? { events: 0, cost: '0', lastOccurredAt: r.occurredAt };
      if (target !== r.accountId) nameAccount(s, r.accountId);
      s.events += 1;
      // A signal is a wake-up; a cost PostgreSQL took but decimal.js does not must not stop the batcher.
      try {
        s.cost = toAmountString(new Money(s.cost).plus(r.cost));
      } catch {
        /* the summary's cost is informational; settlement reads the events */
      }
      if (r.occurredAt > s.lastOccurredAt) s.lastOccurredAt = r.occurredAt;
      this.pendingSignals.set(target, s);
    }
  }
}

function mergeSummaries(a: UsageRecordedSignal, b: UsageRecordedSignal): UsageRecordedSignal {
  const merged: UsageRecordedSignal = {
    events: a.events + b.events,
    cost: toAmountString(new Money(a.cost).plus(b.cost)),
    lastOccurredAt: a.lastOccurredAt > b.lastOccurredAt ? a.lastOccurredAt : b.lastOccurredAt,
  };
  if (a.sweep || b.sweep) merged.sweep = true;
  for (const id of [...(a.accounts ?? []), ...(b.accounts ?? [])]) nameAccount(merged, id);
  return merged;
}

/** A shard's wake-up names at most this many accounts (a few dozen KB); past that it asks for a sweep of the shard. */
const MAX_SIGNAL_ACCOUNTS = 1_000;

/**
 * The accounts each pending summary names, as a set beside its array (the array is what the
 * signal carries): a lookup per record instead of a scan of up to MAX_SIGNAL_ACCOUNTS names.
 * Only nameAccount changes a summary's accounts, so the two stay in step.
 */
const namedAccounts = new WeakMap<UsageRecordedSignal, Set<string>>();

/** Names the account in the shard's summary, once; past MAX_SIGNAL_ACCOUNTS names the summary asks for a sweep. Exported for tests. */
export function nameAccount(s: UsageRecordedSignal, accountId: string): void {
  if (s.sweep) return;
  s.accounts ??= [];
  let named = namedAccounts.get(s);
  if (!named || named.size !== s.accounts.length) {
    named = new Set(s.accounts);
    namedAccounts.set(s, named);
  }
  if (named.has(accountId)) return;
  if (s.accounts.length < MAX_SIGNAL_ACCOUNTS) {
    s.accounts.push(accountId);
    named.add(accountId);
    return;
  }
  s.sweep = true;
  delete s.accounts;
  namedAccounts.delete(s);
}
