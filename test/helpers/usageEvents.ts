import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/knex';

/** The fields a test cares about; everything else gets a plain default. */
export type UsageEventFields = Record<string, unknown> & { account_id: string; occurred_at: Date | string };

/** A usage_events row as the gateway's batcher would have written it, with the test's fields over the defaults. */
export function usageEvent(fields: UsageEventFields): Record<string, unknown> {
  return {
    request_id: `req-${randomUUID()}`,
    finished_at: fields.occurred_at,
    api_key_id: randomUUID(),
    endpoint: 'chat.completions',
    model: 'm',
    provider: 'p',
    status_code: 200,
    stream: false,
    input_tokens: 10,
    output_tokens: 5,
    cost: '0.01',
    latency_ms: 1,
    gateway_instance: 'test',
    ...fields,
  };
}

/** Inserts usage events, creating their day partitions (UTC) first. */
export async function insertUsageEvents(db: Db, rows: UsageEventFields[]): Promise<void> {
  for (const day of new Set(rows.map((r) => new Date(r.occurred_at).toISOString().slice(0, 10)))) {
    await db.raw(`SELECT ensure_usage_events_partition(?::date)`, [day]);
  }
  await db('usage_events').insert(rows.map(usageEvent));
}
