import type { Db } from '../db/knex';
import type { Logger } from '../logger';

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
 * Security events, written in batches so that a flood of bad requests costs
 * one insert per interval, not one per request. The queue is bounded: under a
 * flood beyond it, the count of dropped events is logged instead.
 */
export class SecurityEventSink {
  private queue: (SecurityEvent & { occurredAt: Date })[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly intervalMs = 1_000,
    private readonly maxQueue = 10_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  record(event: SecurityEvent): void {
    if (this.queue.length >= this.maxQueue) {
      this.dropped++;
      return;
    }
    this.queue.push({ ...event, occurredAt: new Date() });
  }

  async flush(): Promise<void> {
    if (this.dropped) {
      this.logger.warn({ dropped: this.dropped }, 'security events dropped: queue full');
      this.dropped = 0;
    }
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      const db = this.db;
      await db('security_events').insert(
        batch.map((e) => ({
          occurred_at: e.occurredAt,
          kind: e.kind,
          reason: e.reason,
          account_id: e.accountId,
          api_key_id: e.apiKeyId,
          request_id: e.requestId,
          source_ip: e.sourceIp,
          user_agent: e.userAgent?.slice(0, 512) ?? null,
          source: 'gateway',
        })),
      )
        // A retried batch may have been written before its answer was lost.
        .onConflict(db.raw('(request_id, kind) WHERE request_id IS NOT NULL'))
        .ignore();
    } catch (err) {
      // Put them back (bounded) so a database blip does not lose them.
      this.queue = [...batch, ...this.queue].slice(0, this.maxQueue);
      this.logger.warn({ err, queued: this.queue.length }, 'security events not written yet');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
