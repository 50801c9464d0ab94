import { claimOutboxEmail, markOutboxEmailSent } from '../notify/outbox.data';
import type { DbOrTrx, Trx } from '../db/knex';
import type { ConsoleRole } from './customerConsole.rules';

/** Members of an account and their invitations (customer_invitations, users.console_removed_at). */

export interface MemberRow {
  id: string;
  name: string;
  email: string;
  console_role: ConsoleRole;
  has_password: boolean;
  last_sign_in: Date | null;
  two_step: boolean;
}

/** The account's members: users not erased and not removed, by email; at most `limit`. */
export async function listMembers(db: DbOrTrx, accountId: string, limit: number): Promise<MemberRow[]> {
  return db('users as u')
    .where({ 'u.account_id': accountId })
    .whereNull('u.erased_at')
    .whereNull('u.console_removed_at')
    .orderByRaw('lower(u.email), u.id')
    .limit(limit)
    .select(
      'u.id',
      'u.name',
      'u.email',
      'u.console_role',
      db.raw('(u.password_hash IS NOT NULL) AS has_password'),
      db.raw('(SELECT max(l.at) FROM login_records l WHERE l.user_id = u.id AND l.success) AS last_sign_in'),
      db.raw('EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL) AS two_step'),
    );
}

export interface InvitationRow {
  id: string;
  account_id: string;
  email: string;
  console_role: ConsoleRole;
  created_at: Date;
  expires_at: Date;
  accepted_at: Date | null;
  revoked_at: Date | null;
}

/** Invitations not accepted or revoked (expired ones too: they hold the address until revoked or replaced), newest first. */
export async function unansweredInvitations(db: DbOrTrx, accountId: string, limit: number): Promise<InvitationRow[]> {
  return db('customer_invitations')
    .where({ account_id: accountId })
    .whereNull('accepted_at')
    .whereNull('revoked_at')
    .orderBy('created_at', 'desc')
    .limit(limit)
    .select('id', 'account_id', 'email', 'console_role', 'created_at', 'expires_at', 'accepted_at', 'revoked_at');
}

export async function countOpenInvitations(db: DbOrTrx, accountId: string, now: Date): Promise<number> {
  const row = await db('customer_invitations').where({ account_id: accountId }).whereNull('accepted_at').whereNull('revoked_at').where('expires_at', '>', now).first(db.raw('count(*)::int AS n'));
  return (row as { n: number } | undefined)?.n ?? 0;
}

/** Locks the account: member changes of one account run one at a time, so two owners cannot demote each other to none. */
export async function lockAccount(trx: Trx, accountId: string): Promise<{ id: string; name: string; status: string } | undefined> {
  return trx('accounts').where({ id: accountId }).forUpdate().first('id', 'name', 'status');
}

/** An active member (not erased, not removed) of the account, or undefined: a user of another account is never found. */
export async function findMember(db: DbOrTrx, accountId: string, userId: string): Promise<{ id: string; name: string; email: string; console_role: ConsoleRole } | undefined> {
  return db('users').where({ id: userId, account_id: accountId }).whereNull('erased_at').whereNull('console_removed_at').first('id', 'name', 'email', 'console_role');
}

/** The account's user with this email (case-insensitive), removed or not; erased users carry another address. */
export async function userByEmail(db: DbOrTrx, accountId: string, email: string): Promise<{ id: string; console_removed_at: Date | null; erased_at: Date | null } | undefined> {
  return db('users').where({ account_id: accountId }).whereRaw('lower(email) = lower(?)', [email]).first('id', 'console_removed_at', 'erased_at');
}

export async function countOwners(db: DbOrTrx, accountId: string): Promise<number> {
  const row = await db('users').where({ account_id: accountId, console_role: 'owner' }).whereNull('erased_at').whereNull('console_removed_at').first(db.raw('count(*)::int AS n'));
  return (row as { n: number } | undefined)?.n ?? 0;
}

/** Revokes the address's unanswered invitation if it has expired (it still holds the one-open-per-address slot). */
export async function revokeExpiredInvitation(trx: Trx, accountId: string, email: string, now: Date): Promise<void> {
  await trx('customer_invitations')
    .where({ account_id: accountId })
    .whereRaw('lower(email) = lower(?)', [email])
    .whereNull('accepted_at')
    .whereNull('revoked_at')
    .where('expires_at', '<=', now)
    .update({ revoked_at: trx.fn.now() });
}

export async function openInvitationFor(db: DbOrTrx, accountId: string, email: string): Promise<{ id: string } | undefined> {
  return db('customer_invitations').where({ account_id: accountId }).whereRaw('lower(email) = lower(?)', [email]).whereNull('accepted_at').whereNull('revoked_at').first('id');
}

export async function insertInvitation(
  trx: Trx,
  row: { account_id: string; email: string; console_role: ConsoleRole; token_hash: string; invited_by: string; expires_at: Date },
): Promise<{ id: string }> {
  const [r] = await trx('customer_invitations').insert(row).returning(['id']);
  return r as { id: string };
}

/** Revokes an unanswered invitation of the account; the number revoked (0: none such in this account). */
export async function revokeInvitation(trx: Trx, accountId: string, id: string): Promise<number> {
  return trx('customer_invitations').where({ id, account_id: accountId }).whereNull('accepted_at').whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
}

/** The invitation with this token hash and its account, locked when `trx` is a transaction that asks for it. */
export async function invitationByTokenHash(db: DbOrTrx, tokenHash: string, lock = false) {
  const q = db('customer_invitations as i')
    .join('accounts as a', 'a.id', 'i.account_id')
    .where({ 'i.token_hash': tokenHash })
    .first('i.id', 'i.account_id', 'i.email', 'i.console_role', 'i.expires_at', 'i.accepted_at', 'i.revoked_at', 'a.name as account_name', 'a.status as account_status');
  if (lock) q.forUpdate();
  return q as Promise<(InvitationRow & { account_name: string; account_status: string }) | undefined>;
}

export async function markInvitationAccepted(trx: Trx, id: string, userId: string): Promise<void> {
  await trx('customer_invitations').where({ id }).update({ accepted_at: trx.fn.now(), accepted_user_id: userId });
}

export async function insertMember(trx: Trx, row: { account_id: string; name: string; email: string; console_role: ConsoleRole; password_hash: string }): Promise<string> {
  const [r] = await trx('users').insert(row).returning(['id']);
  return (r as { id: string }).id;
}

/** Lets a removed user in again with the invitation's role and a new password. */
export async function readmitMember(trx: Trx, userId: string, row: { name: string; console_role: ConsoleRole; password_hash: string }): Promise<void> {
  await trx('users')
    .where({ id: userId })
    .whereNotNull('console_removed_at')
    .update({ ...row, console_removed_at: null, updated_at: trx.fn.now() });
}

export async function setMemberRole(trx: Trx, userId: string, role: ConsoleRole): Promise<void> {
  await trx('users').where({ id: userId }).update({ console_role: role, updated_at: trx.fn.now() });
}

/**
 * Takes the member's console access away in the caller's transaction: no
 * password, no second factor or recovery codes, no unused sign-in link, no
 * open session. The user row stays (the privacy rules keep and erase it).
 */
export async function removeMember(trx: Trx, userId: string): Promise<void> {
  await trx('users').where({ id: userId }).update({ console_removed_at: trx.fn.now(), password_hash: null, updated_at: trx.fn.now() });
  await trx('user_totp').where({ user_id: userId }).delete();
  await trx('user_recovery_codes').where({ user_id: userId }).delete();
  await trx('customer_login_links').where({ user_id: userId }).whereNull('used_at').update({ used_at: trx.fn.now() });
  await trx('customer_sessions').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
}

export async function enqueueInvitationEmail(trx: Trx, m: { key: string; recipient: string; subject: string; body: string }): Promise<void> {
  await trx('notification_outbox').insert({ idempotency_key: m.key, recipient: m.recipient, subject: m.subject, body: m.body }).onConflict('idempotency_key').ignore();
}

/** One queued invitation email not sent yet (keys `customer-invitation:%` only), locked and skipped by any other sender. */
export const claimInvitationEmail = (trx: Trx, opts: { keys?: readonly string[] | undefined; queuedBefore?: Date | undefined }) => claimOutboxEmail(trx, 'customer-invitation:', opts);

/** Marks an outbox message sent, its body (which holds the link) cleared. */
export const markInvitationEmailSent = (trx: Trx, id: string) => markOutboxEmailSent(trx, id);
