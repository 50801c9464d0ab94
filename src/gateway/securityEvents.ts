import type { Logger } from '../logger';
import { addressKey } from './authLimiter';

export interface SecurityEvent {
  kind: 'auth_failed' | 'rate_limited';
  reason: string;
  accountId: string | null;
  apiKeyId: string | null;
  requestId: string;
  sourceIp: string | null;
  userAgent: string | null;
}

/**
 * One row's worth: the events of one kind, reason, address (IPv6: /64) and key within one window.
 * Its requestId is the window's first request: it names the row (see flush).
 */
interface Tally extends SecurityEvent {
  windowStart: number;
  firstAt: number;
  lastAt: number;
  count: number;
  /** The count the database has (as far as this process knows). */
  written: number;
}

/** A security_events row as a flush writes it (src/gateway/securityEvents.data.ts). */
export interface SecurityEventRow {
  occurred_at: Date;
  last_occurred_at: Date;
  window_start: Date;
  count: number;
  kind: SecurityEvent['kind'];
  reason: string;
  account_id: string | null;
  api_key_id: string | null;
  request_id: string;
  source_ip: string | null;
  user_agent: string | null;
  source: 'gateway';
}

const ROWS_PER_STATEMENT = 500;

/**
 * Security events, counted per kind, reason, source address (an IPv6 one by
 * its /64, as the auth limiter keys it), key and window
 * (GATEWAY_SECURITY_EVENT_WINDOW_MS) in memory and written as one row per
 * such group with its count, so a flood of bad requests from one address adds
 * one row per window, not one per request.
 *
 * Each row is named by the first request of its group (`request_id`, unique
 * with `kind`), and a flush writes the group's whole count so far, keeping the
 * larger of that and what is stored: a retried write (its answer lost) or a
 * repeated one changes nothing. Several gateway instances each write their own
 * rows for the same address and window.
 *
 * Memory is bounded: beyond `maxGroups` open groups, events are only counted
 * as dropped and the count is logged.
 */
export class SecurityEventSink {
  private readonly groups = new Map<string, Tally>();
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly writeRows: (rows: SecurityEventRow[]) => Promise<void>,
    private readonly logger: Logger,
    private readonly intervalMs = 1_000,
    private readonly maxGroups = 10_000,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  record(event: SecurityEvent): void {
    const t = this.now();
    const windowStart = t - (t % this.windowMs);
    // Addresses as the auth limiter sees them (IPv6 by /64): an attacker who holds a /64 is one client there
    // and must be one row here, not one row per address it rotates through.
    const source = event.sourceIp === null ? null : addressKey(event.sourceIp);
    const key = `${event.kind}\u0000${event.reason}\u0000${source ?? ''}\u0000${event.apiKeyId ?? ''}\u0000${windowStart}`;
    const group = this.groups.get(key);
    if (group) {
      group.count++;
      group.lastAt = t;
      // A row that counts several addresses names their prefix, not the first of them.
      if (group.sourceIp !== event.sourceIp) group.sourceIp = source;
      return;
    }
    if (this.groups.size >= this.maxGroups) {
      this.dropped++;
      return;
    }
    this.groups.set(key, {
      kind: event.kind,
      reason: event.reason,
      accountId: event.accountId,
      apiKeyId: event.apiKeyId,
      requestId: event.requestId,
      sourceIp: event.sourceIp,
      userAgent: event.userAgent?.slice(0, 512) ?? null,
      windowStart,
      firstAt: t,
      lastAt: t,
      count: 1,
      written: 0,
    });
  }

  /** Writes every group with events not yet written; forgets groups of ended windows once written. */
  flush(): Promise<void> {
    // One flush at a time: the timer and stop() may overlap.
    this.flushing ??= this.write().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.dropped) {
      this.logger.warn({ dropped: this.dropped }, 'security events dropped: too many open groups');
      this.dropped = 0;
    }
    const due = [...this.groups.values()].filter((g) => g.count > g.written).map((g) => ({ g, count: g.count, lastAt: g.lastAt }));
    try {
      for (let i = 0; i < due.length; i += ROWS_PER_STATEMENT) {
        const part = due.slice(i, i + ROWS_PER_STATEMENT);
        await this.writeRows(
          part.map(({ g, count, lastAt }) => ({
            occurred_at: new Date(g.firstAt),
            last_occurred_at: new Date(lastAt),
            window_start: new Date(g.windowStart),
            count,
            kind: g.kind,
            reason: g.reason,
            account_id: g.accountId,
            api_key_id: g.apiKeyId,
            request_id: g.requestId,
            source_ip: g.sourceIp,
            user_agent: g.userAgent,
            source: 'gateway',
          })),
        );
        for (const { g, count } of part) g.written = Math.max(g.written, count);
      }
    } catch (err) {
      // Unwritten groups stay due and go with the next flush.
      this.logger.warn({ err, due: due.length }, 'security events not written yet');
    }
    const openFrom = this.now() - this.windowMs;
    for (const [key, g] of this.groups) if (g.windowStart <= openFrom && g.written >= g.count) this.groups.delete(key);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
