import type { Request, Response } from 'express';
import { csrfField, html, raw, table, type Html } from '../../console/html';
import { clientAddressOf } from '../../http/clientAddress';
import type { CustomerConsoleService, CustomerSession } from '../customerConsole.service';
import { MAX_PASSWORD, MAX_USER_AGENT } from '../customerConsole.rules';
import { MAX_CODE_INPUT } from '../secondFactor.rules';
import type { CodeCheck, SecondFactorService } from '../secondFactor.service';
import { cookieHeader } from '../session';
import { back, body, type CustomerMessage, type CustomerPageKit } from './kit';

export interface SecurityPageOptions {
  /** Two-step sign-in; without it the section is not shown. */
  secondFactor?: SecondFactorService | undefined;
  trustedProxies?: readonly string[] | undefined;
}

const SETUP = '/app/security/two-step/setup';
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/**
 * "Where you are signed in": the user's recent sign-ins and open sessions
 * (device and coarse address only), "sign out everywhere", and two-step
 * sign-in: set up (secret, otpauth:// URI and an inline SVG QR code, which
 * the CSP allows), confirm, new recovery codes, turn off.
 */
export function securityPages({ get, post, send }: CustomerPageKit, service: CustomerConsoleService, opts: SecurityPageOptions = {}): void {
  const { secondFactor } = opts;
  const clientAddress = clientAddressOf(opts.trustedProxies ?? []);
  const sourceOf = (req: Request) => ({ ip: clientAddress(req), userAgent: req.get('user-agent')?.slice(0, MAX_USER_AGENT) ?? null });

  const twoStepSection = async (s: CustomerSession): Promise<Html> => {
    if (!secondFactor) return html``;
    const st = await secondFactor.status(s.userId);
    if (!st.enabled) {
      return html`<section aria-labelledby="two-step"><h2 id="two-step">Two-step sign-in</h2>
<p>Off. With it on, signing in (with your password or a sign-in link) also asks for a code from an authenticator app on your phone.</p>
<form method="post" action="${SETUP}">${csrfField(s.csrf)}<div><button type="submit">${st.settingUp ? 'Start the set-up again' : 'Set up two-step sign-in'}</button></div></form>
${st.settingUp ? html`<p><a href="${SETUP}">Continue the set-up</a></p>` : html``}</section>`;
    }
    return html`<section aria-labelledby="two-step"><h2 id="two-step">Two-step sign-in</h2>
<p>On since ${st.since}. Unused recovery codes: <strong id="recovery-left">${st.recoveryCodesLeft}</strong>${st.recoveryCodesLeft <= 2 ? html` (make new ones before you run out)` : html``}.</p>
<form method="post" action="/app/security/two-step/recovery-codes">${csrfField(s.csrf)}
<fieldset><legend>New recovery codes</legend><p>The codes you have now stop working.</p>
<label for="regen-code">Current code from your app</label><input id="regen-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="${MAX_CODE_INPUT}">
<div><button type="submit">Make new recovery codes</button></div></fieldset></form>
<form method="post" action="/app/security/two-step/disable">${csrfField(s.csrf)}
<fieldset><legend>Turn two-step sign-in off</legend>
<label for="off-code">Current code from your app</label><input id="off-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="${MAX_CODE_INPUT}">
<label for="off-password">or your password</label><input id="off-password" name="password" type="password" autocomplete="current-password" maxlength="${MAX_PASSWORD}">
<div><button type="submit">Turn off</button></div></fieldset></form></section>`;
  };

  const recoveryCodesPage = (req: Request, res: Response, s: CustomerSession, title: string, codes: readonly string[]) =>
    send(
      res,
      s,
      req,
      title,
      html`<p role="status">Keep these recovery codes somewhere safe: they are shown this once, and only their hashes are stored. Each one signs you in once instead of a code from your app.</p>
<ul id="recovery-codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
<p><a href="/app/security">Back to where you are signed in</a></p>`,
      '/app/security',
    );

  /** A refused code: the throttle's answer, or the form's message. */
  const refused = (res: Response, r: Exclude<CodeCheck, { ok: true }>, to: string, msg: CustomerMessage) => {
    if (r.throttled) res.setHeader('retry-after', String(r.retryAfterSeconds));
    back(res, to, r.throttled ? 'second_factor_throttled' : msg);
  };

  get('/app/security', async (req, res, s) => {
    const w = await service.whereSignedIn(s);
    send(
      res,
      s,
      req,
      'Where you are signed in',
      html`${table(
        ['Signed in', 'Device', 'Address', 'Expires', ''],
        w.sessions.map((x) => [html`${x.since}`, html`${x.device}`, html`${x.address}`, html`${x.expires}`, x.current ? html`<strong>this browser</strong>` : html``]),
        'Open sessions',
      )}
<form method="post" action="/app/security/sign-out-everywhere">${csrfField(s.csrf)}
<p>Signing out everywhere ends every session above, this one included. If you did not recognise a sign-in, also ask your account's owner to change your password.</p>
<div><button type="submit">Sign out everywhere</button></div></form>
${table(
  ['When', 'Device', 'Address'],
  w.logins.map((l) => [html`${l.at}`, html`${l.device}`, html`${l.address}`]),
  'Recent sign-ins (last 20)',
)}
<p class="muted">Addresses are shown coarsely (the last part hidden); the device is read from the browser's User-Agent. We look nothing up with any other service.</p>
${await twoStepSection(s)}`,
      '/app/security',
    );
  });

  post('/app/security/sign-out-everywhere', async (_req, res, s) => {
    await service.signOutEverywhere(s);
    res.setHeader('set-cookie', cookieHeader('', 0));
    back(res, '/app/login', 'signed_out_everywhere');
  });

  if (!secondFactor) return;

  post(SETUP, async (_req, res, s) => {
    await secondFactor.beginSetup(s.userId);
    res.redirect(303, SETUP);
  });

  get(SETUP, async (req, res, s) => {
    const v = await secondFactor.setupView(s.userId);
    if (!v) return res.redirect(303, '/app/security');
    send(
      res,
      s,
      req,
      'Set up two-step sign-in',
      html`<ol>
<li>Open an authenticator app on your phone (any app for "TOTP" codes) and add an account by scanning this code:
<figure id="totp-qr">${raw(v.qrSvg)}</figure></li>
<li>Or type this key into the app (time-based, 6 digits, every 30 seconds): <code id="totp-secret">${v.secret}</code>
<details><summary>The key as a link (otpauth://)</summary><code id="totp-uri">${v.uri}</code></details></li>
<li>Enter the code the app shows, to confirm:
<form method="post" action="/app/security/two-step/confirm">${csrfField(s.csrf)}
<label for="confirm-code">Code</label><input id="confirm-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="${MAX_CODE_INPUT}">
<div><button type="submit">Turn on two-step sign-in</button></div></form></li>
</ol>
<p class="muted">Until you confirm, signing in does not ask for a code. Keep the key to yourself: whoever has it can make your codes.</p>`,
      '/app/security',
    );
  });

  post('/app/security/two-step/confirm', async (req, res, s) => {
    const r = await secondFactor.confirmSetup(s, str(body(req).code), sourceOf(req));
    if (!r.ok) return refused(res, r, SETUP, 'two_step_setup_failed');
    recoveryCodesPage(req, res, s, 'Two-step sign-in is on', r.recoveryCodes ?? []);
  });

  post('/app/security/two-step/recovery-codes', async (req, res, s) => {
    const r = await secondFactor.regenerateRecoveryCodes(s, str(body(req).code), sourceOf(req));
    if (!r.ok) return refused(res, r, '/app/security', 'two_step_code_failed');
    recoveryCodesPage(req, res, s, 'New recovery codes', r.recoveryCodes ?? []);
  });

  post('/app/security/two-step/disable', async (req, res, s) => {
    const b = body(req);
    const r = await secondFactor.disable(s, { code: str(b.code), password: str(b.password) }, sourceOf(req));
    if (!r.ok) return refused(res, r, '/app/security', 'two_step_code_failed');
    back(res, '/app/security', 'two_step_disabled');
  });
}
