import fs from 'node:fs';
import path from 'node:path';
import type { UsageRecord } from './record';

/**
 * The metering journal: an append-only file of metering records (metadata
 * only). A finished request's record is queued, and all the records queued in
 * one event-loop turn go to the file in one synchronous write right after that
 * turn's I/O callbacks (setImmediate); the caller holds the request's answer
 * until then (`onWritten`), so an answer a client saw always has its record
 * on file. One write per turn instead of one per request: under load several
 * requests finish per turn, and the per-record write was the largest cost of
 * the gateway's own code. When only one request is in flight there is nothing
 * to batch with, and its record is written right away (see append). A record
 * written with writeSync is in the kernel's
 * page cache, so a gateway killed with SIGKILL loses nothing it answered;
 * segments are fsynced when they are rotated, which bounds what a power cut
 * could lose to one batch interval.
 *
 * Appends go to the active segment. `rotate()` closes it and opens the next;
 * closed segments are moved to the database by the batcher and then removed.
 * One gateway instance owns one journal directory (a lock file says which).
 */
const SEGMENT = /^segment-(\d{12})\.jsonl$/;

export class JournalLockedError extends Error {}

export class MeteringJournal {
  private fd: number | undefined;
  private activeSeq = 0;
  private activeBytes = 0;
  private closedBytes = 0;
  private queued: string[] = [];
  private waiting: ((err: Error | null) => void)[] = [];
  private flushScheduled = false;
  private flushSoonScheduled = false;
  private readonly flushNow = () => {
    this.flushScheduled = false;
    this.flush();
  };
  private readonly flushSoon = () => {
    this.flushSoonScheduled = false;
    this.flush();
  };

  constructor(readonly dir: string) {}

  open(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    this.acquireLock();
    const existing = this.segments();
    this.closedBytes = existing.reduce((n, s) => n + fs.statSync(s.path).size, 0);
    this.activeSeq = (existing.at(-1)?.seq ?? 0) + 1;
    this.openActive();
  }

  /**
   * Queues one record for this turn's write. `onWritten` is called once the
   * record is in the file (null), or with the error if the write failed; the
   * record then stays queued and goes with the next write.
   *
   * `alone` says that no other request is in flight, so nothing can join the
   * batch: the write then goes right after the caller's current step (a
   * microtask) instead of at the end of the event-loop turn, which would only
   * add the rest of the turn to this request's latency.
   */
  append(record: UsageRecord, onWritten?: (err: Error | null) => void, alone = false): void {
    if (this.fd === undefined) throw new Error('metering journal is not open');
    this.queued.push(`${JSON.stringify(record)}\n`);
    if (onWritten) this.waiting.push(onWritten);
    if (alone) {
      if (!this.flushSoonScheduled) {
        this.flushSoonScheduled = true;
        queueMicrotask(this.flushSoon);
      }
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Writes every queued record now (also run by rotate and close). */
  flush(): void {
    if (this.queued.length === 0 || this.fd === undefined) return;
    const waiting = this.waiting;
    this.waiting = [];
    let failure: Error | null = null;
    try {
      this.activeBytes += fs.writeSync(this.fd, this.queued.length === 1 ? this.queued[0]! : this.queued.join(''));
      this.queued = [];
    } catch (err) {
      failure = err as Error;
    }
    for (const done of waiting) done(failure);
  }

  /** Records queued and not yet written (a metric, and a test's view of the queue). */
  queuedRecords(): number {
    return this.queued.length;
  }

  /** Closes the active segment if it holds anything and starts a new one. */
  rotate(): void {
    this.flush();
    if (this.fd === undefined || this.activeBytes === 0) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.closedBytes += this.activeBytes;
    this.activeSeq += 1;
    this.openActive();
  }

  /** Closed segments, oldest first: what is waiting to reach the database. */
  closedSegments(): { seq: number; path: string }[] {
    return this.segments().filter((s) => s.seq !== this.activeSeq);
  }

  /**
   * Reads a closed segment. A torn last line (a crash in the middle of a
   * write) is skipped: its request never finished being recorded. Any other
   * unreadable line is counted, never silently dropped.
   */
  readSegment(file: string): { records: UsageRecord[]; unreadable: number } {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const records: UsageRecord[] = [];
    let unreadable = 0;
    lines.forEach((line, i) => {
      if (line === '') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        if (i !== lines.length - 1) unreadable++;
        return;
      }
      // A line that is JSON but not a record object (a damaged file) would otherwise stop the batcher on every attempt.
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) records.push(parsed as UsageRecord);
      else unreadable++;
    });
    return { records, unreadable };
  }

  removeSegment(file: string): void {
    const size = fs.statSync(file).size;
    fs.rmSync(file);
    this.closedBytes = Math.max(0, this.closedBytes - size);
  }

  /** Bytes not yet moved to the database (a metric: it grows during an outage). */
  pendingBytes(): number {
    return this.closedBytes + this.activeBytes;
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
      if (this.activeBytes === 0) fs.rmSync(this.segmentPath(this.activeSeq), { force: true });
    }
    fs.rmSync(path.join(this.dir, 'LOCK'), { force: true });
  }

  private openActive(): void {
    this.fd = fs.openSync(this.segmentPath(this.activeSeq), 'a');
    this.activeBytes = 0;
  }

  private segmentPath(seq: number): string {
    return path.join(this.dir, `segment-${String(seq).padStart(12, '0')}.jsonl`);
  }

  private segments(): { seq: number; path: string }[] {
    return fs
      .readdirSync(this.dir)
      .map((f) => SEGMENT.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ seq: Number(m[1]), path: path.join(this.dir, m[0]) }))
      .sort((a, b) => a.seq - b.seq);
  }

  /** One live owner per directory; a lock left by a dead process is taken over. */
  private acquireLock(): void {
    const lock = path.join(this.dir, 'LOCK');
    try {
      const pid = Number(fs.readFileSync(lock, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new JournalLockedError(
          `metering journal ${this.dir} is in use by process ${pid}; give each gateway instance its own GATEWAY_INSTANCE_ID or DATA_DIR`,
        );
      }
    } catch (err) {
      if (err instanceof JournalLockedError) throw err;
    }
    fs.writeFileSync(lock, String(process.pid));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
