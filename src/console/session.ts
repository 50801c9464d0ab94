import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import { hashSecret, looksLike } from '../auth/secrets';
import type { Db } from '../db/knex';
import { staffTokensRepo, type StaffRole } from '../db/staffTokens';

/**
 * Console sessions. The cookie carries a random id (httpOnly, Secure,
 * SameSite=Strict, path /console); the database keeps its hash, the role, the
 * CSRF token and the expiry. Signing out revokes the row, so a copied cookie
 * dies with the session.
 */
export const COOKIE = 'mr_console';
export const SESSION_HOURS = 8;

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
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

export function cookieHeader(value: string, maxAgeS: number): string {
  return `${COOKIE}=${encodeURIComponent(value)}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAgeS}`;
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

/** Loads the session into res.locals.session (or leaves it unset). */
export function loadSession(db: Db): RequestHandler {
  return async (req, res, next) => {
    const id = readCookie(req.headers.cookie, COOKIE);
    if (id) {
      const s = await db('console_sessions as s')
        .leftJoin('staff_users as u', 'u.id', 's.staff_user_id')
        .where({ 's.id_hash': sha(id) })
        .whereNull('s.revoked_at')
        .where('s.expires_at', '>', new Date())
        .first('s.role', 's.csrf_token', 's.staff_user_id', 's.staff_token_id', 'u.name', 'u.disabled_at');
      if (s && !s.disabled_at) {
        res.locals.session = {
          role: s.role,
          csrf: s.csrf_token,
          actor: s.staff_user_id ? `staff-user:${s.staff_user_id}` : `staff:${s.staff_token_id}`,
          name: s.name ?? `token ${String(s.staff_token_id).slice(0, 8)}`,
        } satisfies ConsoleSession;
        res.locals.sessionId = id;
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
