/**
 * The customer console's two-step sign-in and one-time sign-in links: which
 * TOTP step a code may use, the shape of codes and tokens, how many attempts
 * and links are allowed, and when a link is usable. Pure: the service computes
 * the codes (otpauth) and reads the clock, and passes both in.
 */

/** RFC 6238 defaults, which every authenticator app reads: 30-second steps, 6 digits, SHA-1. */
export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
/** Clock drift accepted between the server and the phone: one step either side. */
export const TOTP_WINDOW = 1;

/** Recovery codes issued at a time; each works once. */
export const RECOVERY_CODE_COUNT = 10;

/** Failed second-factor codes: per user (across addresses) and per account, in one window. */
export const SECOND_FACTOR_USER_ATTEMPTS = 5;
export const SECOND_FACTOR_ACCOUNT_ATTEMPTS = 20;
export const SECOND_FACTOR_WINDOW_S = 900;

/** Sign-in links: valid this long, at most this many per address and window, one per user of at most this many users. */
export const LOGIN_LINK_TTL_S = 900;
export const LOGIN_LINKS_PER_EMAIL = 3;
export const LOGIN_LINK_WINDOW_S = 900;
export const MAX_LINK_USERS = 10;

/** The sign-in link token: 32 random bytes, base64url (43 characters). */
export const LOGIN_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Longest code accepted on the second-factor form (a recovery code with separators and spaces); longer is refused before any lookup. */
export const MAX_CODE_INPUT = 64;

/** The TOTP time step of an instant. */
export const totpStep = (now: Date): number => Math.floor(now.getTime() / 1000 / TOTP_PERIOD_S);

/** The steps a code may be from at `now`: the current one and TOTP_WINDOW either side. */
export function candidateSteps(now: Date): number[] {
  const s = totpStep(now);
  const out: number[] = [];
  for (let d = -TOTP_WINDOW; d <= TOTP_WINDOW; d++) out.push(s + d);
  return out;
}

/**
 * Which step a TOTP code is accepted for: the latest of the steps it matched
 * (as computed for candidateSteps) that is after the last accepted step, or
 * null. A code therefore works once, and no older code works after a newer
 * one was used.
 */
export function acceptedStep(matchedSteps: readonly number[], lastStep: number | null, now: Date): number | null {
  const allowed = new Set(candidateSteps(now));
  const usable = matchedSteps.filter((s) => allowed.has(s) && (lastStep === null || s > lastStep));
  return usable.length ? Math.max(...usable) : null;
}

/** What was typed on the second-factor form, as a TOTP code, a recovery code, or neither. */
export type CodeInput = { kind: 'totp'; code: string } | { kind: 'recovery'; code: string } | { kind: 'invalid' };

/** Recovery codes: 20 characters of a base32 alphabet without look-alikes, shown in groups of 5 (about 100 bits). */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
export const RECOVERY_CODE_LENGTH = 20;

/** A recovery code from `bytes` (at least RECOVERY_CODE_LENGTH random bytes), grouped for reading: xxxxx-xxxxx-xxxxx-xxxxx. */
export function recoveryCodeFrom(bytes: Uint8Array): string {
  if (bytes.length < RECOVERY_CODE_LENGTH) throw new Error(`a recovery code needs ${RECOVERY_CODE_LENGTH} random bytes`);
  let s = '';
  // 31 symbols: the modulo bias (256 % 31 = 8) costs well under a bit of the code's ~99 bits.
  for (let i = 0; i < RECOVERY_CODE_LENGTH; i++) s += RECOVERY_ALPHABET[bytes[i]! % RECOVERY_ALPHABET.length];
  return s.match(/.{5}/g)!.join('-');
}

/** A recovery code as stored (hashed) and compared: lower case, without separators or spaces. */
export const normalRecoveryCode = (code: string): string => code.toLowerCase().replace(/[\s-]/g, '');

/** Reads the form's code: six digits (spaces allowed) are a TOTP code; a well-formed recovery code is one; anything else is invalid. */
export function parseCodeInput(raw: string): CodeInput {
  if (raw.length === 0 || raw.length > MAX_CODE_INPUT) return { kind: 'invalid' };
  const digits = raw.replace(/\s/g, '');
  if (new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(digits)) return { kind: 'totp', code: digits };
  const r = normalRecoveryCode(raw);
  if (r.length === RECOVERY_CODE_LENGTH && [...r].every((c) => RECOVERY_ALPHABET.includes(c))) return { kind: 'recovery', code: r };
  return { kind: 'invalid' };
}

/** Whether a sign-in link row may sign in now: not used, not expired, and its user may use the console. */
export function linkUsable(link: { expiresAt: Date; usedAt: Date | null; userErased: boolean; consoleRemoved: boolean; accountClosed: boolean }, now: Date): boolean {
  return link.usedAt === null && link.expiresAt.getTime() > now.getTime() && !link.userErased && !link.consoleRemoved && !link.accountClosed;
}

/** When a link created at `now` expires. */
export const linkExpiry = (now: Date): Date => new Date(now.getTime() + LOGIN_LINK_TTL_S * 1000);

/** The outbox key of a link's email: unique per link (the token's hash), so a retried send queues it once. */
export const loginLinkMailKey = (tokenHash: string): string => `customer-login-link:${tokenHash}`;

/** The email of a sign-in link: the link, when it expires, and what to do if it was not you. */
export function loginLinkMail(opts: { url: string; accountName: string; expiresAt: Date }): { subject: string; body: string } {
  return {
    subject: 'Your MixRoute sign-in link',
    body: [
      `Someone asked to sign in to the MixRoute console for the account "${opts.accountName}" with this email address.`,
      '',
      'To sign in, open this link and press "Sign in". It works once, until ' + opts.expiresAt.toISOString() + ' (15 minutes):',
      '',
      opts.url,
      '',
      'If this was not you, ignore this email: nothing happens without the link. Two-step sign-in, if you set it up, is still asked for.',
    ].join('\n'),
  };
}
