import type { DbOrTrx } from '../db/knex';

/** A queued email of notification_outbox, as a sender reads it. */
export interface OutboxMessage {
  id: string;
  idempotency_key: string;
  recipient: string;
  subject: string;
  body: string;
}

/**
 * Claims one unsent email whose idempotency key starts with `keyPrefix`
 * (a sender only ever takes its own kind of message), oldest first, locked
 * and skipped by any other sender, in the caller's transaction. `keys`
 * narrows it to those messages, `queuedBefore` to ones queued before then.
 */
export async function claimOutboxEmail(trx: DbOrTrx, keyPrefix: string, opts: { keys?: readonly string[] | undefined; queuedBefore?: Date | undefined } = {}): Promise<OutboxMessage | undefined> {
  const q = trx('notification_outbox')
    .whereNull('sent_at')
    .whereRaw('starts_with(idempotency_key, ?)', [keyPrefix])
    .orderBy('id')
    .limit(1)
    .forUpdate()
    .skipLocked()
    .select(trx.raw('id::text AS id'), 'idempotency_key', 'recipient', 'subject', 'body');
  if (opts.keys) q.whereIn('idempotency_key', opts.keys);
  if (opts.queuedBefore) q.where('created_at', '<', opts.queuedBefore);
  return ((await q) as OutboxMessage[])[0];
}

/** Marks an outbox email sent, its body (which may hold a link or personal data) cleared, as for every message. */
export async function markOutboxEmailSent(trx: DbOrTrx, id: string): Promise<void> {
  await trx('notification_outbox').where({ id }).whereNull('sent_at').update({ sent_at: trx.fn.now(), body: '' });
}
