import type { Request, RequestHandler, Response, Router } from 'express';
import { csrfField, html, table, type Html } from '../../console/html';
import { readCookie } from '../../console/session';
import type { Logger } from '../../logger';
import type { ConsentService } from '../consent.service';
import {
  analyticsAllowed,
  categoriesFromForm,
  CONSENT_COOKIE,
  CONSENT_COOKIE_MAX_AGE_S,
  formatConsentCookie,
  parseConsentCookie,
  routePatternOf,
  safeReturnPath,
  type ConsentChoice,
} from '../consent.rules';
import { mayUse } from '../customerConsole.rules';
import type { CustomerSession } from '../customerConsole.service';
import { csrfOk } from '../session';
import { back, body, flashFrom, type CustomerPageKit } from './kit';

/**
 * The cookie banner, the cookie settings page (/app/cookies), the choice
 * (POST /app/consent) and the page view count, for signed-in and signed-out
 * browsers alike (docs/customer-console.md#cookies-and-analytics).
 *
 * consentPages registers its middleware on the router before the page kit
 * exists (so the choice is known, squared with the user's records and the
 * view counted before banners and pages run); mount() adds the banner and
 * the routes once the kit is there.
 */
const SETTINGS = '/app/cookies';
const SIGN_IN = '/app/login';

export function consentCookieHeader(c: ConsentChoice): string {
  return `${CONSENT_COOKIE}=${formatConsentCookie(c)}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=${CONSENT_COOKIE_MAX_AGE_S}`;
}

/**
 * A signed-out form post came from a page of this site. There is no session
 * token to check, so the browser's own word is taken: Sec-Fetch-Site (which
 * no page can set), else an Origin naming this host. Without either the
 * post is refused, so another site cannot give consent in a visitor's name.
 */
export function sameOriginPost(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin';
  const origin = req.get('origin');
  const host = req.get('host');
  if (!origin || !host || origin.length > 300) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

const describe = (c: ConsentChoice | null) =>
  !c ? 'You have not chosen yet: only strictly necessary cookies are used.' : analyticsAllowed(c) ? 'You agreed to page analytics.' : 'Only strictly necessary cookies: no page analytics.';

const choiceForm = (s: CustomerSession | null, returnTo: string, withSettingsLink: boolean): Html =>
  html`<form method="post" action="/app/consent" class="consent-choice">${s ? csrfField(s.csrf) : ''}<input type="hidden" name="back" value="${returnTo}">
<button type="submit" name="choice" value="analytics">Accept analytics</button>
<button type="submit" name="choice" value="necessary">Only necessary cookies</button>${withSettingsLink ? html` <a href="${SETTINGS}">Cookie settings</a>` : ''}</form>`;

export function consentPages(router: Router, service: ConsentService, logger: Logger) {
  let kit: CustomerPageKit | null = null;
  /** The choice that stands for a request (after squaring with the user's records), for the banner and the settings page. */
  const standing = new WeakMap<Request, ConsentChoice | null>();
  const choiceOf = (req: Request) => (standing.has(req) ? standing.get(req)! : parseConsentCookie(readCookie(req.headers.cookie, CONSENT_COOKIE), service.now()));

  const getPaths = () => (kit?.routes ?? []).filter((r) => r.method === 'GET');
  const returnPaths = () => [...getPaths().map((r) => r.path).filter((p) => !p.includes(':')), SIGN_IN, SETTINGS];
  const countedPages = (s: CustomerSession) => [...getPaths().filter((r) => mayUse(s.role, r.area)).map((r) => r.path), SETTINGS];
  const pathOf = (req: Request) => req.originalUrl.split('?')[0] ?? '';

  const beforePages: RequestHandler = async (req, res, next) => {
    if (req.method !== 'GET') return next();
    try {
      let choice = parseConsentCookie(readCookie(req.headers.cookie, CONSENT_COOKIE), service.now());
      const s = res.locals.customer as CustomerSession | undefined;
      if (s) {
        const r = await service.squareWithRecords(s, choice);
        if (r.rewrite && r.choice) res.append('set-cookie', consentCookieHeader(r.choice));
        choice = r.choice;
        // The route's pattern, never the address: no ids, queries or anything a link put there.
        const page = routePatternOf(pathOf(req), countedPages(s));
        if (page) await service.countView(choice, page);
      }
      standing.set(req, choice);
    } catch (err) {
      // Consent bookkeeping must not take the page down; without it nothing optional happens.
      logger.error({ errType: (err as Error)?.name, path: req.path }, 'customer console consent check failed');
    }
    next();
  };
  router.use('/app', beforePages);

  const banner = (req: Request, s: CustomerSession | null): Html | null => {
    if (choiceOf(req)) return null;
    const returnTo = safeReturnPath(pathOf(req), returnPaths());
    return html`<section class="consent-banner" aria-labelledby="consent-banner-title">
<h2 id="consent-banner-title">Cookies</h2>
<p>We use only strictly necessary cookies (your sign-in, form protection and this choice) unless you agree to more. With your agreement we count page views: which page, on which day, nothing about you, and no other company is involved.</p>
${choiceForm(s, returnTo, true)}
</section>`;
  };

  const settingsBody = (c: ConsentChoice | null, s: CustomerSession | null, history: Awaited<ReturnType<ConsentService['history']>>) =>
    html`<p>${describe(c)}${c ? html` Chosen ${c.at.toISOString()} under privacy policy version ${c.version}.` : ''}</p>
<p>Strictly necessary cookies keep you signed in, protect forms against other sites and remember this choice; they need no consent. Page analytics count views per page and day only (no user, session, address or device is stored, no third party sees them) and are deleted after 13 months.</p>
<h2>Change your choice</h2>
${choiceForm(s, SETTINGS, false)}
${s
  ? table(
      ['When', 'Policy version', 'Analytics'],
      history.map((h) => [html`${h.at}`, html`${h.version}`, html`${h.granted ? 'agreed' : 'not agreed'}`]),
      'Your choices (newest first)',
    )
  : html`<p class="muted">Sign in to see the choices recorded for you.</p>`}`;

  return {
    mount(k: CustomerPageKit): void {
      kit = k;
      k.addBanner(banner);

      router.get(SETTINGS, async (req: Request, res: Response) => {
        const s = (res.locals.customer as CustomerSession | undefined) ?? null;
        try {
          const c = choiceOf(req);
          if (s) k.send(res, s, req, 'Cookies', settingsBody(c, s, await service.history(s)), SETTINGS);
          else k.sendPublic(res, 200, 'Cookies', settingsBody(c, null, []), flashFrom(req));
        } catch (err) {
          logger.error({ errType: (err as Error)?.name, path: req.path }, 'customer console cookie settings failed');
          res.status(500).type('text').send('Something went wrong; please try again later.');
        }
      });

      router.post('/app/consent', async (req: Request, res: Response) => {
        const s = (res.locals.customer as CustomerSession | undefined) ?? null;
        const b = body(req);
        if (s ? !csrfOk(s, b._csrf) : !sameOriginPost(req)) {
          return res.status(403).type('text').send('This form did not come from this site (or expired): reload the page and choose again.');
        }
        const categories = categoriesFromForm(b.choice);
        if (!categories) return back(res, SETTINGS, 'cookies_choice_invalid');
        try {
          const choice = await service.choose(s, categories);
          res.append('set-cookie', consentCookieHeader(choice));
          back(res, safeReturnPath(b.back, returnPaths()), 'cookies_saved');
        } catch (err) {
          logger.error({ errType: (err as Error)?.name, path: req.path }, 'customer console consent failed');
          res.status(500).type('text').send('Something went wrong; your choice was not saved. Please try again later.');
        }
      });
    },
  };
}
