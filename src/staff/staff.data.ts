import type { DbOrTrx } from '../db/knex';
import type { SessionSubject, StaffRole } from './staff.rules';

export interface StaffTokenRow {
  id: string;
  role: StaffRole;
  name: string | null;
  token_hash: string;
  prefix: string;
  created_at: Date;
  revoked_at: Date | null;
}

export interface StaffUserRow {
  id: string;
  email: string;
  name: string;
  role: StaffRole;
  password_hash: string;
  created_at: Date;
  disabled_at: Date | null;
}

export function staffTokensRepo(db: DbOrTrx) {
  return {
    async insert(
      token: Pick<StaffTokenRow, 'role' | 'token_hash' | 'prefix'> & { name?: string | null },
      trx: DbOrTrx = db,
    ): Promise<StaffTokenRow> {
      const [row] = await trx<StaffTokenRow>('staff_tokens').insert(token).returning('*');
      return row!;
    },
    async findActiveByHash(tokenHash: string, trx: DbOrTrx = db): Promise<StaffTokenRow | undefined> {
      return trx<StaffTokenRow>('staff_tokens').where({ token_hash: tokenHash }).whereNull('revoked_at').first();
    },
    /**
     * Revokes the token and, in the same transaction, every console session
     * opened with it: a revoked token must not live on in a browser.
     */
    async revoke(id: string, at: Date, trx: DbOrTrx = db): Promise<StaffTokenRow | undefined> {
      return trx.transaction(async (t) => {
        await t('staff_tokens').where({ id }).whereNull('revoked_at').update({ revoked_at: at });
        await t('console_sessions').where({ staff_token_id: id }).whereNull('revoked_at').update({ revoked_at: at });
        return t<StaffTokenRow>('staff_tokens').where({ id }).first();
      });
    },
    /** The newest tokens, revoked ones included, for the console's staff page. */
    async listRecent(limit: number, trx: DbOrTrx = db): Promise<StaffTokenRow[]> {
      return trx<StaffTokenRow>('staff_tokens').orderBy('created_at', 'desc').limit(limit);
    },
  };
}

/** People who sign in to the console with an email and a password. Emails compare case-insensitively. */
export function staffUsersRepo(db: DbOrTrx) {
  return {
    async list(trx: DbOrTrx = db): Promise<StaffUserRow[]> {
      return trx<StaffUserRow>('staff_users').orderBy('email');
    },
    async findActiveByEmail(email: string, trx: DbOrTrx = db): Promise<StaffUserRow | undefined> {
      return trx<StaffUserRow>('staff_users').whereRaw('lower(email) = lower(?)', [email]).whereNull('disabled_at').first();
    },
    async findIdByEmail(email: string, trx: DbOrTrx = db): Promise<{ id: string } | undefined> {
      return trx('staff_users').whereRaw('lower(email) = lower(?)', [email]).first('id');
    },
    async insert(user: Pick<StaffUserRow, 'email' | 'name' | 'role' | 'password_hash'>, trx: DbOrTrx = db): Promise<Pick<StaffUserRow, 'id' | 'email' | 'role'>> {
      const [u] = await trx('staff_users').insert(user).returning(['id', 'email', 'role']);
      return u;
    },
    /** The number of rows changed: 0 when there is no such user. */
    async setRole(id: string, role: string, trx: DbOrTrx = db): Promise<number> {
      return trx('staff_users').where({ id }).update({ role });
    },
    /** Marks the user disabled (keeping the first time); undefined when there is no such user. */
    async disable(id: string, trx: DbOrTrx = db): Promise<{ id: string } | undefined> {
      const [u] = await trx('staff_users').where({ id }).update({ disabled_at: trx.raw('coalesce(disabled_at, now())') }).returning('id');
      return u;
    },
  };
}

export type ConsoleSessionRow = SessionSubject & { csrf_token: string; staff_token_id: string | null; name: string | null };

/** Console sessions, kept by the hash of the cookie's id. */
export function consoleSessionsRepo(db: DbOrTrx) {
  return {
    async insert(
      row: { id_hash: string; staff_user_id: string | null; staff_token_id: string | null; role: StaffRole; csrf_token: string; expires_at: Date },
      trx: DbOrTrx = db,
    ): Promise<void> {
      await trx('console_sessions').insert(row);
    },
    /** The open, unexpired session with the staff user or token behind it. */
    async findOpen(idHash: string, now: Date, trx: DbOrTrx = db): Promise<ConsoleSessionRow | undefined> {
      return trx('console_sessions as s')
        .leftJoin('staff_users as u', 'u.id', 's.staff_user_id')
        .leftJoin('staff_tokens as t', 't.id', 's.staff_token_id')
        .where({ 's.id_hash': idHash })
        .whereNull('s.revoked_at')
        .where('s.expires_at', '>', now)
        .first('s.csrf_token', 's.staff_user_id', 's.staff_token_id', 'u.name', 'u.role as user_role', 'u.disabled_at', 't.role as token_role', 't.revoked_at as token_revoked_at');
    },
    async revoke(idHash: string, trx: DbOrTrx = db): Promise<void> {
      await trx('console_sessions').where({ id_hash: idHash }).update({ revoked_at: trx.fn.now() });
    },
    async revokeForUser(staffUserId: string, trx: DbOrTrx = db): Promise<void> {
      await trx('console_sessions').where({ staff_user_id: staffUserId }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
    },
  };
}

/** Sign-in attempts per identity (hashed email or token prefix) and window, across addresses and instances. */
export function signInAttemptsRepo(db: DbOrTrx) {
  return {
    /**
     * Drops windows that have passed, then counts one attempt in one statement:
     * concurrent guesses cannot all slip under the limit.
     */
    async take(identity: string, windowS: number, trx: DbOrTrx = db): Promise<{ attempts: number; retry_after: number }> {
      await trx('console_sign_in_attempts').where('window_start', '<', trx.raw(`now() - make_interval(secs => ?)`, [windowS])).delete();
      const { rows } = await trx.raw(
        `INSERT INTO console_sign_in_attempts AS a (identity, window_start, attempts) VALUES (?, now(), 1)
     ON CONFLICT (identity) DO UPDATE SET
       attempts = CASE WHEN a.window_start < now() - make_interval(secs => ?) THEN 1 ELSE a.attempts + 1 END,
       window_start = CASE WHEN a.window_start < now() - make_interval(secs => ?) THEN now() ELSE a.window_start END
     RETURNING attempts, ceil(extract(epoch FROM (window_start + make_interval(secs => ?) - now())))::int AS retry_after`,
        [identity, windowS, windowS, windowS],
      );
      return rows[0] as { attempts: number; retry_after: number };
    },
    async clear(identity: string, trx: DbOrTrx = db): Promise<void> {
      await trx('console_sign_in_attempts').where({ identity }).delete();
    },
  };
}

/** The audit trail of console sign-ins: successful ones in login_records, failed ones as security events. */
export function signInRecordsRepo(db: DbOrTrx) {
  return {
    async insertLogin(
      row: { staff_user_id: string | null; staff_token_id: string | null; source_ip: string | null; user_agent: string | null; success: boolean },
      trx: DbOrTrx = db,
    ): Promise<void> {
      await trx('login_records').insert(row);
    },
    async insertSecurityEvent(
      row: { kind: string; reason: string; source_ip: string | null; user_agent: string | null; source: string },
      trx: DbOrTrx = db,
    ): Promise<void> {
      await trx('security_events').insert(row);
    },
  };
}
