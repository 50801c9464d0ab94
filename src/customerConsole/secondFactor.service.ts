import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { HOTP, Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { systemClock, type Clock } from '../clock';
import type { Db } from '../db/knex';
import { ConflictError, ValidationError } from '../errors';
import { open, seal } from '../privacy/packages';
import { dataKey } from '../shared/dataKey';
import { signInAttemptsRepo } from '../staff/staff.data';
import {
  acceptStep,
  deleteTotp,
  insertSecondFactorFailure,
  passwordHashOf,
  replaceRecoveryCodes,
  spendRecoveryCode,
  totpOf,
  unusedRecoveryCodes,
  upsertPendingTotp,
  userEmailOf,
  type TotpRow,
} from './secondFactor.data';
import {
  acceptedStep,
  candidateSteps,
  MAX_CODE_INPUT,
  parseCodeInput,
  RECOVERY_CODE_COUNT,
  RECOVERY_CODE_LENGTH,
  recoveryCodeFrom,
  normalRecoveryCode,
  SECOND_FACTOR_ACCOUNT_ATTEMPTS,
  SECOND_FACTOR_USER_ATTEMPTS,
  SECOND_FACTOR_WINDOW_S,
  TOTP_DIGITS,
  TOTP_PERIOD_S,
} from './secondFactor.rules';
import { MAX_PASSWORD, MAX_USER_AGENT } from './customerConsole.rules';

/**
 * Two-step sign-in for the customer console (issue 26): a TOTP factor
 * (RFC 6238, computed with otpauth) whose secret is sealed with AES-256-GCM
 * under CONSOLE_TOTP_KEY, and ten one-time recovery codes kept as SHA-256
 * hashes (they carry ~99 random bits, so a fast hash is enough). Every code
 * check, on the sign-in form or the security page, counts against the same
 * per-user and per-account throttle (console_sign_in_attempts, as for
 * passwords), and every failure is a security event without the code.
 */
export interface SecondFactorDeps {
  db: Db;
  clock?: Clock;
  /** CONSOLE_TOTP_KEY (base64, 32 bytes) and DATA_DIR, where the key file lives when it is unset. */
  config: { consoleTotpKey: string | undefined; dataDir: string };
}

export interface CodeSource {
  ip: string | null;
  userAgent: string | null;
}

export type CodeCheck = { ok: true; via: 'totp' | 'recovery' } | { ok: false; throttled: false } | { ok: false; throttled: true; retryAfterSeconds: number };

/** The name authenticator apps show next to the code. */
const ISSUER = 'MixRoute';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const aad = (userId: string) => `user_totp:${userId}`;
const userIdentity = (userId: string) => `customer-2fa:user:${userId}`;
const accountIdentity = (accountId: string) => `customer-2fa:account:${accountId}`;

/** The sealing key of TOTP secrets: CONSOLE_TOTP_KEY, or DATA_DIR/secrets/console-totp.key. */
export function consoleTotpKey(config: SecondFactorDeps['config']): Buffer {
  return dataKey({ value: config.consoleTotpKey, setting: 'CONSOLE_TOTP_KEY', dataDir: config.dataDir, file: 'console-totp.key' });
}

export function secondFactorService({ db, clock = systemClock, config }: SecondFactorDeps) {
  let key: Buffer | undefined;
  const sealingKey = () => (key ??= consoleTotpKey(config));
  const attempts = signInAttemptsRepo(db);
  const bound = (ua: string | null) => (ua ? ua.slice(0, MAX_USER_AGENT) : null);

  const secretOf = (row: TotpRow) => Secret.fromBase32(open(sealingKey(), { ciphertext: row.ciphertext, iv: row.iv, authTag: row.auth_tag }, aad(row.user_id)).toString('utf8'));

  const secretOrNull = (row: TotpRow): Secret | null => {
    try {
      return secretOf(row);
    } catch {
      return null;
    }
  };

  const totpFor = (secret: Secret, label: string) => new TOTP({ issuer: ISSUER, label, secret, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_S });

  /** The candidate steps whose code equals `code` (compared in constant time). */
  const matchedSteps = (secret: Secret, code: string, now: Date) =>
    candidateSteps(now).filter((step) => {
      const want = Buffer.from(HOTP.generate({ secret, counter: step, digits: TOTP_DIGITS, algorithm: 'SHA1' }));
      const got = Buffer.from(code);
      return want.length === got.length && timingSafeEqual(want, got);
    });

  async function fail(who: { userId: string; accountId: string }, reason: string, from: CodeSource): Promise<void> {
    await insertSecondFactorFailure(db, { reason, account_id: who.accountId, source_ip: from.ip, user_agent: bound(from.userAgent) });
  }

  /** Counts one attempt for the user and the account; the larger wait if either is over its limit. */
  async function take(who: { userId: string; accountId: string }): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
    const u = await attempts.take(userIdentity(who.userId), SECOND_FACTOR_WINDOW_S);
    const a = await attempts.take(accountIdentity(who.accountId), SECOND_FACTOR_WINDOW_S);
    const over = [u.attempts > SECOND_FACTOR_USER_ATTEMPTS ? u : null, a.attempts > SECOND_FACTOR_ACCOUNT_ATTEMPTS ? a : null].filter((x) => x !== null);
    return over.length ? { allowed: false, retryAfterSeconds: Math.max(1, ...over.map((x) => x.retry_after)) } : { allowed: true };
  }

  /**
   * Checks a TOTP or recovery code (throttled, failures recorded). A TOTP
   * code is accepted for a step after the last accepted one, so it works
   * once; `confirming` accepts the unconfirmed secret being set up and
   * confirms it. A recovery code is spent.
   */
  async function check(who: { userId: string; accountId: string }, raw: string, from: CodeSource, opts: { confirming?: boolean; totpOnly?: boolean } = {}): Promise<CodeCheck> {
    const t = await take(who);
    if (!t.allowed) {
      await fail(who, 'throttled', from);
      return { ok: false, throttled: true, retryAfterSeconds: t.retryAfterSeconds };
    }
    const input = parseCodeInput(raw);
    let ok: 'totp' | 'recovery' | null = null;
    if (input.kind === 'totp') {
      const now = clock.now();
      ok = await db.transaction(async (trx) => {
        const row = await totpOf(trx, who.userId, { forUpdate: true });
        if (!row || (opts.confirming ? row.confirmed_at !== null : row.confirmed_at === null)) return null;
        // A secret sealed under another key (CONSOLE_TOTP_KEY lost or changed) matches no code; recovery codes still work.
        const secret = secretOrNull(row);
        if (!secret) return null;
        const step = acceptedStep(matchedSteps(secret, input.code, now), row.last_step === null ? null : Number(row.last_step), now);
        if (step === null) return null;
        return (await acceptStep(trx, who.userId, step, !!opts.confirming)) ? 'totp' : null;
      });
    } else if (input.kind === 'recovery' && !opts.totpOnly && !opts.confirming) {
      ok = (await spendRecoveryCode(db, who.userId, sha(input.code))) ? 'recovery' : null;
    }
    if (!ok) {
      await fail(who, input.kind === 'invalid' ? 'malformed_code' : `wrong_${input.kind}_code`, from);
      return { ok: false, throttled: false };
    }
    await attempts.clear(userIdentity(who.userId));
    return { ok: true, via: ok };
  }

  /** Ten new recovery codes; only their hashes are stored, the old ones stop working. */
  async function newRecoveryCodes(userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => recoveryCodeFrom(randomBytes(RECOVERY_CODE_LENGTH)));
    await replaceRecoveryCodes(db, userId, codes.map((c) => sha(normalRecoveryCode(c))));
    return codes;
  }

  return {
    /** The security page's view: whether the factor is on (and since when), a setup under way, recovery codes left. */
    async status(userId: string): Promise<{ enabled: boolean; since: string | null; settingUp: boolean; recoveryCodesLeft: number }> {
      const row = await totpOf(db, userId);
      return {
        enabled: !!row?.confirmed_at,
        since: row?.confirmed_at ? new Date(row.confirmed_at).toISOString() : null,
        settingUp: !!row && !row.confirmed_at,
        recoveryCodesLeft: row?.confirmed_at ? await unusedRecoveryCodes(db, userId) : 0,
      };
    },

    /** Starts a setup: a new secret, sealed, not yet required at sign-in. Refused while the factor is on. */
    async beginSetup(userId: string): Promise<void> {
      const secret = new Secret({ size: 20 });
      const sealed = seal(sealingKey(), Buffer.from(secret.base32), aad(userId));
      if (!(await upsertPendingTotp(db, userId, sealed))) throw new ConflictError('Two-step sign-in is on already: turn it off first to set up another app.');
    },

    /** What the setup page shows for the secret being set up: the secret in base32, the otpauth:// URI and its QR code (SVG), or null. */
    async setupView(userId: string): Promise<{ secret: string; uri: string; qrSvg: string } | null> {
      const row = await totpOf(db, userId);
      if (!row || row.confirmed_at) return null;
      const secret = secretOf(row);
      const uri = totpFor(secret, (await userEmailOf(db, userId)) ?? 'console user').toString();
      const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2, width: 200 });
      return { secret: secret.base32, uri, qrSvg };
    },

    /** Confirms the setup with a code from the app; returns the recovery codes, shown this once. */
    async confirmSetup(who: { userId: string; accountId: string }, code: string, from: CodeSource): Promise<CodeCheck & { recoveryCodes?: string[] }> {
      const r = await check(who, code, from, { confirming: true });
      if (!r.ok) return r;
      return { ...r, recoveryCodes: await newRecoveryCodes(who.userId) };
    },

    /** The sign-in's second step: a TOTP code or an unused recovery code of the pending session's user. */
    verifySignIn: (who: { userId: string; accountId: string }, code: string, from: CodeSource) => check(who, code, from),

    /** New recovery codes (the old ones stop working), after a current TOTP code. */
    async regenerateRecoveryCodes(who: { userId: string; accountId: string }, code: string, from: CodeSource): Promise<CodeCheck & { recoveryCodes?: string[] }> {
      const r = await check(who, code, from, { totpOnly: true });
      if (!r.ok) return r;
      return { ...r, recoveryCodes: await newRecoveryCodes(who.userId) };
    },

    /** Turns two-step sign-in off (the secret and the recovery codes are deleted), after a current code or the password. */
    async disable(who: { userId: string; accountId: string }, input: { code?: string; password?: string }, from: CodeSource): Promise<CodeCheck | { ok: true; via: 'password' }> {
      if (input.password) {
        if (input.password.length > MAX_PASSWORD) throw new ValidationError('The password is too long.');
        const t = await take(who);
        if (!t.allowed) {
          await fail(who, 'throttled', from);
          return { ok: false, throttled: true, retryAfterSeconds: t.retryAfterSeconds };
        }
        const hash = await passwordHashOf(db, who.userId);
        if (!hash || !(await bcrypt.compare(input.password, hash))) {
          await fail(who, 'wrong_password', from);
          return { ok: false, throttled: false };
        }
        await attempts.clear(userIdentity(who.userId));
        await deleteTotp(db, who.userId);
        return { ok: true, via: 'password' };
      }
      const r = await check(who, (input.code ?? '').slice(0, MAX_CODE_INPUT + 1), from);
      if (r.ok) await deleteTotp(db, who.userId);
      return r;
    },
  };
}

export type SecondFactorService = ReturnType<typeof secondFactorService>;
