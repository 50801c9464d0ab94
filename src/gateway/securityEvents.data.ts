import type { Db } from '../db/knex';
import type { SecurityEventRow } from './securityEvents';

/**
 * Writes groups of security events in one statement. A row is named by (request_id, kind): writing it again keeps
 * the larger count, so a retried or repeated write changes nothing.
 */
export async function upsertSecurityEvents(db: Db, rows: SecurityEventRow[]): Promise<void> {
  await db('security_events')
    .insert(rows)
    .onConflict(db.raw('(request_id, kind) WHERE request_id IS NOT NULL'))
    .merge({
      count: db.raw('GREATEST(security_events.count, excluded.count)'),
      // The prefix once a second address joined the group; a source erased meanwhile stays erased.
      source_ip: db.raw('CASE WHEN security_events.source_ip IS NULL THEN NULL ELSE excluded.source_ip END'),
      last_occurred_at: db.raw('GREATEST(security_events.last_occurred_at, excluded.last_occurred_at)'),
    });
}
