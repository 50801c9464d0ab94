import type { Request, Response } from 'express';
import { RateLimiter } from '../../gateway/rateLimit';
import { clientAddressOf } from '../../http/clientAddress';
import type { StaffService } from '../../staff/staff.service';
import { html, page } from '../html';
import { flashFrom as flash, message } from '../messages';
import { cookieHeader, csrfOk, SESSION_HOURS, SIGN_IN_FORM_S, signInCookieHeader, signInIdentity, signInToken, signInTokenOk, type ConsoleSession } from '../session';
import { back, body, type PageKit } from './kit';

export interface SignInOptions {
  /** Sign-in attempts per client address and minute (default 10). */
  loginRpm?: number | undefined;
  /** Sign-in attempts per account (email or staff token) and window (default 5 per 15 minutes), across addresses and instances. */
  accountAttempts?: number | undefined;
  accountWindowS?: number | undefined;
  /** TRUSTED_PROXIES: whose X-Forwarded-For names the client address. */
  trustedProxies?: readonly string[] | undefined;
}

/** Sign-in (email and password, or a staff token), sign-out, and /console itself, which sends each role to its first page. */
export function signInPages({ router, get }: PageKit, staff: StaffService, deps: SignInOptions): void {
  const loginLimiter = new RateLimiter();
  const clientAddress = clientAddressOf(deps.trustedProxies ?? []);

  const nextOf = (v: unknown) => (typeof v === 'string' && v.startsWith('/console') ? v : '/console');
  const signInPage = (req: Request, res: Response, status: number, msg: ReturnType<typeof flash>, next: string) => {
    const token = signInToken(req.headers.cookie);
    res.setHeader('set-cookie', signInCookieHeader(token, SIGN_IN_FORM_S));
    res.setHeader('cache-control', 'no-store');
    res.status(status).type('html').send(
      page(
        { title: 'Sign in', role: null, nav: [], flash: msg },
        html`<form method="post" action="/console/login">
  <input type="hidden" name="_csrf" value="${token}">
  <input type="hidden" name="next" value="${next}">
  <fieldset><legend>Staff sign-in</legend>
  <label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username">
  <label for="password">Password (or a staff token, with the email left empty)</label><input id="password" name="password" type="password" autocomplete="current-password" required>
  <div><button type="submit">Sign in</button></div></fieldset>
</form>
<p class="muted">Before you sign in, one cookie protects this form against other sites; after, only a session cookie is set. No analytics, no tracking.</p>`,
      ).value,
    );
  };

  router.get('/console/login', (req, res) => {
    if (res.locals.session) return res.redirect(303, '/console');
    signInPage(req, res, 200, flash(req), nextOf(req.query.next));
  });

  router.post('/console/login', async (req, res) => {
    const b = body(req);
    const next = nextOf(b.next);
    if (!signInTokenOk(req.headers.cookie, b._csrf)) return signInPage(req, res, 403, message('signin_form_expired'), next);
    const ip = clientAddress(req);
    const ua = req.get('user-agent')?.slice(0, 512) ?? null;
    const taken = loginLimiter.take(`login:${ip}`, deps.loginRpm ?? 10);
    if (!taken.allowed) {
      res.setHeader('retry-after', String(taken.retryAfterSeconds));
      return signInPage(req, res, 429, message('signin_throttled'), next);
    }
    const email = (b.email ?? '').trim();
    const secret = b.password ?? '';
    // Per account as well as per address: many addresses guessing one staff member's password are throttled together.
    const identity = signInIdentity(email, secret);
    const account = await staff.takeSignInAttempt(identity, deps.accountAttempts ?? 5, deps.accountWindowS ?? 900);
    if (!account.allowed) {
      res.setHeader('retry-after', String(account.retryAfterSeconds));
      return signInPage(req, res, 429, message('signin_throttled'), next);
    }
    const result = await staff.checkCredentials(email, secret);
    if (!result.ok) {
      await staff.recordFailedSignIn(email ? 'bad_password_or_unknown_email' : 'bad_token', { ip, userAgent: ua });
      return back(res, '/console/login', 'signin_failed');
    }
    const id = await staff.openSession(identity, result, { ip, userAgent: ua });
    res.setHeader('set-cookie', [cookieHeader(id, SESSION_HOURS * 3600), signInCookieHeader('', 0)]);
    res.redirect(303, next);
  });

  router.post('/console/logout', async (req, res) => {
    const s = res.locals.session as ConsoleSession | undefined;
    if (s && csrfOk(s, body(req)._csrf)) await staff.revokeSession(res.locals.sessionId as string);
    res.setHeader('set-cookie', cookieHeader('', 0));
    back(res, '/console/login', 'signed_out');
  });

  get('/console', ['billing', 'compliance', 'admin'], async (_req, res, s) => {
    res.redirect(303, s.role === 'compliance' ? '/console/dsr' : '/console/accounts');
  });
}
