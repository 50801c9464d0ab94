import type { Request, Response, Router } from 'express';
import { AppError } from '../../errors';
import type { Logger } from '../../logger';
import type { StaffRole } from '../../staff/staff.rules';
import { html, page, type Html, type NavItem } from '../html';
import { flashFrom, withMessage, type MessageCode } from '../messages';
import { csrfOk, type ConsoleSession } from '../session';

/**
 * What every console page is built with: the role sets, the navigation, and
 * get/post wrappers that check the session, the role and (for POST) the CSRF
 * token, and turn errors into a page. Each page admits the roles its API
 * routes admit.
 */
export const BILLING: readonly StaffRole[] = ['billing', 'admin'];
export const COMPLIANCE: readonly StaffRole[] = ['compliance', 'admin'];
export const ADMIN: readonly StaffRole[] = ['admin'];

const NAV: (NavItem & { roles: readonly StaffRole[] })[] = [
  { href: '/console/accounts', label: 'Accounts', roles: BILLING },
  { href: '/console/invoice-runs', label: 'Invoice runs', roles: BILLING },
  { href: '/console/invoices', label: 'Invoices', roles: BILLING },
  { href: '/console/receivables', label: 'Receivables', roles: BILLING },
  { href: '/console/reconciliation', label: 'Reconciliation', roles: BILLING },
  { href: '/console/dsr', label: 'Rights requests', roles: COMPLIANCE },
  { href: '/console/retention', label: 'Retention & holds', roles: COMPLIANCE },
  { href: '/console/register', label: 'Register', roles: COMPLIANCE },
  { href: '/console/privacy-policy', label: 'Privacy policy', roles: COMPLIANCE },
  { href: '/console/staff', label: 'Staff', roles: ADMIN },
  { href: '/console/policies', label: 'Retention policies', roles: ADMIN },
];

export type Handler = (req: Request, res: Response, s: ConsoleSession) => Promise<void>;

export const param = (req: Request, name: string) => String(req.params[name]);
export const body = (req: Request) => (req.body ?? {}) as Record<string, string>;
export const opt = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
export const back = (res: Response, to: string, code: MessageCode) => res.redirect(303, withMessage(to, code));

export interface PageKit {
  router: Router;
  get(p: string, roles: readonly StaffRole[], h: Handler): void;
  /** POST: session, role and CSRF token checked; the handler redirects (post/redirect/get). */
  post(p: string, roles: readonly StaffRole[], h: Handler, backTo: (req: Request) => string): void;
  send(res: Response, s: ConsoleSession, req: Request, title: string, body: Html, current?: string): void;
}

export function pageKit(router: Router, logger: Logger): PageKit {
  const nav = (role: StaffRole) => NAV.filter((n) => n.roles.includes(role));
  const flash = flashFrom;
  const errorText = (err: unknown) => (err instanceof AppError ? err.message : 'Something went wrong; the details are in the server log.');

  return {
    router,
    send: (res, s, req, title, body, current) =>
      void res.type('html').send(page({ title, role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role), current, flash: flash(req) }, body).value),
    get: (p, roles, h) =>
      void router.get(p, async (req, res) => {
        const s = res.locals.session as ConsoleSession | undefined;
        if (!s) return res.redirect(303, `/console/login?next=${encodeURIComponent(req.originalUrl)}`);
        if (!roles.includes(s.role)) {
          res.status(403).type('html').send(page({ title: 'Not allowed', role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role) }, html`<p>This page is for ${roles.join(' or ')} staff. You are signed in as ${s.role}.</p>`).value);
          return;
        }
        try {
          await h(req, res, s);
        } catch (err) {
          if (!(err instanceof AppError)) logger.error({ errType: (err as Error)?.name, path: req.path }, 'console page failed');
          res.status(err instanceof AppError ? err.status : 500).type('html').send(page({ title: 'Error', role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role) }, html`<p role="alert">${errorText(err)}</p>`).value);
        }
      }),
    post: (p, roles, h, backTo) =>
      void router.post(p, async (req, res) => {
        const s = res.locals.session as ConsoleSession | undefined;
        if (!s) return res.redirect(303, '/console/login');
        if (!roles.includes(s.role)) return res.status(403).type('text').send('forbidden');
        if (!csrfOk(s, req.body?._csrf ?? req.get('x-csrf-token'))) return res.status(403).type('text').send('invalid or missing CSRF token: reload the page');
        try {
          await h(req, res, s);
        } catch (err) {
          if (!(err instanceof AppError)) logger.error({ errType: (err as Error)?.name, path: req.path }, 'console action failed');
          // The error is shown on this response, not put in a redirect's query string (see messages.ts).
          res
            .status(err instanceof AppError ? err.status : 500)
            .type('html')
            .send(page({ title: 'Not done', role: s.role, actor: s.name, csrf: s.csrf, nav: nav(s.role), flash: { kind: 'error', text: errorText(err) } }, html`<p><a href="${backTo(req)}">Back</a></p>`).value);
        }
      }),
  };
}
