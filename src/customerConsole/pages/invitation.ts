import type { Request, Response } from 'express';
import { html } from '../../console/html';
import { SIGN_IN_FORM_S, signInCookieHeader, signInToken, signInTokenOk } from '../../console/session';
import { AppError } from '../../errors';
import { RateLimiter } from '../../gateway/rateLimit';
import { clientAddressOf } from '../../http/clientAddress';
import type { Logger } from '../../logger';
import { MAX_SET_PASSWORD } from '../customerConsole.rules';
import type { MembersService } from '../members.service';
import { MAX_MEMBER_NAME } from '../members.rules';
import { body, type CustomerPageKit, type Flash } from './kit';

/** Longer than any token we issue: cut before anything looks at it. */
const MAX_TOKEN = 64;
const str = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max + 1) : '');

/**
 * Accepting an invitation (/app/invitations/accept?token=…), for someone not
 * signed in: the account's name and the role, and a form for a name and a
 * password. The form is protected like the sign-in form (the double-submit
 * cookie of src/console/session.ts). Token attempts are throttled per client
 * address, in memory and across instances (the sign-in throttle's table). An
 * unknown token answers 404, a spent one 410, and neither says more.
 */
export function invitationPages({ router, sendPublic }: CustomerPageKit, members: MembersService, opts: { logger: Logger; trustedProxies?: readonly string[] | undefined; rpm?: number }): void {
  const limiter = new RateLimiter();
  const clientAddress = clientAddressOf(opts.trustedProxies ?? []);
  const PATH = '/app/invitations/accept';

  const answer = (res: Response, status: number, content: ReturnType<typeof html>, flash: Flash | null) => {
    // The token is in this page's address: no other site learns it from a link followed here.
    res.setHeader('referrer-policy', 'no-referrer');
    sendPublic(res, status, 'Join an account', content, flash);
  };
  const failed = (res: Response, err: unknown) => {
    if (!(err instanceof AppError)) opts.logger.error({ errType: (err as Error)?.name, path: PATH }, 'invitation page failed');
    const text = err instanceof AppError ? err.message : 'Something went wrong; please try again later.';
    answer(res, err instanceof AppError ? err.status : 500, html`<p><a href="/app/login">Sign in</a></p>`, { kind: 'error', text });
  };

  /** Counts one token attempt; false (and the page answered) when the address is over its limit. */
  async function allowed(req: Request, res: Response): Promise<boolean> {
    const ip = clientAddress(req);
    const quick = limiter.take(`invitation:${ip}`, opts.rpm ?? 10);
    const shared = quick.allowed ? await members.takeTokenAttempt(ip) : quick;
    if (shared.allowed) return true;
    res.setHeader('retry-after', String(shared.retryAfterSeconds));
    answer(res, 429, html``, { kind: 'error', text: 'Too many attempts with invitation links. Wait a few minutes, then try again.' });
    return false;
  }

  const form = async (req: Request, res: Response, token: string, status: number, flash: Flash | null) => {
    const inv = await members.invitation(token);
    const csrf = signInToken(req.headers.cookie);
    res.setHeader('set-cookie', signInCookieHeader(csrf, SIGN_IN_FORM_S));
    answer(
      res,
      status,
      html`<p>You are invited to the MixRoute account <strong>${inv.accountName}</strong> as <strong>${inv.role}</strong>, with the address ${inv.email}.</p>
<form method="post" action="${PATH}">
  <input type="hidden" name="_csrf" value="${csrf}">
  <input type="hidden" name="token" value="${token}">
  <fieldset><legend>Choose your name and password</legend>
  <label for="name">Your name</label><input id="name" name="name" required maxlength="${MAX_MEMBER_NAME}" autocomplete="name">
  <label for="password">Password (at least 12 characters)</label><input id="password" name="password" type="password" required minlength="12" maxlength="${MAX_SET_PASSWORD}" autocomplete="new-password">
  <div><button type="submit">Join the account</button></div></fieldset>
</form>
<p class="muted">Then sign in with ${inv.email} and this password. Before you join, one cookie protects this form against other sites. Page views are counted only if you accept analytics.</p>`,
      flash,
    );
  };

  router.get(PATH, async (req, res) => {
    try {
      if (!(await allowed(req, res))) return;
      await form(req, res, str(req.query.token, MAX_TOKEN), 200, null);
    } catch (err) {
      failed(res, err);
    }
  });

  router.post(PATH, async (req, res) => {
    const b = body(req);
    const token = str(b.token, MAX_TOKEN);
    try {
      if (!signInTokenOk(req.headers.cookie, b._csrf)) {
        return await form(req, res, token, 403, { kind: 'error', text: 'The form expired or did not come from this site: fill it in again.' });
      }
      if (!(await allowed(req, res))) return;
      await members.accept(token, { name: str(b.name, MAX_MEMBER_NAME), password: str(b.password, MAX_SET_PASSWORD * 4) });
      res.setHeader('set-cookie', signInCookieHeader('', 0));
      res.redirect(303, '/app/login?msg=invitation_accepted');
    } catch (err) {
      // A refused name or password: the same form again (the invitation still open), with the reason.
      if (err instanceof AppError && err.status === 400) {
        try {
          return await form(req, res, token, 400, { kind: 'error', text: `Not joined: ${err.message}.` });
        } catch (again) {
          return failed(res, again);
        }
      }
      failed(res, err);
    }
  });
}
