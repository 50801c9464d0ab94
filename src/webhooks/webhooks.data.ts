import type { DbOrTrx, Trx } from '../db/knex';

/** Queries of webhook_endpoints and webhook_deliveries (migrations/20261204210300_webhooks.ts). */

export interface EndpointRow {
  id: string;
  account_id: string;
  url: string;
  event_types: string[];
  secret_ciphertext: Buffer;
  secret_iv: Buffer;
  secret_tag: Buffer;
  secret_prefix: string;
  status: 'active' | 'disabled';
  consecutive_failures: number;
  failing_since: Date | null;
  disabled_reason: 'failures' | 'staff' | 'account' | null;
  created_at: Date;
  disabled_at: Date | null;
}

export interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  account_id: string;
  event_type: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  last_response_code: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  next_attempt_at: Date | null;
  generation: number;
  started_at: Date | null;
  created_at: Date;
}

export interface EventRow {
  id: string;
  account_id: string;
  type: string;
  occurred_at: Date;
  data: Record<string, unknown>;
}

export async function insertEndpoint(
  db: DbOrTrx,
  row: Pick<EndpointRow, 'id' | 'account_id' | 'url' | 'event_types' | 'secret_ciphertext' | 'secret_iv' | 'secret_tag' | 'secret_prefix'>,
): Promise<EndpointRow> {
  const [out] = await db<EndpointRow>('webhook_endpoints').insert(row).returning('*');
  return out!;
}

export async function findEndpoint(db: DbOrTrx, id: string): Promise<EndpointRow | undefined> {
  return db<EndpointRow>('webhook_endpoints').where({ id }).first();
}

/** Serialises registrations of one account, so the per-account bound holds under concurrent requests. */
export async function lockAccountEndpoints(trx: Trx, accountId: string): Promise<void> {
  await trx.raw(`SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints:' || ?))`, [accountId]);
}

export async function countEndpoints(db: DbOrTrx, accountId: string): Promise<number> {
  const row = await db('webhook_endpoints').where({ account_id: accountId }).count<{ count: string }[]>('* as count').first();
  return Number(row?.count ?? 0);
}

export async function listEndpoints(db: DbOrTrx, accountId: string, limit: number): Promise<EndpointRow[]> {
  return db<EndpointRow>('webhook_endpoints').where({ account_id: accountId }).orderBy([{ column: 'created_at' }, { column: 'id' }]).limit(limit);
}

export async function enableEndpoint(db: DbOrTrx, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db<EndpointRow>('webhook_endpoints')
    .where({ id })
    .update({ status: 'active', disabled_at: null, disabled_reason: null, consecutive_failures: 0, failing_since: null })
    .returning('*');
  return row;
}

/** Disables an active endpoint; undefined when it was not active (so a caller acts once per disabling). */
export async function disableEndpoint(db: DbOrTrx, id: string, reason: 'failures' | 'staff' | 'account', now: Date): Promise<EndpointRow | undefined> {
  const [row] = await db<EndpointRow>('webhook_endpoints')
    .where({ id, status: 'active' })
    .update({ status: 'disabled', disabled_at: now, disabled_reason: reason })
    .returning('*');
  return row;
}

export async function deleteEndpoint(db: DbOrTrx, id: string): Promise<boolean> {
  return (await db('webhook_endpoints').where({ id }).delete()) > 0;
}

/** One attempt's inputs: the delivery, its endpoint and its event. */
export async function findDeliveryForAttempt(db: DbOrTrx, deliveryId: string): Promise<{ delivery: DeliveryRow; endpoint: EndpointRow; event: EventRow } | undefined> {
  const delivery = await db<DeliveryRow>('webhook_deliveries').where({ id: deliveryId }).first();
  if (!delivery) return undefined;
  const endpoint = await findEndpoint(db, delivery.endpoint_id);
  const event = await db<EventRow>('account_events').select('id', 'account_id', 'type', 'occurred_at', 'data').where({ id: delivery.event_id }).first();
  if (!endpoint || !event) return undefined;
  return { delivery, endpoint, event };
}

export async function findDelivery(db: DbOrTrx, id: string): Promise<DeliveryRow | undefined> {
  return db<DeliveryRow>('webhook_deliveries').where({ id }).first();
}

/** A successful attempt of this generation: the delivery succeeded and the endpoint's failure run ends. */
export async function recordSuccess(trx: Trx, d: { id: string; generation: number; endpointId: string; status: number; now: Date }): Promise<boolean> {
  const n = await trx('webhook_deliveries')
    .where({ id: d.id, generation: d.generation })
    .update({ status: 'succeeded', attempts: trx.raw('attempts + 1'), last_response_code: d.status, last_error: null, last_attempt_at: d.now, next_attempt_at: null });
  if (n === 0) return false;
  await trx('webhook_endpoints').where({ id: d.endpointId }).update({ consecutive_failures: 0, failing_since: null });
  return true;
}

/** A failed attempt: the delivery waits for `nextAttemptAt` (or has failed), and the endpoint's failure run grows. */
export async function recordFailure(
  trx: Trx,
  d: { id: string; generation: number; endpointId: string; status: number | null; error: string; now: Date; nextAttemptAt: Date | null },
): Promise<{ consecutive_failures: number; failing_since: Date | null } | undefined> {
  const n = await trx('webhook_deliveries')
    .where({ id: d.id, generation: d.generation })
    .update({
      status: d.nextAttemptAt ? 'pending' : 'failed',
      attempts: trx.raw('attempts + 1'),
      last_response_code: d.status,
      last_error: d.error,
      last_attempt_at: d.now,
      next_attempt_at: d.nextAttemptAt,
    });
  if (n === 0) return undefined;
  const [row] = await trx('webhook_endpoints')
    .where({ id: d.endpointId })
    .update({ consecutive_failures: trx.raw('consecutive_failures + 1'), failing_since: trx.raw('coalesce(failing_since, ?)', [d.now]) })
    .returning(['consecutive_failures', 'failing_since']);
  return row as { consecutive_failures: number; failing_since: Date | null } | undefined;
}

/** The delivery stops without another attempt (its endpoint was disabled). */
export async function markFailed(db: DbOrTrx, id: string, generation: number, error: string): Promise<void> {
  await db('webhook_deliveries').where({ id, generation, status: 'pending' }).update({ status: 'failed', last_error: error, next_attempt_at: null });
}

/** Deliveries whose current generation has no workflow yet, oldest first (the partial index webhook_deliveries_unstarted). */
export async function unstartedDeliveries(db: DbOrTrx, limit: number): Promise<{ id: string; generation: number }[]> {
  return db('webhook_deliveries').select('id', 'generation').whereNull('started_at').orderBy([{ column: 'created_at' }, { column: 'id' }]).limit(limit);
}

export async function markStarted(db: DbOrTrx, started: { id: string; generation: number }[], now: Date): Promise<void> {
  for (const s of started) {
    await db('webhook_deliveries').where({ id: s.id, generation: s.generation }).whereNull('started_at').update({ started_at: now });
  }
}

/** A new generation of a finished delivery (pending ones are already being tried); undefined when it was pending. */
export async function restartDelivery(db: DbOrTrx, id: string, now: Date): Promise<DeliveryRow | undefined> {
  const [row] = await db<DeliveryRow>('webhook_deliveries')
    .where({ id })
    .whereNot({ status: 'pending' })
    .update({ status: 'pending', generation: db.raw('generation + 1') as unknown as number, started_at: null, next_attempt_at: now, last_error: null })
    .returning('*');
  return row;
}

export interface DeliveryPage {
  accountId?: string | undefined;
  endpointId?: string | undefined;
  status?: string | undefined;
  /** Keyset cursor: rows older than this (created_at, id). */
  before?: { createdAt: Date; id: string } | undefined;
  limit: number;
}

export async function listDeliveries(db: DbOrTrx, q: DeliveryPage): Promise<DeliveryRow[]> {
  const query = db<DeliveryRow>('webhook_deliveries');
  if (q.accountId) query.where({ account_id: q.accountId });
  if (q.endpointId) query.where({ endpoint_id: q.endpointId });
  if (q.status) query.where({ status: q.status as DeliveryRow['status'] });
  if (q.before) query.whereRaw('(created_at, id) < (?, ?)', [q.before.createdAt, q.before.id]);
  return query.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(q.limit);
}

/** Where the account's notices go: its billing address, else its earliest user's. */
export async function accountNoticeAddress(db: DbOrTrx, accountId: string): Promise<string | null> {
  const account = await db('accounts').select('billing_email').where({ id: accountId }).first<{ billing_email: string | null } | undefined>();
  if (account?.billing_email) return account.billing_email;
  const user = await db('users').select('email').where({ account_id: accountId }).orderBy('created_at').first<{ email: string } | undefined>();
  return user?.email ?? null;
}

export async function accountExists(db: DbOrTrx, accountId: string): Promise<boolean> {
  return (await db('accounts').select('id').where({ id: accountId }).first()) !== undefined;
}
