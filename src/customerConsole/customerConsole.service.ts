import { createHash, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { systemClock, type Clock } from '../clock';
import type { Db } from '../db/knex';
import { NotFoundError, ValidationError } from '../errors';
import type { LedgerService } from '../ledger/ledger.service';
import { Money, toAmountString } from '../shared/money.rules';
import { signInAttemptsRepo } from '../staff/staff.data';
import {
  accountSummary,
  dailySpendByModel,
  endPendingSession,
  findOpenSession,
  findPendingSession,
  insertFailedSignIn,
  insertLoginRecord,
  insertSession,
  openSessionsOf,
  recentLogins,
  revokeSession,
  revokeUserSessions,
  setPasswordHash,
  userHasPassword,
  signInCandidates,
  spendBetween,
} from './customerConsole.data';
import { hasConfirmedTotp } from './secondFactor.data';
import { deviceOf, ipPrefix, MAX_USER_AGENT, monthBounds, passwordProblem, SESSION_HOURS, signInInputOk, type ConsoleRole } from './customerConsole.rules';

/**
 * The customer console (issue 26): users of an account sign in with their
 * email and password, and see their own account. Sign-in is throttled and
 * recorded like the staff console's (src/staff/staff.service.ts): per email
 * across addresses in console_sign_in_attempts, failures as security events
 * (never the password or the email), successes as login records.
 *
 * Sessions: the cookie carries a random id; the database keeps its hash, the
 * CSRF token and the expiry. The account is the session's, never the
 * request's; every request re-reads the user and the account, so an erased
 * user or a closed account ends the session.
 */
export interface CustomerSession {
  userId: string;
  accountId: string;
  accountName: string;
  name: string;
  role: ConsoleRole;
  csrf: string;
  idHash: string;
}

export interface SignInSource {
  ip: string | null;
  userAgent: string | null;
}

export type CustomerSignIn = { ok: true; userId: string; accountId: string } | { ok: false };

/** A session that passed the password or a sign-in link and waits for the second factor: it opens only /app/login/second-factor. */
export interface PendingSession {
  userId: string;
  accountId: string;
  csrf: string;
  idHash: string;
}

/** A pending session (password given, second factor not yet) lasts this long. */
export const PENDING_SESSION_S = 600;

/** Users sharing an email across accounts: at most this many are tried with one password. */
const MAX_CANDIDATES = 3;
const BCRYPT_ROUNDS = 12;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let dummyHash: Promise<string> | undefined;

const amount = (v: string) => toAmountString(new Money(v));

/** The per-email throttle key: a hash of the lower-cased email, never the email. Distinct from the staff console's keys. */
export function customerSignInIdentity(email: string): string {
  return `customer:${sha(email.trim().toLowerCase())}`;
}

export interface CustomerConsoleDeps {
  db: Db;
  clock?: Clock;
  /** The ledger's balance view (balance, held, spendable), as the staff console and /v1/credits show it. */
  ledger?: Pick<LedgerService, 'balance'>;
}

export function customerConsoleService({ db, clock = systemClock, ledger }: CustomerConsoleDeps) {
  const attempts = signInAttemptsRepo(db);
  const bound = (ua: string | null) => (ua ? ua.slice(0, MAX_USER_AGENT) : null);

  return {
    /** Counts one attempt for the email and says whether it may be evaluated (see StaffService.takeSignInAttempt). */
    async takeSignInAttempt(email: string, limit: number, windowS: number): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
      const row = await attempts.take(customerSignInIdentity(email), windowS);
      return row.attempts <= limit ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.max(1, row.retry_after) };
    },

    /**
     * The user with this email and password. An email may belong to users of
     * several accounts, each with its own password: the oldest user whose
     * password matches is signed in. Unknown emails are compared against a
     * dummy hash, so timing does not tell which emails exist.
     */
    async checkCredentials(email: string, password: string): Promise<CustomerSignIn> {
      if (!signInInputOk(email, password)) return { ok: false };
      const candidates = await signInCandidates(db, email, MAX_CANDIDATES);
      dummyHash ??= bcrypt.hash('not a password', BCRYPT_ROUNDS);
      if (!candidates.length) {
        await bcrypt.compare(password, await dummyHash);
        return { ok: false };
      }
      for (const u of candidates) {
        if (await bcrypt.compare(password, u.password_hash)) return { ok: true, userId: u.id, accountId: u.account_id };
      }
      return { ok: false };
    },

    async recordFailedSignIn(reason: string, from: SignInSource): Promise<void> {
      await insertFailedSignIn(db, { reason, account_id: null, source_ip: from.ip, user_agent: bound(from.userAgent) });
    },

    /**
     * After a correct password (with its email, whose attempts are cleared) or
     * sign-in link (email null): opens the session. A user with two-step
     * sign-in gets a pending session, which opens only the second-factor form
     * and records no sign-in yet; anyone else is signed in and the sign-in
     * recorded. Returns the cookie's session id.
     */
    async openSession(email: string | null, s: { userId: string; accountId: string }, from: SignInSource): Promise<{ id: string; pending: boolean }> {
      if (email !== null) await attempts.clear(customerSignInIdentity(email));
      const pending = await hasConfirmedTotp(db, s.userId);
      const id = randomBytes(32).toString('base64url');
      await db.transaction(async (trx) => {
        await insertSession(trx, {
          id_hash: sha(id),
          user_id: s.userId,
          account_id: s.accountId,
          csrf_token: randomBytes(24).toString('base64url'),
          expires_at: new Date(clock.now().getTime() + (pending ? PENDING_SESSION_S * 1000 : SESSION_HOURS * 3_600_000)),
          user_agent: bound(from.userAgent),
          ip_prefix: ipPrefix(from.ip),
          pending_second_factor: pending,
        });
        if (!pending) await insertLoginRecord(trx, { user_id: s.userId, source_ip: from.ip, user_agent: bound(from.userAgent) });
      });
      return { id, pending };
    },

    /** The pending (second factor not yet given) session with this cookie id, or null. Never a signed-in session. */
    async resumePendingSession(id: string): Promise<PendingSession | null> {
      if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
      const s = await findPendingSession(db, sha(id), clock.now());
      return s ? { userId: s.user_id, accountId: s.account_id, csrf: s.csrf_token, idHash: s.id_hash } : null;
    },

    /**
     * The second factor was given: the pending session ends and a new one (a
     * new id, so a pending cookie copied earlier opens nothing) is signed in,
     * and the sign-in recorded. Null when the pending session was ended or
     * promoted meanwhile.
     */
    async promoteSession(p: PendingSession, from: SignInSource): Promise<string | null> {
      const id = randomBytes(32).toString('base64url');
      const done = await db.transaction(async (trx) => {
        if (!(await endPendingSession(trx, p.idHash))) return false;
        await insertSession(trx, {
          id_hash: sha(id),
          user_id: p.userId,
          account_id: p.accountId,
          csrf_token: randomBytes(24).toString('base64url'),
          expires_at: new Date(clock.now().getTime() + SESSION_HOURS * 3_600_000),
          user_agent: bound(from.userAgent),
          ip_prefix: ipPrefix(from.ip),
        });
        await insertLoginRecord(trx, { user_id: p.userId, source_ip: from.ip, user_agent: bound(from.userAgent) });
        return true;
      });
      return done ? id : null;
    },

    /** The session with this cookie id, with its user and account as they are now, or null. */
    async resumeSession(id: string): Promise<CustomerSession | null> {
      if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
      const s = await findOpenSession(db, sha(id), clock.now());
      if (!s) return null;
      return { userId: s.user_id, accountId: s.account_id, accountName: s.account_name, name: s.name, role: s.console_role, csrf: s.csrf_token, idHash: s.id_hash };
    },

    /** Signs this session out. */
    async signOut(s: Pick<CustomerSession, 'idHash'>): Promise<void> {
      await revokeSession(db, s.idHash);
    },

    /** Signs the user out everywhere: every open session of the user, this one included. Returns how many ended. */
    async signOutEverywhere(s: Pick<CustomerSession, 'userId'>): Promise<number> {
      return revokeUserSessions(db, s.userId);
    },

    /** "Where you are signed in": the user's recent sign-ins and open sessions, with device and coarse address only. */
    async whereSignedIn(s: Pick<CustomerSession, 'userId' | 'idHash'>) {
      const logins = await recentLogins(db, s.userId, 20);
      const sessions = await openSessionsOf(db, s.userId, clock.now(), 50);
      return {
        logins: logins.map((l) => ({ at: new Date(l.at).toISOString(), device: deviceOf(l.user_agent), address: ipPrefix(l.source_ip) ?? 'unknown' })),
        sessions: sessions.map((x) => ({
          current: x.id_hash === s.idHash,
          since: new Date(x.created_at).toISOString(),
          expires: new Date(x.expires_at).toISOString(),
          device: deviceOf(x.user_agent),
          address: x.ip_prefix ?? 'unknown',
        })),
      };
    },

    /** The overview of the session's account: balance and spendable (the ledger's), and settled spend this month, last month and per day and model. */
    async overview(s: Pick<CustomerSession, 'accountId'>) {
      const account = await accountSummary(db, s.accountId);
      if (!account) throw new NotFoundError('The account no longer exists.');
      if (!ledger) throw new Error('customerConsoleService: the overview needs the ledger');
      const bal = await ledger.balance({ accountId: s.accountId, limit: 1 });
      const now = clock.now();
      const m = monthBounds(now);
      const thisMonth = await spendBetween(db, s.accountId, m.thisMonth, m.nextMonth);
      const lastMonth = await spendBetween(db, s.accountId, m.lastMonth, m.thisMonth);
      const daily = await dailySpendByModel(db, s.accountId, new Date(now.getTime() - 30 * 86_400_000));
      return {
        name: account.name,
        plan: account.plan,
        status: account.status,
        currency: bal.currency,
        balance: bal.balanceRounded,
        held: bal.held,
        spendable: bal.spendable,
        spendThisMonth: amount(thisMonth),
        spendLastMonth: amount(lastMonth),
        daily: daily.map((d) => ({ ...d, cost: amount(d.cost) })),
      };
    },

    /** Whether the user can sign in with a password (the demo seed sets one only once). */
    hasPassword: (userId: string) => userHasPassword(db, userId),

    /** Sets (or replaces) a user's console password; ends the user's open sessions. */
    async setPassword(userId: string, password: string): Promise<{ userId: string; sessionsEnded: number }> {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(userId)) throw new ValidationError('the user id must be a UUID');
      const problem = passwordProblem(password);
      if (problem) throw new ValidationError(problem);
      const hash = await bcrypt.hash(password, BCRYPT_ROUNDS);
      return db.transaction(async (trx) => {
        const n = await setPasswordHash(trx, userId, hash);
        if (!n) throw new NotFoundError(`user ${userId} does not exist`);
        const ended = await revokeUserSessions(trx, userId);
        return { userId, sessionsEnded: ended };
      });
    },
  };
}

export type CustomerConsoleService = ReturnType<typeof customerConsoleService>;
