import { createHash, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { hashSecret, issueSecret, looksLike } from '../auth/secrets';
import { systemClock, type Clock } from '../clock';
import type { Db } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { consoleSessionsRepo, signInAttemptsRepo, signInRecordsRepo, staffTokensRepo, staffUsersRepo, type StaffTokenRow } from './staff.data';
import { SESSION_HOURS, sessionRole, STAFF_ROLES, type StaffRole } from './staff.rules';
import { createStaffTokenInput, idInput } from './schemas';
import { validate } from '../shared/validate';

/**
 * Staff: the people and tokens behind the admin API and the console, console
 * sessions and sign-in. The admin API's token check, the console and the CLI
 * all come here.
 *
 * Sessions: the cookie carries a random id; the database keeps its hash, the
 * CSRF token and the expiry. The role is not trusted from the row: every
 * request re-reads the staff user or token behind the session, so a revoked
 * token, a disabled user or a changed role takes effect on the next request.
 */
export interface ConsoleSession {
  role: StaffRole;
  actor: string;
  csrf: string;
  name: string;
}

export type SignIn = { ok: true; role: StaffRole; staffUserId: string | null; staffTokenId: string | null; name: string } | { ok: false };

export interface NewStaffUser {
  email: string;
  name: string;
  role: StaffRole;
  password: string;
}

/** Where a console sign-in came from, for the audit trail. */
export interface SignInSource {
  ip: string | null;
  userAgent: string | null;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An admin cannot change or disable their own access: another admin must, so
 * the console is never left without one by a slip.
 */
function checkTarget(id: string, actor: string) {
  if (!UUID.test(id)) throw new NotFoundError(`staff member ${id} does not exist`);
  if (actor === `staff-user:${id}`) throw new ConflictError('you cannot change your own access; ask another admin');
}

async function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, 12);
}

let dummyHash: Promise<string> | undefined;

export function staffService({ db, clock = systemClock }: { db: Db; clock?: Clock }) {
  const users = staffUsersRepo(db);
  const tokens = staffTokensRepo(db);
  const sessions = consoleSessionsRepo(db);
  const attempts = signInAttemptsRepo(db);
  const records = signInRecordsRepo(db);

  async function revokeSession(id: string): Promise<void> {
    await sessions.revoke(sha(id));
  }

  return {
    /** The active staff token with this secret (bearer token or console sign-in), looked up by hash. */
    async findActiveToken(secret: string): Promise<StaffTokenRow | undefined> {
      return tokens.findActiveByHash(hashSecret(secret));
    },

    listUsers: () => users.list(),
    listRecentTokens: (limit: number) => tokens.listRecent(limit),

    async createUser(input: NewStaffUser) {
      if (!/^[^@\s]+@[^@\s]+$/.test(input.email)) throw new ValidationError('email must be an email address');
      if (!input.name.trim()) throw new ValidationError('name is required');
      if (!['billing', 'compliance', 'admin'].includes(input.role)) throw new ValidationError('role must be billing, compliance or admin');
      if (input.password.length < 12) throw new ValidationError('the password must have at least 12 characters');
      const existing = await users.findIdByEmail(input.email);
      if (existing) throw new ConflictError(`${input.email} is already a staff member`);
      const u = await users.insert({ email: input.email, name: input.name.trim(), role: input.role, password_hash: await hashPassword(input.password) });
      return u as { id: string; email: string; role: StaffRole };
    },

    /** Sessions re-read the user on every request, so a new role applies at once. */
    async setUserRole(id: string, role: string, actor: string): Promise<void> {
      checkTarget(id, actor);
      if (!STAFF_ROLES.includes(role as StaffRole)) throw new ValidationError('role must be billing, compliance or admin');
      const n = await users.setRole(id, role);
      if (!n) throw new NotFoundError(`staff member ${id} does not exist`);
    },

    /** Disabling also ends the user's sessions, in the same transaction. */
    async disableUser(id: string, actor: string): Promise<void> {
      checkTarget(id, actor);
      await db.transaction(async (trx) => {
        const u = await users.disable(id, trx);
        if (!u) throw new NotFoundError(`staff member ${id} does not exist`);
        await sessions.revokeForUser(id, trx);
      });
    },

    /**
     * Counts one attempt for the identity and says whether it may be evaluated:
     * counted and checked in one statement before the password is compared, so
     * concurrent guesses cannot all slip under the limit. The window restarts
     * when it has passed; a successful sign-in clears the count.
     */
    async takeSignInAttempt(identity: string, limit: number, windowS: number): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
      const row = await attempts.take(identity, windowS);
      return row.attempts <= limit ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.max(1, row.retry_after) };
    },

    /** Email and password, or an existing staff token in the password field with no email. */
    async checkCredentials(email: string, secret: string): Promise<SignIn> {
      if (!email && looksLike(secret, 'staff_token')) {
        const t = await tokens.findActiveByHash(hashSecret(secret));
        return t ? { ok: true, role: t.role, staffUserId: null, staffTokenId: t.id, name: `token ${t.id.slice(0, 8)}` } : { ok: false };
      }
      const u = await users.findActiveByEmail(email);
      // Compare against a dummy hash when the user is unknown, so timing does not tell which emails exist.
      dummyHash ??= bcrypt.hash('not a password', 12);
      const ok = await bcrypt.compare(secret, u?.password_hash ?? (await dummyHash));
      return u && ok ? { ok: true, role: u.role, staffUserId: u.id, staffTokenId: null, name: u.name } : { ok: false };
    },

    async recordFailedSignIn(reason: string, from: SignInSource): Promise<void> {
      await records.insertSecurityEvent({ kind: 'console_login_failed', reason, source_ip: from.ip, user_agent: from.userAgent, source: 'admin' });
    },

    /**
     * After a successful sign-in: clears the identity's attempts, opens the
     * session and records the sign-in. Returns the session id for the cookie.
     */
    async openSession(identity: string, s: { role: StaffRole; staffUserId: string | null; staffTokenId: string | null }, from: SignInSource): Promise<string> {
      await attempts.clear(identity);
      const id = randomBytes(32).toString('base64url');
      await sessions.insert({
        id_hash: sha(id),
        staff_user_id: s.staffUserId,
        staff_token_id: s.staffTokenId,
        role: s.role,
        csrf_token: randomBytes(24).toString('base64url'),
        expires_at: new Date(Date.now() + SESSION_HOURS * 3_600_000),
      });
      await records.insertLogin({ staff_user_id: s.staffUserId, staff_token_id: s.staffTokenId, source_ip: from.ip, user_agent: from.userAgent, success: true });
      return id;
    },

    revokeSession,

    /**
     * The session with this cookie id, with the role of its staff user or
     * token as it is now, or null. A session whose user was disabled or whose
     * token was revoked is ended here too, in case it was opened before the
     * revocation committed.
     */
    async resumeSession(id: string): Promise<ConsoleSession | null> {
      const s = await sessions.findOpen(sha(id), new Date());
      if (!s) return null;
      const role = sessionRole(s);
      if (!role) {
        await revokeSession(id);
        return null;
      }
      return {
        role,
        csrf: s.csrf_token,
        actor: s.staff_user_id ? `staff-user:${s.staff_user_id}` : `staff:${s.staff_token_id}`,
        name: s.name ?? `token ${String(s.staff_token_id).slice(0, 8)}`,
      };
    },

    /** Returns the token once; only its hash is stored. */
    async createStaffToken(raw: unknown) {
      const input = validate(createStaffTokenInput, raw);
      const issued = issueSecret('staff_token');
      const row = await tokens.insert({
        role: input.role as StaffRole,
        name: input.name ?? null,
        token_hash: issued.hash,
        prefix: issued.displayPrefix,
      });
      return { id: row.id, role: row.role, name: row.name, prefix: row.prefix, token: issued.secret };
    },

    async revokeStaffToken(raw: unknown) {
      const { id } = validate(idInput, raw);
      const row = await tokens.revoke(id, clock.now());
      if (!row) throw new NotFoundError(`staff token ${id} does not exist`);
      return { id: row.id, role: row.role, prefix: row.prefix, revokedAt: row.revoked_at?.toISOString() ?? null };
    },
  };
}

export type StaffService = ReturnType<typeof staffService>;
