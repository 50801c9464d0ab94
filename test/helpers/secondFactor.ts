import fs from 'node:fs';
import path from 'node:path';
import { HOTP, Secret } from 'otpauth';
import type { Config } from '../../src/config';
import { type Browser, csrfOf, hidden } from './customerConsole';

/**
 * An authenticator app for tests: the codes of a secret, computed with otpauth
 * as a phone would. Each code is for a step after the last one handed out and
 * within the server's window (the step before, now, the step after), so a
 * test never replays a code unless it means to.
 */
export function authenticator(secretBase32: string) {
  const secret = Secret.fromBase32(secretBase32);
  let last = -Infinity;
  const stepNow = () => Math.floor(Date.now() / 30_000);
  const at = (step: number) => HOTP.generate({ secret, counter: step, digits: 6, algorithm: 'SHA1' });
  return {
    /** The code of a fresh step (the earliest unused one the server still accepts). */
    next(): string {
      const step = Math.max(stepNow() - 1, last + 1);
      if (step > stepNow() + 1) throw new Error('no unused TOTP step left in the window: use a recovery code');
      last = step;
      return at(step);
    },
    /** The code of a step, used or not (for replay tests). */
    at,
    stepNow,
  };
}

/** Sets up two-step sign-in through /app/security as the signed-in browser does: its authenticator and the recovery codes shown. */
export async function enableTwoStep(b: Browser) {
  const csrf = await csrfOf(b);
  const start = await b.post('/app/security/two-step/setup', { _csrf: csrf });
  if (start.status !== 303) throw new Error(`setup answered ${start.status}`);
  const page = await b.get('/app/security/two-step/setup');
  const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.body)?.[1];
  if (!secret) throw new Error('no secret on the setup page');
  const app = authenticator(secret);
  const done = await b.post('/app/security/two-step/confirm', { _csrf: hidden(page.body, '_csrf'), code: app.next() });
  const recoveryCodes = [...done.body.matchAll(/<li><code>([a-z2-9-]{23})<\/code><\/li>/g)].map((m) => m[1]!);
  if (recoveryCodes.length !== 10) throw new Error(`confirm answered ${done.status} without 10 recovery codes`);
  return { secret, app, recoveryCodes, setupPage: page.body, confirmPage: done.body };
}

/** Posts a code on the second-factor form with the pending session's token. */
export async function postSecondFactor(b: Browser, code: string) {
  const form = await b.get('/app/login/second-factor');
  return b.post('/app/login/second-factor', { _csrf: hidden(form.body, '_csrf'), code });
}

/** The dev mailbox (DATA_DIR/mailbox): every message written so far. */
export function mailbox(config: Config): { to: string; subject: string; body: string; key: string }[] {
  if (!fs.existsSync(config.mail.mailboxDir)) return [];
  return fs
    .readdirSync(config.mail.mailboxDir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(config.mail.mailboxDir, f), 'utf8')));
}

/** The sign-in link tokens mailed to an address, oldest first. */
export const linkTokensTo = (config: Config, email: string) =>
  mailbox(config)
    .filter((m) => m.to.toLowerCase() === email.toLowerCase() && m.key.startsWith('customer-login-link:'))
    .map((m) => /\/app\/login\/link\?token=([A-Za-z0-9_-]{43})/.exec(m.body)?.[1] ?? '');
