import { describe, expect, it } from 'vitest';
import { keyHoldCap, keyLimitMessage, keyLimitRefusal, keyRemaining, secondsUntilReset } from '../../src/accounts/keyLimit.rules';
import { Money } from '../../src/shared/money.rules';

const m = (v: string) => new Money(v);

describe('the key spend-limit decision', () => {
  it('counts settled spend in the window and open holds against the limit', () => {
    expect(keyRemaining({ limit: m('10'), windowSpend: m('6'), held: m('3') }).toFixed()).toBe('1');
    expect(keyRemaining({ limit: m('10'), windowSpend: m('8'), held: m('3') }).toFixed()).toBe('0');
  });

  it('grants a slice up to the room left, and nothing when the room cannot cover the request', () => {
    const s = { limit: m('10'), windowSpend: m('6'), held: m('1.5') };
    expect(keyHoldCap(s, m('1'), m('5'))?.toFixed()).toBe('2.5');
    expect(keyHoldCap(s, m('1'), m('2'))?.toFixed()).toBe('2');
    // Exactly the room left is allowed: spend plus holds may reach the limit, not pass it.
    expect(keyHoldCap(s, m('2.5'), m('5'))?.toFixed()).toBe('2.5');
    expect(keyHoldCap(s, m('2.500000000001'), m('5'))).toBeUndefined();
  });

  it('says when the window resets, or that a lifetime limit does not', () => {
    const at = new Date('2026-12-06T23:59:59.500Z');
    const weekly = keyLimitRefusal(m('25'), 'weekly', at);
    expect(weekly.resetAt?.toISOString()).toBe('2026-12-07T00:00:00.000Z');
    expect(keyLimitMessage(weekly)).toContain('weekly spend limit of 25');
    expect(keyLimitMessage(weekly)).toContain('resets at 2026-12-07T00:00:00.000Z');
    expect(secondsUntilReset(weekly, at)).toBe(1);
    const lifetime = keyLimitRefusal(m('25'), null, at);
    expect(lifetime.resetAt).toBeNull();
    expect(secondsUntilReset(lifetime, at)).toBeNull();
    expect(keyLimitMessage(lifetime)).toContain('no reset window');
  });
});
