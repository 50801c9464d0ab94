import { describe, expect, it } from 'vitest';
import { windowBounds, windowFirstDay } from '../../src/accounts/keyWindow.rules';

const at = (iso: string) => new Date(iso);
const iso = (d: Date | null) => d?.toISOString() ?? null;

describe('key spend-limit windows (UTC calendar)', () => {
  it('daily: from midnight UTC to the next, whatever the hour', () => {
    expect(windowBounds('daily', at('2026-12-04T23:59:59.999Z'))).toEqual({ start: at('2026-12-04T00:00:00Z'), nextReset: at('2026-12-05T00:00:00Z') });
    expect(iso(windowBounds('daily', at('2026-12-05T00:00:00Z')).start)).toBe('2026-12-05T00:00:00.000Z');
  });

  it('weekly: Monday to Monday (ISO weeks), across a month and a year end', () => {
    // 2026-12-06 is a Sunday: still the week that began Monday 2026-11-30.
    expect(windowBounds('weekly', at('2026-12-06T23:59:59Z'))).toEqual({ start: at('2026-11-30T00:00:00Z'), nextReset: at('2026-12-07T00:00:00Z') });
    expect(iso(windowBounds('weekly', at('2026-12-07T00:00:00Z')).start)).toBe('2026-12-07T00:00:00.000Z');
    // 2027-01-01 is a Friday: the week began Monday 2026-12-28.
    expect(iso(windowBounds('weekly', at('2027-01-01T12:00:00Z')).start)).toBe('2026-12-28T00:00:00.000Z');
  });

  it('monthly: from the first of the month, including February and December', () => {
    expect(windowBounds('monthly', at('2028-02-29T10:00:00Z'))).toEqual({ start: at('2028-02-01T00:00:00Z'), nextReset: at('2028-03-01T00:00:00Z') });
    expect(windowBounds('monthly', at('2026-12-31T23:59:59Z'))).toEqual({ start: at('2026-12-01T00:00:00Z'), nextReset: at('2027-01-01T00:00:00Z') });
  });

  it('no window: a lifetime limit never resets', () => {
    expect(windowBounds(null, at('2026-12-04T12:00:00Z'))).toEqual({ start: null, nextReset: null });
    expect(windowFirstDay(null, at('2026-12-04T12:00:00Z'))).toBeNull();
    expect(windowFirstDay('weekly', at('2026-12-06T12:00:00Z'))).toBe('2026-11-30');
  });
});
