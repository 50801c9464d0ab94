import type { DbOrTrx } from '../db/knex';
import type { ConsoleRole } from './customerConsole.rules';

/** The customer console's queries: users who sign in, their sessions and sign-ins, and what the overview shows. */

export interface SignInCandidate {
  id: string;
  account_id: string;
  name: string;
  console_role: ConsoleRole;
  password_hash: string;
}

/** Users with this email (case-insensitive) and a password, not erased, in accounts that are not closed; oldest first, at most `limit`. */
export async function signInCandidates(db: DbOrTrx, email: string, limit: number): Promise<SignInCandidate[]> {
  return db('users as u')
    .join('accounts as a', 'a.id', 'u.account_id')
    .whereRaw('lower(u.email) = lower(?)', [email])
    .whereNotNull('u.password_hash')
    .whereNull('u.erased_at')
    .whereNull('u.console_removed_at')
    .whereNot('a.status', 'closed')
    .orderBy('u.created_at')
    .limit(limit)
    .select('u.id', 'u.account_id', 'u.name', 'u.console_role', 'u.password_hash');
}

/** Sets a user's password hash; the number of rows changed (0: no such user). */
export async function setPasswordHash(db: DbOrTrx, userId: string, hash: string): Promise<number> {
  return db('users').where({ id: userId }).update({ password_hash: hash, updated_at: db.fn.now() });
}

export async function userHasPassword(db: DbOrTrx, userId: string): Promise<boolean> {
  return !!(await db('users').where({ id: userId }).whereNotNull('password_hash').first('id'));
}

export interface CustomerSessionRow {
  id_hash: string;
  user_id: string;
  account_id: string;
  csrf_token: string;
  created_at: Date;
  expires_at: Date;
  user_agent: string | null;
  ip_prefix: string | null;
}

export async function insertSession(db: DbOrTrx, row: Omit<CustomerSessionRow, 'created_at'> & { pending_second_factor?: boolean }): Promise<void> {
  await db('customer_sessions').insert(row);
}

/** The open, unexpired session with its user and account as they are now (an erased user or a closed account ends it). */
export async function findOpenSession(db: DbOrTrx, idHash: string, now: Date) {
  return db('customer_sessions as s')
    .join('users as u', 'u.id', 's.user_id')
    .join('accounts as a', 'a.id', 's.account_id')
    .where({ 's.id_hash': idHash })
    .whereRaw('u.account_id = s.account_id')
    .whereNull('u.erased_at')
    // A removed member's session ends at once, even one the removal's transaction did not see.
    .whereNull('u.console_removed_at')
    .whereNot('a.status', 'closed')
    .whereNull('s.revoked_at')
    .where('s.expires_at', '>', now)
    // A session still waiting for its second factor is not signed in (findPendingSession).
    .where('s.pending_second_factor', false)
    .first('s.id_hash', 's.user_id', 's.account_id', 's.csrf_token', 'u.name', 'u.email', 'u.console_role', 'u.password_hash', 'a.name as account_name', 'a.status as account_status') as Promise<
    | {
        id_hash: string;
        user_id: string;
        account_id: string;
        csrf_token: string;
        name: string;
        email: string;
        console_role: ConsoleRole;
        password_hash: string | null;
        account_name: string;
        account_status: string;
      }
    | undefined
  >;
}

/** A session that passed the password or a sign-in link and waits for the second factor: its user and account, or undefined. */
export async function findPendingSession(db: DbOrTrx, idHash: string, now: Date): Promise<{ id_hash: string; user_id: string; account_id: string; csrf_token: string; expires_at: Date } | undefined> {
  return db('customer_sessions as s')
    .join('users as u', 'u.id', 's.user_id')
    .join('accounts as a', 'a.id', 's.account_id')
    .where({ 's.id_hash': idHash, 's.pending_second_factor': true })
    .whereRaw('u.account_id = s.account_id')
    .whereNull('u.erased_at')
    .whereNull('u.console_removed_at')
    .whereNot('a.status', 'closed')
    .whereNull('s.revoked_at')
    .where('s.expires_at', '>', now)
    .first('s.id_hash', 's.user_id', 's.account_id', 's.csrf_token', 's.expires_at');
}

/** Ends a pending session, if still pending and open (false: someone else promoted or ended it first). */
export async function endPendingSession(db: DbOrTrx, idHash: string): Promise<boolean> {
  return (await db('customer_sessions').where({ id_hash: idHash, pending_second_factor: true }).whereNull('revoked_at').update({ revoked_at: db.fn.now() })) === 1;
}

export async function revokeSession(db: DbOrTrx, idHash: string): Promise<void> {
  await db('customer_sessions').where({ id_hash: idHash }).whereNull('revoked_at').update({ revoked_at: db.fn.now() });
}

/** Ends every open session of the user; the number ended. */
export async function revokeUserSessions(db: DbOrTrx, userId: string): Promise<number> {
  return db('customer_sessions').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: db.fn.now() });
}

/** The user's open, unexpired sessions, newest first. */
export async function openSessionsOf(db: DbOrTrx, userId: string, now: Date, limit: number): Promise<CustomerSessionRow[]> {
  return db('customer_sessions').where({ user_id: userId, pending_second_factor: false }).whereNull('revoked_at').where('expires_at', '>', now).orderBy('created_at', 'desc').limit(limit);
}

export async function insertLoginRecord(db: DbOrTrx, row: { user_id: string; source_ip: string | null; user_agent: string | null }): Promise<void> {
  await db('login_records').insert({ ...row, success: true });
}

/** The user's recent sign-ins, newest first. */
export async function recentLogins(db: DbOrTrx, userId: string, limit: number): Promise<{ at: Date; source_ip: string | null; user_agent: string | null }[]> {
  return db('login_records').where({ user_id: userId, success: true }).orderBy('at', 'desc').limit(limit).select('at', db.raw('host(source_ip) AS source_ip'), 'user_agent');
}

export async function insertFailedSignIn(db: DbOrTrx, row: { reason: string; account_id: string | null; source_ip: string | null; user_agent: string | null }): Promise<void> {
  await db('security_events').insert({ kind: 'customer_login_failed', source: 'admin', ...row });
}

export async function accountSummary(db: DbOrTrx, accountId: string): Promise<{ id: string; name: string; plan: string; currency: string; status: string } | undefined> {
  return db('accounts').where({ id: accountId }).first('id', 'name', 'plan', 'currency', 'status');
}

/** Settled usage cost of the account in [from, to). */
export async function spendBetween(db: DbOrTrx, accountId: string, from: Date, to: Date): Promise<string> {
  const row = await db('usage_hourly').where({ account_id: accountId }).where('hour', '>=', from).where('hour', '<', to).first(db.raw('coalesce(sum(cost), 0)::text AS cost'));
  return (row as { cost: string } | undefined)?.cost ?? '0';
}

/** Settled usage cost per UTC day and model since `since`, oldest day first. */
export async function dailySpendByModel(db: DbOrTrx, accountId: string, since: Date): Promise<{ day: string; model: string; requests: number; cost: string }[]> {
  return db('usage_hourly')
    .where({ account_id: accountId })
    .where('hour', '>=', since)
    .groupByRaw('1, 2')
    .orderByRaw('1, 2')
    .select(db.raw(`to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day`), 'model', db.raw('sum(requests)::int AS requests'), db.raw('sum(cost)::text AS cost'));
}
