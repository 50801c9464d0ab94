import { describe, expect, it } from 'vitest';
import {
  acceptedStep,
  candidateSteps,
  linkExpiry,
  linkUsable,
  loginLinkMail,
  loginLinkMailKey,
  LOGIN_TOKEN_PATTERN,
  MAX_CODE_INPUT,
  normalRecoveryCode,
  parseCodeInput,
  RECOVERY_CODE_LENGTH,
  recoveryCodeFrom,
  totpStep,
} from '../../src/customerConsole/secondFactor.rules';

const at = (s: number) => new Date(s * 1000);

describe('second factor rules', () => {
  it('counts 30-second steps and accepts the step before, now and after', () => {
    expect(totpStep(at(59))).toBe(1);
    expect(totpStep(at(60))).toBe(2);
    expect(candidateSteps(at(90))).toEqual([2, 3, 4]);
  });

  it('accepts a code once: only for a step after the last accepted one, inside the window', () => {
    const now = at(3000); // step 100
    expect(acceptedStep([100], null, now)).toBe(100);
    expect(acceptedStep([100], 100, now)).toBeNull();
    expect(acceptedStep([99], 100, now)).toBeNull();
    expect(acceptedStep([101], 100, now)).toBe(101);
    // Outside the window (a code from a minute ago, or from the future), whatever matched.
    expect(acceptedStep([98], null, now)).toBeNull();
    expect(acceptedStep([102], null, now)).toBeNull();
    // The latest matching step wins, so an older one cannot be used after it.
    expect(acceptedStep([99, 101], null, now)).toBe(101);
    expect(acceptedStep([], null, now)).toBeNull();
  });

  it('reads the form: six digits are a TOTP code, a recovery code however it is typed, anything else is invalid', () => {
    expect(parseCodeInput('123456')).toEqual({ kind: 'totp', code: '123456' });
    expect(parseCodeInput(' 123 456 ')).toEqual({ kind: 'totp', code: '123456' });
    expect(parseCodeInput('12345')).toEqual({ kind: 'invalid' });
    expect(parseCodeInput('1234567')).toEqual({ kind: 'invalid' });
    expect(parseCodeInput('')).toEqual({ kind: 'invalid' });
    expect(parseCodeInput('1'.repeat(MAX_CODE_INPUT + 1))).toEqual({ kind: 'invalid' });
    const code = recoveryCodeFrom(new Uint8Array(RECOVERY_CODE_LENGTH).map((_, i) => i * 7));
    expect(parseCodeInput(code)).toEqual({ kind: 'recovery', code: normalRecoveryCode(code) });
    expect(parseCodeInput(code.toUpperCase().replace(/-/g, ' '))).toEqual({ kind: 'recovery', code: normalRecoveryCode(code) });
    // Look-alikes (0, 1, i, l, o) are not in the alphabet.
    expect(parseCodeInput('00000-11111-iiiii-lllll')).toEqual({ kind: 'invalid' });
    expect(parseCodeInput('<script>alert(1)</script>')).toEqual({ kind: 'invalid' });
  });

  it('makes recovery codes of 20 symbols in groups of five, from the random bytes given', () => {
    const a = recoveryCodeFrom(new Uint8Array(20).fill(0));
    const b = recoveryCodeFrom(new Uint8Array(20).fill(1));
    expect(a).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}$/);
    expect(a).not.toBe(b);
    expect(normalRecoveryCode(a)).toHaveLength(RECOVERY_CODE_LENGTH);
    expect(() => recoveryCodeFrom(new Uint8Array(5))).toThrow(/20 random bytes/);
  });

  it('a link is usable only unused, before its expiry, for a user not erased or removed, in an open account', () => {
    const now = at(10_000);
    const ok = { expiresAt: linkExpiry(now), usedAt: null, userErased: false, consoleRemoved: false, accountClosed: false };
    expect(linkExpiry(now).getTime() - now.getTime()).toBe(15 * 60_000);
    expect(linkUsable(ok, now)).toBe(true);
    expect(linkUsable({ ...ok, usedAt: now }, now)).toBe(false);
    expect(linkUsable({ ...ok, expiresAt: now }, now)).toBe(false);
    expect(linkUsable(ok, new Date(linkExpiry(now).getTime() + 1))).toBe(false);
    expect(linkUsable({ ...ok, userErased: true }, now)).toBe(false);
    expect(linkUsable({ ...ok, consoleRemoved: true }, now)).toBe(false);
    expect(linkUsable({ ...ok, accountClosed: true }, now)).toBe(false);
  });

  it('link tokens have one shape; the email names the link and its expiry; its outbox key is the hash, never the token', () => {
    expect(LOGIN_TOKEN_PATTERN.test('A'.repeat(43))).toBe(true);
    expect(LOGIN_TOKEN_PATTERN.test('A'.repeat(44))).toBe(false);
    expect(LOGIN_TOKEN_PATTERN.test(`${'A'.repeat(42)}=`)).toBe(false);
    const m = loginLinkMail({ url: 'https://console.example/app/login/link?token=abc', accountName: 'Acme', expiresAt: at(1000) });
    expect(m.body).toContain('https://console.example/app/login/link?token=abc');
    expect(m.body).toContain('"Acme"');
    expect(m.body).toContain(at(1000).toISOString());
    expect(loginLinkMailKey('f00d')).toBe('customer-login-link:f00d');
  });
});
