import type { Request, Response, Router } from 'express';
import { html, page, type Html, type NavItem } from '../../console/html';
import { AppError, ForbiddenError } from '../../errors';
import { mayUse, type ConsoleArea } from '../customerConsole.rules';
import type { Logger } from '../../logger';
import type { CustomerSession } from '../customerConsole.service';
import { csrfOk } from '../session';

/**
 * What every customer console page is built with: the layout of the staff
 * console (src/console/html.ts, with this console's name and sign-out), the
 * navigation, fixed flash messages, and get/post wrappers that check the
 * session and (for POST) its CSRF token, and turn errors into a page. A
 * handler gets the session: the account it shows is the session's, never
 * one named by the request.
 */
export const BRAND = 'MixRoute';
const SIGN_OUT = '/app/logout';

/** The navigation: each page with its area; a member sees the pages their role may use. */
const NAV: (NavItem & { area: ConsoleArea })[] = [
  { href: '/app', label: 'Overview', area: 'overview' },
  { href: '/app/security', label: 'Where you are signed in', area: 'security' },
  { href: '/app/keys', label: 'API keys', area: 'keys' },
  { href: '/app/usage', label: 'Usage', area: 'usage' },
  { href: '/app/billing', label: 'Billing', area: 'billing' },
  { href: '/app/privacy', label: 'Your privacy', area: 'privacy' },
  { href: '/app/alerts', label: 'Alerts and webhooks', area: 'alerts' },
  { href: '/app/cookies', label: 'Cookies', area: 'overview' },
  { href: '/app/members', label: 'Members', area: 'members' },
];
const navFor = (s: CustomerSession): NavItem[] => NAV.filter((n) => mayUse(s.role, n.area)).map(({ href, label }) => ({ href, label }));

/** Flash messages by code (?msg=<code>): a link cannot make a page say what its author likes. */
const MESSAGES = {
  signed_out: { kind: 'ok', text: 'Signed out.' },
  signed_out_everywhere: { kind: 'ok', text: 'Signed out everywhere: every session of yours has ended, this one too.' },
  signin_failed: { kind: 'error', text: 'Sign-in failed: check the email and password.' },
  signin_throttled: { kind: 'error', text: 'Too many sign-in attempts. Wait a few minutes, then try again.' },
  signin_form_expired: { kind: 'error', text: 'The sign-in form expired or did not come from this site: sign in again.' },
  signin_link_sent: { kind: 'ok', text: 'If the address has an account, a sign-in link is on its way: it works once, for 15 minutes.' },
  signin_link_invalid: { kind: 'error', text: 'This sign-in link cannot be used: it was used already, it expired, or it is not one of ours. Ask for a new one.' },
  second_factor_failed: { kind: 'error', text: 'That code was not accepted: enter the current code from your app, or an unused recovery code.' },
  second_factor_throttled: { kind: 'error', text: 'Too many codes tried. Wait a few minutes, then try again.' },
  two_step_setup_failed: { kind: 'error', text: 'That code was not accepted: enter the code your app shows now for MixRoute.' },
  two_step_code_failed: { kind: 'error', text: 'That was not accepted: enter the current code from your app (or your password, to turn two-step sign-in off).' },
  two_step_disabled: { kind: 'ok', text: 'Two-step sign-in is off: your app and recovery codes no longer work for this account.' },
  keys_updated: { kind: 'ok', text: 'The key was changed.' },
  keys_revoked: { kind: 'ok', text: 'The key was revoked: the gateway refuses it within seconds.' },
  billing_amount_invalid: { kind: 'error', text: 'That amount was not accepted: enter an amount within the limits shown, with at most two decimals.' },
  billing_checkout_unavailable: { kind: 'error', text: 'Payment by card is not available right now: nothing was charged. Try again later.' },
  billing_invoice_not_payable: { kind: 'error', text: 'That invoice cannot be paid by card now (it is paid, void, or not a postpaid invoice).' },
  billing_details_saved: { kind: 'ok', text: 'The billing details were saved.' },
  alerts_settings_saved: { kind: 'ok', text: 'The alert settings were saved.' },
  alerts_endpoint_disabled: { kind: 'ok', text: 'The endpoint was disabled: it gets no new deliveries.' },
  alerts_endpoint_enabled: { kind: 'ok', text: 'The endpoint was enabled.' },
  alerts_endpoint_deleted: { kind: 'ok', text: 'The endpoint and its delivery log were deleted.' },
  alerts_redelivered: { kind: 'ok', text: 'The delivery will be sent again.' },
  privacy_copy_requested: { kind: 'ok', text: 'We are preparing your copy: its download link appears in your requests below within a minute (reload the page).' },
  privacy_request_filed: { kind: 'ok', text: 'Your request was filed: it is listed below with the date we answer by.' },
  privacy_already_open: { kind: 'ok', text: 'You already have an open request of this kind: it is listed below.' },
  cookies_saved: { kind: 'ok', text: 'Your cookie choice was saved. You can change it any time under Cookies.' },
  cookies_choice_invalid: { kind: 'error', text: 'That cookie choice was not understood: nothing was changed. Choose one of the buttons.' },
  policy_acknowledged: { kind: 'ok', text: 'Thank you: we recorded that you read the new privacy policy.' },
  members_invited: { kind: 'ok', text: 'The invitation was sent: its link works for 7 days.' },
  members_invitation_revoked: { kind: 'ok', text: 'The invitation was revoked: its link no longer works.' },
  members_role_changed: { kind: 'ok', text: "The member's role was changed: it applies from their next page." },
  members_removed: { kind: 'ok', text: 'The member was removed: their sessions have ended and they can no longer sign in.' },
  invitation_accepted: { kind: 'ok', text: 'Welcome: you joined the account. Sign in with your email address and the password you chose.' },
} as const satisfies Record<string, { kind: 'ok' | 'error'; text: string }>;
export type CustomerMessage = keyof typeof MESSAGES;
export type Flash = { kind: 'ok' | 'error'; text: string };

export const flashFrom = (req: Request): Flash | null => {
  const code = req.query.msg;
  return typeof code === 'string' && Object.hasOwn(MESSAGES, code) ? MESSAGES[code as CustomerMessage] : null;
};
export const message = (code: CustomerMessage): Flash => MESSAGES[code];
export const back = (res: Response, to: string, code: CustomerMessage) => res.redirect(303, `${to}${to.includes('?') ? '&' : '?'}msg=${code}`);
export const body = (req: Request) => (req.body ?? {}) as Record<string, unknown>;

export type Handler = (req: Request, res: Response, s: CustomerSession) => Promise<void>;

/**
 * A notice shown above every page (the cookie choice, a changed privacy
 * policy). `s` is null on pages for someone not signed in. Returns null when
 * it has nothing to say. It must not throw for a bad cookie or header.
 */
export type Banner = (req: Request, s: CustomerSession | null) => Html | null | Promise<Html | null>;

/** One route of the console, as registered: what the role and cross-account tests walk. */
export interface CustomerRoute {
  method: 'GET' | 'POST';
  path: string;
  area: ConsoleArea;
}

export interface CustomerPageKit {
  router: Router;
  /** GET: session checked, and the member's role against `area` (403 page otherwise). */
  get(p: string, h: Handler, area?: ConsoleArea): void;
  /** POST: session, role for `area` and CSRF token checked; the handler redirects (post/redirect/get). */
  post(p: string, h: Handler, area?: ConsoleArea): void;
  send(res: Response, s: CustomerSession, req: Request, title: string, body: Html, current?: string): void;
  /** A page for someone not signed in (the sign-in page). */
  sendPublic(res: Response, status: number, title: string, body: Html, flash: Flash | null): void;
  /** Adds a notice shown above every page, in the order added. */
  addBanner(b: Banner): void;
  /** Every route registered with get/post (signed-in pages and actions). */
  readonly routes: readonly CustomerRoute[];
}

export function customerPageKit(router: Router, logger: Logger): CustomerPageKit {
  const bannerList: Banner[] = [];
  const routes: CustomerRoute[] = [];
  const bannersFor = async (req: Request, s: CustomerSession | null): Promise<Html[]> => {
    const out: Html[] = [];
    for (const b of bannerList) {
      const shown = await b(req, s);
      if (shown) out.push(shown);
    }
    return out;
  };
  const layout = (s: CustomerSession, title: string, flash: Flash | null, content: Html, current?: string, banners: Html[] = []) =>
    page({ title, role: s.role, actor: `${s.name} · ${s.accountName}`, csrf: s.csrf, nav: navFor(s), current, flash, brand: BRAND, signOut: SIGN_OUT, banners }, content).value;
  const forbidden = (area: ConsoleArea) => new ForbiddenError(`Your role in this account does not give access to ${area}; ask the account's owner.`);
  const errorText = (err: unknown) => (err instanceof AppError ? err.message : 'Something went wrong; please try again later.');
  const noStore = (res: Response) => res.setHeader('cache-control', 'no-store');

  // Banners are worked out once per page view (GET), before the page's handler, so send stays synchronous.
  router.use('/app', (req, res, next) => {
    if (req.method !== 'GET' || bannerList.length === 0) return next();
    bannersFor(req, (res.locals.customer as CustomerSession | undefined) ?? null).then(
      (b) => {
        res.locals.banners = b;
        next();
      },
      (err: unknown) => {
        logger.error({ errType: (err as Error)?.name, path: req.path }, 'customer console banner failed');
        next();
      },
    );
  });
  const bannersOf = (res: Response): Html[] => (res.locals.banners as Html[] | undefined) ?? [];

  return {
    router,
    routes,
    addBanner: (b) => void bannerList.push(b),
    send: (res, s, req, title, content, current) => {
      noStore(res);
      res.type('html').send(layout(s, title, flashFrom(req), content, current, bannersOf(res)));
    },
    sendPublic: (res, status, title, content, flash) => {
      noStore(res);
      res.status(status).type('html').send(page({ title, role: null, nav: [], flash, brand: BRAND, banners: bannersOf(res) }, content).value);
    },
    get: (p, h, area = 'overview') => {
      routes.push({ method: 'GET', path: p, area });
      router.get(p, async (req, res) => {
        const s = res.locals.customer as CustomerSession | undefined;
        if (!s) return res.redirect(303, '/app/login');
        try {
          if (!mayUse(s.role, area)) throw forbidden(area);
          await h(req, res, s);
        } catch (err) {
          if (!(err instanceof AppError)) logger.error({ errType: (err as Error)?.name, path: req.path }, 'customer console page failed');
          noStore(res);
          res.status(err instanceof AppError ? err.status : 500).type('html').send(layout(s, 'Error', null, html`<p role="alert">${errorText(err)}</p>`));
        }
      });
    },
    post: (p, h, area = 'overview') => {
      routes.push({ method: 'POST', path: p, area });
      router.post(p, async (req, res) => {
        const s = res.locals.customer as CustomerSession | undefined;
        if (!s) return res.redirect(303, '/app/login');
        if (!csrfOk(s, (req.body as Record<string, unknown> | undefined)?._csrf ?? req.get('x-csrf-token'))) {
          return res.status(403).type('text').send('invalid or missing CSRF token: reload the page');
        }
        try {
          if (!mayUse(s.role, area)) throw forbidden(area);
          await h(req, res, s);
        } catch (err) {
          if (!(err instanceof AppError)) logger.error({ errType: (err as Error)?.name, path: req.path }, 'customer console action failed');
          noStore(res);
          res.status(err instanceof AppError ? err.status : 500).type('html').send(layout(s, 'Not done', { kind: 'error', text: errorText(err) }, html`<p><a href="/app">Back</a></p>`));
        }
      });
    },
  };
}
