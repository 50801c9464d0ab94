import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { displayPrefix, looksLike } from '../auth/secrets';
import type { ConsoleSession, StaffService } from '../staff/staff.service';

export type { ConsoleSession } from '../staff/staff.service';
export { SESSION_HOURS } from '../staff/staff.rules';

/**
 * Console sessions in the browser. The cookie carries a random id (httpOnly,
 * Secure, SameSite=Strict, path /console); the staff service keeps its hash,
 * the CSRF token and the expiry. Signing out revokes the row, so a copied
 * cookie dies with the session. The role is not trusted from the row: every
 * request re-reads the staff user or token behind the session, so a revoked
 * token, a disabled user or a changed role takes effect on the next request.
 */
export const COOKIE = 'mr_console';

/**
 * The sign-in form's CSRF token (double submit): a random value in this
 * cookie and in the form. A page on another site can neither read nor set it
 * (__Host-: Secure, no Domain, so a sibling subdomain cannot plant one), so it
 * cannot sign a browser in to an account of the attacker's choosing.
 */
export const SIGN_IN_COOKIE = '__Host-mr_console_signin';
export const SIGN_IN_FORM_S = 3600;

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
 * Loads the session into res.locals.session (or leaves it unset), with the
 * role of the staff user or token as it is now (see StaffService.resumeSession).
 */
export function loadSession(staff: Pick<StaffService, 'resumeSession'>): RequestHandler {
  return async (req, res, next) => {
    const id = readCookie(req.headers.cookie, COOKIE);
    if (id) {
      const session = await staff.resumeSession(id);
      if (session) {
        res.locals.session = session;
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
