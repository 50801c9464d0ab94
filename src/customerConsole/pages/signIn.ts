import type { Request, Response } from 'express';
import { html } from '../../console/html';
import { SIGN_IN_FORM_S, signInCookieHeader, signInToken, signInTokenOk } from '../../console/session';
import { RateLimiter } from '../../gateway/rateLimit';
import { clientAddressOf } from '../../http/clientAddress';
import type { CustomerConsoleService } from '../customerConsole.service';
import { MAX_EMAIL, MAX_PASSWORD, MAX_USER_AGENT, SESSION_HOURS } from '../customerConsole.rules';
import type { LoginLinkService } from '../loginLink.service';
import type { SecondFactorService } from '../secondFactor.service';
import { MAX_CODE_INPUT } from '../secondFactor.rules';
import { cookieHeader, csrfOk, pendingSessionOf } from '../session';
import { back, body, flashFrom, message, type CustomerPageKit, type Flash } from './kit';

export interface CustomerSignInOptions {
  /** Sign-in attempts per client address and minute (default 10); second-factor codes and sign-in links count against it too. */
  loginRpm?: number | undefined;
  /** Sign-in attempts per email and window (default 5 per 15 minutes), across addresses and instances. */
  accountAttempts?: number | undefined;
  accountWindowS?: number | undefined;
  /** TRUSTED_PROXIES: whose X-Forwarded-For names the client address. */
  trustedProxies?: readonly string[] | undefined;
  /** Two-step sign-in; without it no second factor is asked (and none can be set up). */
  secondFactor?: SecondFactorService | undefined;
  /** One-time sign-in links by email; without it the console does not offer them. */
  loginLinks?: LoginLinkService | undefined;
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');
const SECOND_FACTOR = '/app/login/second-factor';

/**
 * Sign-in by email and password or by a one-time link sent by email, the
 * second factor for users who set one up, and sign-out. The public forms are
 * protected by the staff console's double-submit cookie
 * (src/console/session.ts); the second-factor form by the pending session's
 * own CSRF token. There is no `next` parameter: a sign-in always lands on
 * /app, so no link can send a signed-in browser elsewhere.
 */
export function customerSignInPages({ router, sendPublic }: CustomerPageKit, service: CustomerConsoleService, opts: CustomerSignInOptions): void {
  const loginLimiter = new RateLimiter();
  const clientAddress = clientAddressOf(opts.trustedProxies ?? []);
  const { secondFactor, loginLinks } = opts;
  const sourceOf = (req: Request) => ({ ip: clientAddress(req), userAgent: req.get('user-agent')?.slice(0, MAX_USER_AGENT) ?? null });
  /** The per-address limit, shared by every form of this page; false (and the 429 answered) when over it. */
  const perAddress = (req: Request, res: Response, ip: string | null, onRefused: () => void): boolean => {
    const taken = loginLimiter.take(`login:${ip}`, opts.loginRpm ?? 10);
    if (taken.allowed) return true;
    res.setHeader('retry-after', String(taken.retryAfterSeconds));
    onRefused();
    return false;
  };

  const signInPage = (req: Request, res: Response, status: number, flash: Flash | null) => {
    const token = signInToken(req.headers.cookie);
    res.setHeader('set-cookie', signInCookieHeader(token, SIGN_IN_FORM_S));
    sendPublic(
      res,
      status,
      'Sign in',
      html`<form method="post" action="/app/login">
  <input type="hidden" name="_csrf" value="${token}">
  <fieldset><legend>Sign in to your account</legend>
  <label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required maxlength="${MAX_EMAIL}">
  <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="${MAX_PASSWORD}">
  <div><button type="submit">Sign in</button></div></fieldset>
</form>
${
  loginLinks
    ? html`<form method="post" action="/app/login/link-request">
  <input type="hidden" name="_csrf" value="${token}">
  <fieldset><legend>Or sign in without your password</legend>
  <label for="link-email">Email</label><input id="link-email" name="email" type="email" autocomplete="username" required maxlength="${MAX_EMAIL}">
  <div><button type="submit">Email me a sign-in link</button></div></fieldset>
</form>`
    : html``
}
<p class="muted">Before you sign in, one cookie protects this form against other sites; after, a session cookie is set. Your cookie choice is kept in a cookie too. Page views are counted, without anything that identifies you, only if you accept analytics; nothing tracks you for anyone else.</p>`,
      flash,
    );
  };

  /** After the password or a link: signed in, or on to the second factor. */
  const opened = (res: Response, o: { id: string; pending: boolean }) => {
    res.setHeader('set-cookie', [cookieHeader(o.id, SESSION_HOURS * 3600), signInCookieHeader('', 0)]);
    res.redirect(303, o.pending ? SECOND_FACTOR : '/app');
  };

  router.get('/app/login', (req, res) => {
    if (res.locals.customer) return res.redirect(303, '/app');
    signInPage(req, res, 200, flashFrom(req));
  });

  router.post('/app/login', async (req, res) => {
    const b = body(req);
    if (!signInTokenOk(req.headers.cookie, b._csrf)) return signInPage(req, res, 403, message('signin_form_expired'));
    const { ip, userAgent: ua } = sourceOf(req);
    if (!perAddress(req, res, ip, () => signInPage(req, res, 429, message('signin_throttled')))) return;
    const email = str(b.email).trim();
    const password = str(b.password);
    // Bounded before anything is looked up or hashed; recorded like any failure.
    if (email.length > MAX_EMAIL || password.length > MAX_PASSWORD) {
      await service.recordFailedSignIn('input_too_long', { ip, userAgent: ua });
      return signInPage(req, res, 400, message('signin_failed'));
    }
    // Per email as well as per address: many addresses guessing one user's password are throttled together.
    const perEmail = await service.takeSignInAttempt(email, opts.accountAttempts ?? 5, opts.accountWindowS ?? 900);
    if (!perEmail.allowed) {
      await service.recordFailedSignIn('throttled', { ip, userAgent: ua });
      res.setHeader('retry-after', String(perEmail.retryAfterSeconds));
      return signInPage(req, res, 429, message('signin_throttled'));
    }
    const result = await service.checkCredentials(email, password);
    if (!result.ok) {
      await service.recordFailedSignIn('bad_password_or_unknown_email', { ip, userAgent: ua });
      return back(res, '/app/login', 'signin_failed');
    }
    opened(res, await service.openSession(email, result, { ip, userAgent: ua }));
  });

  if (loginLinks) {
    // The same answer whatever happened (unknown address, throttled, sent): it must not tell which addresses have users.
    router.post('/app/login/link-request', async (req, res) => {
      const b = body(req);
      if (!signInTokenOk(req.headers.cookie, b._csrf)) return signInPage(req, res, 403, message('signin_form_expired'));
      const { ip } = sourceOf(req);
      if (!perAddress(req, res, ip, () => signInPage(req, res, 429, message('signin_throttled')))) return;
      const email = str(b.email);
      if (email.length <= MAX_EMAIL) {
        const { sending } = await loginLinks.request(email);
        // Sent after the answer: its failures are the service's to report, and its timing is not the answer's.
        sending.catch(() => undefined);
      }
      back(res, '/app/login', 'signin_link_sent');
    });

    // GET only shows a button: mail scanners that fetch links must not spend them.
    router.get('/app/login/link', (req, res) => {
      const token = req.query.token;
      if (!loginLinks.wellFormed(token)) return signInPage(req, res, 400, message('signin_link_invalid'));
      const form = signInToken(req.headers.cookie);
      res.setHeader('set-cookie', signInCookieHeader(form, SIGN_IN_FORM_S));
      sendPublic(
        res,
        200,
        'Sign in with your link',
        html`<form method="post" action="/app/login/link">
  <input type="hidden" name="_csrf" value="${form}">
  <input type="hidden" name="token" value="${token}">
  <p>Press the button to sign in. The link works once; if you did not ask for it, close this page.</p>
  <div><button type="submit">Sign in</button></div>
</form>`,
        null,
      );
    });

    router.post('/app/login/link', async (req, res) => {
      const b = body(req);
      if (!signInTokenOk(req.headers.cookie, b._csrf)) return signInPage(req, res, 403, message('signin_form_expired'));
      const from = sourceOf(req);
      if (!perAddress(req, res, from.ip, () => signInPage(req, res, 429, message('signin_throttled')))) return;
      const who = await loginLinks.redeem(b.token);
      if (!who) {
        await service.recordFailedSignIn('bad_or_spent_link', from);
        return signInPage(req, res, 400, message('signin_link_invalid'));
      }
      opened(res, await service.openSession(null, who, from));
    });
  }

  const secondFactorPage = (req: Request, res: Response, status: number, csrf: string, flash: Flash | null) =>
    sendPublic(
      res,
      status,
      'Two-step sign-in',
      html`<form method="post" action="${SECOND_FACTOR}">
  <input type="hidden" name="_csrf" value="${csrf}">
  <fieldset><legend>Enter the code from your authenticator app</legend>
  <label for="code">Code (or one of your recovery codes)</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="${MAX_CODE_INPUT}" autofocus>
  <div><button type="submit">Continue</button></div></fieldset>
</form>
<form method="post" action="/app/logout"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">Cancel</button></form>`,
      flash,
    );

  router.get(SECOND_FACTOR, (req, res) => {
    if (res.locals.customer) return res.redirect(303, '/app');
    const p = pendingSessionOf(res.locals);
    if (!p || !secondFactor) return res.redirect(303, '/app/login');
    secondFactorPage(req, res, 200, p.csrf, flashFrom(req));
  });

  router.post(SECOND_FACTOR, async (req, res) => {
    const p = pendingSessionOf(res.locals);
    if (!p || !secondFactor) return res.redirect(303, '/app/login');
    const b = body(req);
    if (!csrfOk(p, b._csrf)) return res.status(403).type('text').send('invalid or missing CSRF token: reload the page');
    const from = sourceOf(req);
    if (!perAddress(req, res, from.ip, () => secondFactorPage(req, res, 429, p.csrf, message('second_factor_throttled')))) return;
    const r = await secondFactor.verifySignIn(p, str(b.code), from);
    if (!r.ok) {
      if (r.throttled) {
        res.setHeader('retry-after', String(r.retryAfterSeconds));
        return secondFactorPage(req, res, 429, p.csrf, message('second_factor_throttled'));
      }
      return back(res, SECOND_FACTOR, 'second_factor_failed');
    }
    const id = await service.promoteSession(p, from);
    if (!id) return back(res, '/app/login', 'signin_failed');
    res.setHeader('set-cookie', cookieHeader(id, SESSION_HOURS * 3600));
    res.redirect(303, '/app');
  });

  router.post('/app/logout', async (req, res) => {
    // A pending session (waiting for its second factor) can be cancelled the same way.
    const s = res.locals.customer ?? pendingSessionOf(res.locals);
    if (s && csrfOk(s, body(req)._csrf)) await service.signOut(s);
    res.setHeader('set-cookie', cookieHeader('', 0));
    back(res, '/app/login', 'signed_out');
  });
}
