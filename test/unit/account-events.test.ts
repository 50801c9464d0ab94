import { describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { windowBounds } from '../../src/accounts/keyWindow.rules';
import {
  alertedAmount,
  balanceCrossings,
  balanceDedupeKey,
  eventEmail,
  keyCrossings,
  normalizeThresholds,
} from '../../src/notifications/events.rules';

const m = (v: string | number) => new Money(v);
const ts = (...v: string[]) => v.map(m);
const types = (cs: { type: string; threshold: string }[]) => cs.map((c) => `${c.type}@${c.threshold}`);

describe('balance crossings', () => {
  it('balance.low fires when the balance falls below a threshold, and not while it stays below', () => {
    expect(types(balanceCrossings(m(60), m(40), ts('50')))).toEqual(['balance.low@50']);
    expect(balanceCrossings(m(40), m(30), ts('50'))).toEqual([]);
    expect(balanceCrossings(m(70), m(60), ts('50'))).toEqual([]);
  });

  it('exactly at the threshold is not below it; falling from it is a crossing', () => {
    expect(balanceCrossings(m(60), m(50), ts('50'))).toEqual([]);
    expect(types(balanceCrossings(m(50), m('49.99'), ts('50')))).toEqual(['balance.low@50']);
  });

  it('each threshold fires separately, several at once when one change falls past several', () => {
    const thresholds = ts('10', '50', '25');
    expect(types(balanceCrossings(m(60), m(30), thresholds))).toEqual(['balance.low@50']);
    expect(types(balanceCrossings(m(30), m(20), thresholds))).toEqual(['balance.low@25']);
    expect(types(balanceCrossings(m(60), m(5), thresholds))).toEqual(['balance.low@50', 'balance.low@25', 'balance.low@10']);
  });

  it('balance.depleted when the amount reaches zero or less, once', () => {
    expect(types(balanceCrossings(m(5), m(0), []))).toEqual(['balance.depleted@0']);
    expect(types(balanceCrossings(m(5), m(-1), ts('10')))).toEqual(['balance.depleted@0']);
    expect(balanceCrossings(m(0), m(-1), [])).toEqual([]);
    expect(types(balanceCrossings(m(20), m(-1), ts('10')))).toEqual(['balance.low@10', 'balance.depleted@0']);
  });

  it('balance.recovered only back at or above the highest threshold', () => {
    const thresholds = ts('10', '50');
    expect(balanceCrossings(m(5), m(30), thresholds)).toEqual([]);
    expect(types(balanceCrossings(m(30), m(50), thresholds))).toEqual(['balance.recovered@50']);
    expect(types(balanceCrossings(m(-3), m(100), thresholds))).toEqual(['balance.recovered@50']);
    expect(balanceCrossings(m(60), m(100), thresholds)).toEqual([]);
  });

  it('without thresholds, recovered means back above zero', () => {
    expect(types(balanceCrossings(m(0), m(10), []))).toEqual(['balance.recovered@0']);
    expect(types(balanceCrossings(m(-2), m('0.01'), []))).toEqual(['balance.recovered@0']);
    expect(balanceCrossings(m(-2), m(0), [])).toEqual([]);
    expect(balanceCrossings(m(1), m(10), [])).toEqual([]);
  });

  it('a fall, a recovery and a fall again are two crossings with different dedupe keys', () => {
    const a = 'acc';
    const [first] = balanceCrossings(m(60), m(40), ts('50'));
    const [second] = balanceCrossings(m(55), m(45), ts('50'));
    expect(balanceDedupeKey(a, first!, 'usage:acc:1')).not.toBe(balanceDedupeKey(a, second!, 'usage:acc:2'));
    // The same movement decided twice (a retried settlement) gives the same key.
    expect(balanceDedupeKey(a, first!, 'usage:acc:1')).toBe(balanceDedupeKey(a, second!, 'usage:acc:1'));
  });

  it('postpaid accounts are watched on balance plus credit limit; holds play no part', () => {
    expect(alertedAmount({ plan: 'postpaid', balance: m(-80), creditLimit: m(100) }).toFixed()).toBe('20');
    expect(alertedAmount({ plan: 'prepaid', balance: m(-80), creditLimit: m(100) }).toFixed()).toBe('-80');
  });
});

describe('key limit crossings', () => {
  const noon = new Date('2026-12-04T12:00:00Z');
  // The window comes from the one window rule (keyWindow.rules.ts), as settlement passes it in.
  const key = (at: Date, over: Partial<{ limit: string; window: 'daily' | null; percents: number[] }> = {}) => ({
    keyId: 'k1',
    limit: m(over.limit ?? '10'),
    windowStart: windowBounds(over.window === undefined ? 'daily' : over.window, at).start,
    percents: over.percents ?? [80, 100],
  });

  it('nothing below the first percent', () => {
    expect(keyCrossings(key(noon), m('7.99'))).toEqual([]);
  });

  it('80 % is key.limit_threshold, 100 % key.limit_reached', () => {
    expect(keyCrossings(key(noon), m(8)).map((c) => [c.type, c.percent])).toEqual([['key.limit_threshold', 80]]);
    expect(keyCrossings(key(noon), m(10)).map((c) => [c.type, c.percent])).toEqual([
      ['key.limit_threshold', 80],
      ['key.limit_reached', 100],
    ]);
  });

  it('the dedupe key is per key, window, limit and percent: once per window, again in the next', () => {
    const later = new Date('2026-12-04T23:00:00Z');
    const nextDay = new Date('2026-12-05T01:00:00Z');
    const k = (at: Date, over = {}) => keyCrossings(key(at, over), m(9))[0]!.dedupeKey;
    expect(k(noon)).toBe(k(later));
    expect(k(noon)).not.toBe(k(nextDay));
    expect(k(noon, { limit: '11' })).not.toBe(k(noon));
    expect(k(noon, { window: null })).toContain(':lifetime:');
    expect(k(noon, { window: null })).toBe(k(nextDay, { window: null }));
  });

  it("percents are the key's own; bad ones are ignored", () => {
    expect(keyCrossings(key(noon, { percents: [50, 0, 101, 50] }), m(6)).map((c) => c.percent)).toEqual([50]);
  });
});

describe('event emails and settings', () => {
  it('the email names the event, its ids and amounts and links, and nothing else', () => {
    const mail = eventEmail({
      id: 'e1',
      type: 'balance.low',
      accountId: 'a1',
      data: { accountId: 'a1', threshold: '50', balance: '40', currency: 'USD', links: { credits: '/v1/credits' } },
    });
    expect(mail.subject).toBe('MixRoute: balance below 50 USD');
    expect(mail.body).toContain('Event: balance.low');
    expect(mail.body).toContain('balance: 40');
    expect(mail.body).toContain('credits: GET /v1/credits');
  });

  it('thresholds are deduplicated and sorted, at most five', () => {
    expect(normalizeThresholds(['10', '50.00', '10.0', '25'])).toEqual(['50', '25', '10']);
    expect(() => normalizeThresholds(['1', '2', '3', '4', '5', '6'])).toThrow(/at most 5/);
  });
});
