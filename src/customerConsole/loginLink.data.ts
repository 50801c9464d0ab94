import { claimOutboxEmail, markOutboxEmailSent } from '../notify/outbox.data';
import type { DbOrTrx, Trx } from '../db/knex';

/** One-time sign-in links' queries: who may get one, the links (only the token's hash) and their queued emails. */

/** The users an address may get a link for: with that email (case-insensitive), not erased, not removed from the console, in accounts that are not closed; oldest first, at most `limit`. */
export async function linkRecipients(db: DbOrTrx, email: string, limit: number): Promise<{ id: string; email: string; account_name: string }[]> {
  return db('users as u')
    .join('accounts as a', 'a.id', 'u.account_id')
    .whereRaw('lower(u.email) = lower(?)', [email])
    .whereNull('u.erased_at')
    .whereNull('u.console_removed_at')
    .whereNot('a.status', 'closed')
    .orderBy('u.created_at')
    .limit(limit)
    .select('u.id', 'u.email', 'a.name as account_name');
}

export async function insertLoginLink(db: DbOrTrx, row: { token_hash: string; user_id: string; expires_at: Date }): Promise<void> {
  await db('customer_login_links').insert(row);
}

/** The link with this hash, locked, with what decides whether it may still sign in. */
export async function loginLinkForUpdate(trx: Trx, tokenHash: string) {
  return trx('customer_login_links as l')
    .join('users as u', 'u.id', 'l.user_id')
    .join('accounts as a', 'a.id', 'u.account_id')
    .where({ 'l.token_hash': tokenHash })
    .forUpdate('l')
    .first('l.user_id', 'u.account_id', 'l.expires_at', 'l.used_at', 'u.erased_at', 'u.console_removed_at', 'a.status as account_status') as Promise<
    | { user_id: string; account_id: string; expires_at: Date; used_at: Date | null; erased_at: Date | null; console_removed_at: Date | null; account_status: string }
    | undefined
  >;
}

export async function markLoginLinkUsed(trx: Trx, tokenHash: string): Promise<boolean> {
  return (await trx('customer_login_links').where({ token_hash: tokenHash }).whereNull('used_at').update({ used_at: trx.fn.now() })) === 1;
}

export async function enqueueLinkEmail(db: DbOrTrx, m: { key: string; recipient: string; subject: string; body: string }): Promise<void> {
  await db('notification_outbox').insert({ idempotency_key: m.key, recipient: m.recipient, subject: m.subject, body: m.body }).onConflict('idempotency_key').ignore();
}

/** A queued sign-in link email of these keys, locked for the caller and skipped by any other sender meanwhile; never another outbox message. */
export const claimLinkEmail = (trx: Trx, keys: readonly string[]) => claimOutboxEmail(trx, 'customer-login-link:', { keys });

/** Marks a message sent with its body (the link) cleared, as for every outbox message. */
export const markLinkEmailSent = (trx: Trx, id: string) => markOutboxEmailSent(trx, id);

/** A link whose email could not be sent: the link and its message go, so no usable token stays behind in the outbox. */
export async function dropUnsentLink(db: DbOrTrx, key: string, tokenHash: string): Promise<void> {
  await db('notification_outbox').where({ idempotency_key: key }).whereNull('sent_at').delete();
  await db('customer_login_links').where({ token_hash: tokenHash }).whereNull('used_at').delete();
}
