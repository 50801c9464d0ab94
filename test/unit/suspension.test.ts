import { describe, expect, it } from 'vitest';
import { suspendedMessage } from '../../src/gateway/suspendedRefusal';
import { suspensionBody } from '../../src/invoicing/suspension.service';

describe('the suspended refusal message', () => {
  it('tells the client to contact billing, at the issuer address when it is a plain one', () => {
    const m = suspendedMessage('billing@mixroute.example');
    expect(m).toContain('suspended, usually because of an unpaid invoice');
    expect(m).toContain('contact billing at billing@mixroute.example');
  });

  it('names no address that is not plain (or none at all)', () => {
    for (const contact of [undefined, null, '', 'billing', 'Billing <b@x.example>', 'b@x.example\r\nX-Injected: 1', 'a b@x.example', `${'a'.repeat(250)}@x.example`]) {
      const m = suspendedMessage(contact);
      expect(m, String(contact)).toContain('Please contact billing to restore access');
      expect(m).not.toMatch(/[\r\n<>]/);
    }
  });
});

describe('the reason of a suspension or reinstatement', () => {
  const ok = (reason: unknown) => suspensionBody.safeParse({ reason }).success;
  it('is 3-500 characters once trimmed, one line, and nothing else in the body', () => {
    expect(ok('abc')).toBe(true);
    expect(ok('  abc  ')).toBe(true);
    expect(ok('x'.repeat(500))).toBe(true);
    expect(ok('ab')).toBe(false);
    expect(ok('  ab  ')).toBe(false);
    expect(ok('x'.repeat(501))).toBe(false);
    expect(ok('unpaid\ninvoice')).toBe(false);
    expect(ok('unpaid \u001b[31m invoice')).toBe(false);
    expect(ok('unpaid \u0085 invoice')).toBe(false);
    expect(ok('überfällige Rechnung № 7 — 💸')).toBe(true);
    expect(ok(123)).toBe(false);
    expect(suspensionBody.safeParse({ reason: 'abc', actor: 'x' }).success).toBe(false);
  });
});
