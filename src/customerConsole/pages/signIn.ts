import type { Request, Response } from 'express';
import { html } from '../../console/html';
import { SIGN_IN_FORM_S, signInCookieHeader, signInToken, signInTokenOk } from '../../console/session';
import { RateLimiter } from '../../gateway/rateLimit';
import { clientAddressOf } from '../../http/clientAddress';
import type { CustomerConsoleService } from '../customerConsole.service';
import { MAX_EMAIL, MAX_PASSWORD, MAX_USER_AGENT, SESSION_HOURS } from '../customerConsole.rules';
import { cookieHeader, csrfOk } from '../session';
import { back, body, flashFrom, message, type CustomerPageKit, type Flash } from './kit';

export interface CustomerSignInOptions {
  /** Sign-in attempts per client address and minute (default 10). */
  loginRpm?: number | undefined;
  /** Sign-in attempts per email and window (default 5 per 15 minutes), across addresses and instances. */
  accountAttempts?: number | undefined;
  accountWindowS?: number | undefined;
  /** TRUSTED_PROXIES: whose X-Forwarded-For names the client address. */
  trustedProxies?: readonly string[] | undefined;
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

/**
 * Sign-in by email and password, and sign-out. The form is protected by the
 * staff console's double-submit cookie (src/console/session.ts). There is no
 * `next` parameter: a sign-in always lands on /app, so no link can send a
 * signed-in browser elsewhere.
 */
export function customerSignInPages({ router, sendPublic }: CustomerPageKit, service: CustomerConsoleService, opts: CustomerSignInOptions): void {
  const loginLimiter = new RateLimiter();
  const clientAddress = clientAddressOf(opts.trustedProxies ?? []);

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
<p class="muted">Before you sign in, one cookie protects this form against other sites; after, only a session cookie is set. No analytics, no tracking.</p>`,
      flash,
    );
  };

  router.get('/app/login', (req, res) => {
    if (res.locals.customer) return res.redirect(303, '/app');
    signInPage(req, res, 200, flashFrom(req));
  });

  router.post('/app/login', async (req, res) => {
    const b = body(req);
    if (!signInTokenOk(req.headers.cookie, b._csrf)) return signInPage(req, res, 403, message('signin_form_expired'));
    const ip = clientAddress(req);
    const ua = req.get('user-agent')?.slice(0, MAX_USER_AGENT) ?? null;
    const taken = loginLimiter.take(`login:${ip}`, opts.loginRpm ?? 10);
    if (!taken.allowed) {
      res.setHeader('retry-after', String(taken.retryAfterSeconds));
      return signInPage(req, res, 429, message('signin_throttled'));
    }
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
    const id = await service.openSession(email, result, { ip, userAgent: ua });
    res.setHeader('set-cookie', [cookieHeader(id, SESSION_HOURS * 3600), signInCookieHeader('', 0)]);
    res.redirect(303, '/app');
  });

  router.post('/app/logout', async (req, res) => {
    const s = res.locals.customer;
    if (s && csrfOk(s, body(req)._csrf)) await service.signOut(s);
    res.setHeader('set-cookie', cookieHeader('', 0));
    back(res, '/app/login', 'signed_out');
  });
}
