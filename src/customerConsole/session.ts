import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { readCookie } from '../console/session';
import type { CustomerConsoleService, CustomerSession, PendingSession } from './customerConsole.service';

/**
 * Customer sessions in the browser, as the staff console's (src/console/session.ts):
 * the cookie carries a random id (__Host-: Secure, Path=/, no Domain, so a
 * sibling subdomain cannot plant one; HttpOnly; SameSite=Strict); the service
 * keeps its hash, the CSRF token and the expiry. A cookie value the server
 * did not issue matches no session, and signing in always issues a new id.
 */
export const COOKIE = '__Host-mr_app';

export function cookieHeader(value: string, maxAgeS: number): string {
  return `${COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAgeS}`;
}

/**
 * Loads a signed-in session into res.locals.customer (or leaves it unset). A
 * session still waiting for its second factor is not signed in: it goes to
 * res.locals.customerPending instead, which only the second-factor form reads,
 * so every other page and action treats it as signed out.
 */
export function loadCustomerSession(service: Pick<CustomerConsoleService, 'resumeSession' | 'resumePendingSession'>): RequestHandler {
  return async (req, res, next) => {
    try {
      const id = readCookie(req.headers.cookie, COOKIE);
      if (id) {
        const session = await service.resumeSession(id);
        if (session) res.locals.customer = session;
        else {
          const pending = await service.resumePendingSession(id);
          if (pending) res.locals.customerPending = pending;
        }
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** The pending (second factor not yet given) session of this request, if any: for the second-factor form only. */
export const pendingSessionOf = (locals: Record<string, unknown>): PendingSession | null => (locals.customerPending as PendingSession | undefined) ?? null;

/** Every state-changing request carries the session's CSRF token (form field or htmx header). */
export function csrfOk(session: Pick<CustomerSession, 'csrf'>, token: unknown): boolean {
  if (typeof token !== 'string' || token.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(token), Buffer.from(session.csrf));
}
