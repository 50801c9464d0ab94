import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import { displayPrefix, hashSecret, looksLike } from '../auth/secrets';
import type { Db } from '../db/knex';
import { staffTokensRepo, type StaffRole } from '../staff/staff.data';

/**
 * Console sessions. The cookie carries a random id (httpOnly, Secure,
 * SameSite=Strict, path /console); the database keeps its hash, the CSRF
 * token and the expiry. Signing out revokes the row, so a copied cookie dies
 * with the session. The role is not trusted from the row: every request
 * re-reads the staff user or token behind the session, so a revoked token, a
 * disabled user or a changed role takes effect on the next request.
 */
export const COOKIE = 'mr_console';
export const SESSION_HOURS = 8;

/**
 * The sign-in form's CSRF token (double submit): a random value in this
 * cookie and in the form. A page on another site can neither read nor set it
 * (__Host-: Secure, no Domain, so a sibling subdomain cannot plant one), so it
 * cannot sign a browser in to an account of the attacker's choosing.
 */
export const SIGN_IN_COOKIE = '__Host-mr_console_signin';
export const SIGN_IN_FORM_S = 3600;

export interface ConsoleSession {
  role: StaffRole;
  actor: string;
  csrf: string;
  name: string;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export function readCookie(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k !== name) continue;
    try {
      return decodeURIComponent(v.join('='));
    } catch {
      return null; // malformed escapes: no cookie rather than a 500
    }
  }
  return null;
}

export function cookieHeader(value: string, maxAgeS: number): string {
  return `${COOKIE}=${encodeURIComponent(value)}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAgeS}`;
}

export function signInCookieHeader(value: string, maxAgeS: number): string {
  return `${SIGN_IN_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAgeS}`;
}

const SIGN_IN_TOKEN = /^[A-Za-z0-9_-]{32}$/;

/** The sign-in form token: the browser's current one, or a new one. */
export function signInToken(cookieHeaderValue: string | undefined): string {
  const current = readCookie(cookieHeaderValue, SIGN_IN_COOKIE);
  return current && SIGN_IN_TOKEN.test(current) ? current : randomBytes(24).toString('base64url');
}

/** The posted sign-in form carries the token its browser holds in the cookie. */
export function signInTokenOk(cookieHeaderValue: string | undefined, posted: unknown): boolean {
  const cookie = readCookie(cookieHeaderValue, SIGN_IN_COOKIE);
  if (!cookie || !SIGN_IN_TOKEN.test(cookie) || typeof posted !== 'string' || posted.length !== cookie.length) return false;
  return timingSafeEqual(Buffer.from(posted), Buffer.from(cookie));
}

/**
 * Whose password or token a sign-in tries, for the per-account throttle: a
 * hash of the lower-cased email (unknown emails are throttled alike, so a
 * refusal does not tell which emails exist), or a staff token's display
 * prefix. Never the email itself.
 */
export function signInIdentity(email: string, secret: string): string {
  if (!email && looksLike(secret, 'staff_token')) return `token:${displayPrefix(secret, 'staff_token')}`;
  return `user:${sha(email.trim().toLowerCase())}`;
}

/**
 * Counts one attempt for the identity and says whether it may be evaluated:
 * counted and checked in one statement before the password is compared, so
 * concurrent guesses cannot all slip under the limit. The window restarts
 * when it has passed; a successful sign-in clears the count.
 */
export async function takeSignInAttempt(db: Db, identity: string, limit: number, windowS: number): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
  await db('console_sign_in_attempts').where('window_start', '<', db.raw(`now() - make_interval(secs => ?)`, [windowS])).delete();
  const { rows } = await db.raw(
    `INSERT INTO console_sign_in_attempts AS a (identity, window_start, attempts) VALUES (?, now(), 1)
     ON CONFLICT (identity) DO UPDATE SET
       attempts = CASE WHEN a.window_start < now() - make_interval(secs => ?) THEN 1 ELSE a.attempts + 1 END,
       window_start = CASE WHEN a.window_start < now() - make_interval(secs => ?) THEN now() ELSE a.window_start END
     RETURNING attempts, ceil(extract(epoch FROM (window_start + make_interval(secs => ?) - now())))::int AS retry_after`,
    [identity, windowS, windowS, windowS],
  );
  const row = rows[0] as { attempts: number; retry_after: number };
  return row.attempts <= limit ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.max(1, row.retry_after) };
}

export async function clearSignInAttempts(db: Db, identity: string): Promise<void> {
  await db('console_sign_in_attempts').where({ identity }).delete();
}

export async function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, 12);
}

let dummyHash: Promise<string> | undefined;

export type SignIn = { ok: true; role: StaffRole; staffUserId: string | null; staffTokenId: string | null; name: string } | { ok: false };

/** Email and password, or an existing staff token in the password field with no email. */
export async function checkCredentials(db: Db, email: string, secret: string): Promise<SignIn> {
  if (!email && looksLike(secret, 'staff_token')) {
    const t = await staffTokensRepo(db).findActiveByHash(hashSecret(secret));
    return t ? { ok: true, role: t.role, staffUserId: null, staffTokenId: t.id, name: `token ${t.id.slice(0, 8)}` } : { ok: false };
  }
  const u = await db('staff_users').whereRaw('lower(email) = lower(?)', [email]).whereNull('disabled_at').first();
  // Compare against a dummy hash when the user is unknown, so timing does not tell which emails exist.
  dummyHash ??= bcrypt.hash('not a password', 12);
  const ok = await bcrypt.compare(secret, u?.password_hash ?? (await dummyHash));
  return u && ok ? { ok: true, role: u.role, staffUserId: u.id, staffTokenId: null, name: u.name } : { ok: false };
}

export async function createSession(db: Db, s: { role: StaffRole; staffUserId: string | null; staffTokenId: string | null }): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  await db('console_sessions').insert({
    id_hash: sha(id),
    staff_user_id: s.staffUserId,
    staff_token_id: s.staffTokenId,
    role: s.role,
    csrf_token: randomBytes(24).toString('base64url'),
    expires_at: new Date(Date.now() + SESSION_HOURS * 3_600_000),
  });
  return id;
}

export async function revokeSession(db: Db, id: string): Promise<void> {
  await db('console_sessions').where({ id_hash: sha(id) }).update({ revoked_at: db.fn.now() });
}

/**
 * Loads the session into res.locals.session (or leaves it unset), with the
 * role of the staff user or token as it is now. A session whose user was
 * disabled or whose token was revoked is ended here too, in case it was
 * opened before the revocation committed.
 */
export function loadSession(db: Db): RequestHandler {
  return async (req, res, next) => {
    const id = readCookie(req.headers.cookie, COOKIE);
    if (id) {
      const s = await db('console_sessions as s')
        .leftJoin('staff_users as u', 'u.id', 's.staff_user_id')
        .leftJoin('staff_tokens as t', 't.id', 's.staff_token_id')
        .where({ 's.id_hash': sha(id) })
        .whereNull('s.revoked_at')
        .where('s.expires_at', '>', new Date())
        .first('s.csrf_token', 's.staff_user_id', 's.staff_token_id', 'u.name', 'u.role as user_role', 'u.disabled_at', 't.role as token_role', 't.revoked_at as token_revoked_at');
      const role: StaffRole | null = !s
        ? null
        : s.staff_user_id
          ? s.user_role && !s.disabled_at ? s.user_role : null
          : s.token_role && !s.token_revoked_at ? s.token_role : null;
      if (s && role) {
        res.locals.session = {
          role,
          csrf: s.csrf_token,
          actor: s.staff_user_id ? `staff-user:${s.staff_user_id}` : `staff:${s.staff_token_id}`,
          name: s.name ?? `token ${String(s.staff_token_id).slice(0, 8)}`,
        } satisfies ConsoleSession;
        res.locals.sessionId = id;
      } else if (s) {
        await revokeSession(db, id);
      }
    }
    next();
  };
}

/** Every state-changing request carries the session's CSRF token (form field or htmx header). */
export function csrfOk(session: ConsoleSession, token: unknown): boolean {
  if (typeof token !== 'string' || token.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(token), Buffer.from(session.csrf));
}
