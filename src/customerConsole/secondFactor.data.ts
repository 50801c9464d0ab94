import type { DbOrTrx } from '../db/knex';

/** Two-step sign-in's queries: a user's sealed TOTP secret and recovery-code hashes, and failed codes as security events. */

export interface TotpRow {
  user_id: string;
  ciphertext: Buffer;
  iv: Buffer;
  auth_tag: Buffer;
  created_at: Date;
  confirmed_at: Date | null;
  last_step: string | number | null;
}

export async function totpOf(db: DbOrTrx, userId: string, opts: { forUpdate?: boolean } = {}): Promise<TotpRow | undefined> {
  const q = db('user_totp').where({ user_id: userId }).first();
  if (opts.forUpdate) q.forUpdate();
  return q as Promise<TotpRow | undefined>;
}

/** A new, unconfirmed secret; replaces an unconfirmed one, never a confirmed one (0 rows: the factor is on already). */
export async function upsertPendingTotp(db: DbOrTrx, userId: string, sealed: { ciphertext: Buffer; iv: Buffer; authTag: Buffer }): Promise<number> {
  const { rowCount } = await db.raw(
    `INSERT INTO user_totp (user_id, ciphertext, iv, auth_tag) VALUES (?, ?, ?, ?)
     ON CONFLICT (user_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, iv = EXCLUDED.iv, auth_tag = EXCLUDED.auth_tag, created_at = now(), last_step = NULL
     WHERE user_totp.confirmed_at IS NULL`,
    [userId, sealed.ciphertext, sealed.iv, sealed.authTag],
  );
  return rowCount ?? 0;
}

/** Records the accepted step, only if it is after the last one (a concurrent use of the same code loses); confirms the factor when asked. */
export async function acceptStep(db: DbOrTrx, userId: string, step: number, confirm: boolean): Promise<boolean> {
  const q = db('user_totp')
    .where({ user_id: userId })
    .where((w) => w.whereNull('last_step').orWhere('last_step', '<', step));
  const n = await q.update({ last_step: step, ...(confirm ? { confirmed_at: db.fn.now() } : {}) });
  return n === 1;
}

export async function deleteTotp(db: DbOrTrx, userId: string): Promise<void> {
  await db('user_recovery_codes').where({ user_id: userId }).delete();
  await db('user_totp').where({ user_id: userId }).delete();
}

/** Replaces the user's recovery codes with these hashes. */
export async function replaceRecoveryCodes(db: DbOrTrx, userId: string, hashes: readonly string[]): Promise<void> {
  await db('user_recovery_codes').where({ user_id: userId }).delete();
  await db('user_recovery_codes').insert(hashes.map((code_hash) => ({ user_id: userId, code_hash })));
}

/** Spends an unused recovery code; false when there is none with this hash (or it was spent meanwhile). */
export async function spendRecoveryCode(db: DbOrTrx, userId: string, hash: string): Promise<boolean> {
  return (await db('user_recovery_codes').where({ user_id: userId, code_hash: hash }).whereNull('used_at').update({ used_at: db.fn.now() })) === 1;
}

export async function unusedRecoveryCodes(db: DbOrTrx, userId: string): Promise<number> {
  const row = (await db('user_recovery_codes').where({ user_id: userId }).whereNull('used_at').count<{ n: string }[]>('* as n'))[0];
  return Number(row?.n ?? 0);
}

export async function insertSecondFactorFailure(db: DbOrTrx, row: { reason: string; account_id: string; source_ip: string | null; user_agent: string | null }): Promise<void> {
  await db('security_events').insert({ kind: 'customer_second_factor_failed', source: 'admin', ...row });
}

/** Whether the user's sign-in asks for a second factor (a confirmed TOTP factor). */
export async function hasConfirmedTotp(db: DbOrTrx, userId: string): Promise<boolean> {
  return !!(await db('user_totp').where({ user_id: userId }).whereNotNull('confirmed_at').first('user_id'));
}

export async function passwordHashOf(db: DbOrTrx, userId: string): Promise<string | null> {
  return ((await db('users').where({ id: userId }).first('password_hash')) as { password_hash: string | null } | undefined)?.password_hash ?? null;
}

/** The user's email: the label authenticator apps show for the factor. */
export async function userEmailOf(db: DbOrTrx, userId: string): Promise<string | null> {
  return ((await db('users').where({ id: userId }).first('email')) as { email: string } | undefined)?.email ?? null;
}
