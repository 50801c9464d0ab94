import { describe, expect, it } from 'vitest';
import {
  addBusinessDays,
  addCalendarDays,
  addCalendarMonths,
  deadlines,
  extendedDeadline,
  JURISDICTIONS,
  pausedDeadline,
  RULES,
  type Deadlines,
  type Jurisdiction,
} from '../../src/privacy/deadlines.rules';

const DAY = 86_400_000;

describe('rules table', () => {
  it('lists every jurisdiction and which clocks stop during verification', () => {
    expect(JURISDICTIONS).toEqual(['gdpr', 'uk_gdpr', 'ccpa', 'unknown']);
    expect(Object.keys(RULES).sort()).toEqual(['ccpa', 'gdpr', 'uk_gdpr']);
    expect(RULES.gdpr.pausesDuringVerification).toBe(false);
    expect(RULES.uk_gdpr.pausesDuringVerification).toBe(true);
    expect(RULES.ccpa.pausesDuringVerification).toBe(false);
    expect(RULES.ccpa.acknowledgement).toEqual({ unit: 'businessDays', amount: 10 });
    expect(RULES.gdpr.acknowledgement).toBeNull();
    expect(Object.isFrozen(RULES) && Object.isFrozen(RULES.gdpr) && Object.isFrozen(JURISDICTIONS)).toBe(true);
  });
});

describe('addCalendarMonths', () => {
  it('clamps to the last day of the target month', () => {
    expect(addCalendarMonths('2026-01-31', 1)).toBe('2026-02-28');
    expect(addCalendarMonths('2028-01-31', 1)).toBe('2028-02-29');
    expect(addCalendarMonths('2100-01-31', 1)).toBe('2100-02-28'); // not a leap year
    expect(addCalendarMonths('2000-01-31', 1)).toBe('2000-02-29'); // a leap year
    expect(addCalendarMonths('2026-03-31', 1)).toBe('2026-04-30');
    expect(addCalendarMonths('2026-11-30', 3)).toBe('2027-02-28');
  });

  it('keeps the day of month when it exists, across years and backwards', () => {
    expect(addCalendarMonths('2026-05-15', 1)).toBe('2026-06-15');
    expect(addCalendarMonths('2026-12-15', 1)).toBe('2027-01-15');
    expect(addCalendarMonths('2026-03-31', -1)).toBe('2026-02-28');
    expect(addCalendarMonths('2026-01-15', -1)).toBe('2025-12-15');
    expect(addCalendarMonths('2026-01-15', 0)).toBe('2026-01-15');
  });
});

describe('addBusinessDays / addCalendarDays', () => {
  it('counts Monday to Friday only', () => {
    // 2026-01-02 is a Friday, 2026-01-03 a Saturday.
    expect(addBusinessDays('2026-01-02', 1)).toBe('2026-01-05');
    expect(addBusinessDays('2026-01-03', 1)).toBe('2026-01-05');
    expect(addBusinessDays('2026-01-02', 10)).toBe('2026-01-16');
    expect(addBusinessDays('2026-01-07', 10)).toBe('2026-01-21');
    expect(addBusinessDays('2026-01-05', -1)).toBe('2026-01-02');
    expect(addBusinessDays('2026-01-03', 0)).toBe('2026-01-03');
  });

  it('adds calendar days across month and leap-year ends', () => {
    expect(addCalendarDays('2026-01-02', 45)).toBe('2026-02-16');
    expect(addCalendarDays('2028-02-28', 1)).toBe('2028-02-29');
    expect(addCalendarDays('2026-12-31', 1)).toBe('2027-01-01');
  });
});

describe('GDPR and UK GDPR', () => {
  it('31 January -> last day of February (non-leap year)', () => {
    expect(deadlines('gdpr', '2027-01-31T10:00:00Z')).toEqual({
      jurisdiction: 'gdpr',
      dueDate: '2027-02-28',
      dueAt: '2027-03-01T00:00:00.000Z',
      ackDueDate: null,
      ackDueAt: null,
      extensionNoticeBy: '2027-03-01T00:00:00.000Z',
      pausesDuringVerification: false,
    });
  });

  it('31 January -> 29 February in a leap year', () => {
    const d = deadlines('uk_gdpr', '2028-01-31T23:59:59.999Z');
    expect(d.dueDate).toBe('2028-02-29');
    expect(d.dueAt).toBe('2028-03-01T00:00:00.000Z');
    expect(d.pausesDuringVerification).toBe(true);
  });

  it('mid-month -> same day of the next month', () => {
    expect(deadlines('gdpr', '2026-05-15T00:00:00Z').dueDate).toBe('2026-06-15');
    expect(deadlines('gdpr', '2026-12-15T12:00:00Z').dueDate).toBe('2027-01-15');
  });

  it('31 March -> 30 April', () => {
    const d = deadlines('gdpr', '2026-03-31T08:00:00Z');
    expect(d.dueDate).toBe('2026-04-30');
    expect(d.dueAt).toBe('2026-05-01T00:00:00.000Z');
  });

  it('counts from the UTC date of receipt, whatever the offset written', () => {
    // 23:30 at -02:00 is 01:30 UTC the next day.
    expect(deadlines('gdpr', '2026-05-15T23:30:00-02:00').dueDate).toBe('2026-06-16');
    // 00:30 at +02:00 is 22:30 UTC the day before.
    expect(deadlines('gdpr', '2026-05-15T00:30:00+02:00').dueDate).toBe('2026-06-14');
  });

  it('extension: receipt + 3 months, clamped, announced within the first month', () => {
    const received = '2027-01-31T10:00:00Z';
    const ext = extendedDeadline('gdpr', received, deadlines('gdpr', received));
    expect(ext).toEqual({
      jurisdiction: 'gdpr',
      dueDate: '2027-04-30', // not 28 April (due date 28 Feb + 2 months)
      dueAt: '2027-05-01T00:00:00.000Z',
      ackDueDate: null,
      ackDueAt: null,
      extensionNoticeBy: '2027-03-01T00:00:00.000Z',
      pausesDuringVerification: false,
    });
    const received2 = '2026-11-30T10:00:00Z';
    expect(extendedDeadline('uk_gdpr', received2, deadlines('uk_gdpr', received2)).dueDate).toBe('2027-02-28');
  });

  it('allows one extension only', () => {
    const received = '2026-05-15T10:00:00Z';
    const once = extendedDeadline('gdpr', received, deadlines('gdpr', received));
    expect(() => extendedDeadline('gdpr', received, once)).toThrow(/already been extended/);
  });
});

describe('CCPA', () => {
  it('acknowledges within 10 business days, over weekends, and answers within 45 days', () => {
    // Received on a Friday: two full working weeks follow.
    expect(deadlines('ccpa', '2026-01-02T10:00:00Z')).toEqual({
      jurisdiction: 'ccpa',
      dueDate: '2026-02-16',
      dueAt: '2026-02-17T00:00:00.000Z',
      ackDueDate: '2026-01-16',
      ackDueAt: '2026-01-17T00:00:00.000Z',
      extensionNoticeBy: '2026-02-17T00:00:00.000Z',
      pausesDuringVerification: false,
    });
    // Received on a Saturday: counting starts on Monday.
    expect(deadlines('ccpa', '2026-01-03T10:00:00Z').ackDueDate).toBe('2026-01-16');
    // Received on a Wednesday: the tenth business day is the Wednesday two weeks later.
    expect(deadlines('ccpa', '2026-01-07T10:00:00Z').ackDueDate).toBe('2026-01-21');
  });

  it('extends once to 90 days from receipt, notice within the first 45, ack unchanged', () => {
    const received = '2026-01-02T10:00:00Z';
    expect(extendedDeadline('ccpa', received, deadlines('ccpa', received))).toEqual({
      jurisdiction: 'ccpa',
      dueDate: '2026-04-02',
      dueAt: '2026-04-03T00:00:00.000Z',
      ackDueDate: '2026-01-16',
      ackDueAt: '2026-01-17T00:00:00.000Z',
      extensionNoticeBy: '2026-02-17T00:00:00.000Z',
      pausesDuringVerification: false,
    });
  });

  it('does not stop the clock during verification', () => {
    const d = deadlines('ccpa', '2026-01-02T10:00:00Z');
    expect(pausedDeadline(d, 10 * DAY)).toEqual(d);
  });
});

describe('unknown jurisdiction: the earliest of all', () => {
  it('takes the GDPR answer date, the CCPA ack and the earliest extended date (CCPA here)', () => {
    // Received Monday 1 March 2027: GDPR due 1 April vs CCPA 15 April; extended GDPR 1 June vs CCPA 30 May.
    const received = '2027-03-01T10:00:00Z';
    const d = deadlines('unknown', received);
    expect(d).toEqual({
      jurisdiction: 'unknown',
      dueDate: '2027-04-01',
      dueAt: '2027-04-02T00:00:00.000Z',
      ackDueDate: '2027-03-15',
      ackDueAt: '2027-03-16T00:00:00.000Z',
      extensionNoticeBy: '2027-04-02T00:00:00.000Z',
      pausesDuringVerification: false,
    });
    const ext = extendedDeadline('unknown', received, d);
    expect(ext.dueDate).toBe('2027-05-30');
    expect(ext.extensionNoticeBy).toBe('2027-04-02T00:00:00.000Z');
    expect(ext.ackDueDate).toBe('2027-03-15');
  });

  it('takes the GDPR extended date when it is earlier', () => {
    // Received Sunday 31 Jan 2027: GDPR extended 30 April vs CCPA 1 May; ack Friday 12 February.
    const received = '2027-01-31T10:00:00Z';
    const d = deadlines('unknown', received);
    expect(d.dueDate).toBe('2027-02-28');
    expect(d.ackDueDate).toBe('2027-02-12');
    expect(extendedDeadline('unknown', received, d).dueDate).toBe('2027-04-30');
  });

  it('never stops the clock', () => {
    const d = deadlines('unknown', '2027-03-01T10:00:00Z');
    expect(pausedDeadline(d, 5 * DAY)).toEqual(d);
  });
});

describe('UK GDPR verification pause', () => {
  const received = '2026-05-15T09:00:00Z'; // due 2026-06-15
  const base = deadlines('uk_gdpr', received);

  it('moves the due date and the notice deadline by the paused time rounded up to whole days', () => {
    expect(base.dueDate).toBe('2026-06-15');
    expect(pausedDeadline(base, 0)).toEqual(base);
    expect(pausedDeadline(base, 1)).toEqual({
      ...base,
      dueDate: '2026-06-16',
      dueAt: '2026-06-17T00:00:00.000Z',
      extensionNoticeBy: '2026-06-17T00:00:00.000Z',
    });
    expect(pausedDeadline(base, 2 * DAY).dueDate).toBe('2026-06-17');
    expect(pausedDeadline(base, 2 * DAY + 1).dueDate).toBe('2026-06-18');
  });

  it('does not move an EU GDPR deadline', () => {
    const eu = deadlines('gdpr', received);
    expect(pausedDeadline(eu, 3 * DAY)).toEqual(eu);
  });

  it('keeps a pause through a later extension', () => {
    const paused = pausedDeadline(base, 3 * DAY); // due 2026-06-18
    expect(extendedDeadline('uk_gdpr', received, paused)).toEqual({
      ...base,
      dueDate: '2026-08-18',
      dueAt: '2026-08-19T00:00:00.000Z',
      extensionNoticeBy: '2026-06-19T00:00:00.000Z',
    });
  });

  it('after the extension, a pause moves the due date but not the past notice deadline', () => {
    const ext = extendedDeadline('uk_gdpr', received, base);
    expect(ext.dueDate).toBe('2026-08-15');
    expect(pausedDeadline(ext, DAY)).toEqual({
      ...ext,
      dueDate: '2026-08-16',
      dueAt: '2026-08-17T00:00:00.000Z',
      extensionNoticeBy: '2026-06-16T00:00:00.000Z',
    });
  });
});

describe('overrideSeconds (tests and dev)', () => {
  const received = '2026-05-15T10:00:00.000Z';
  const opts = { overrideSeconds: 60 };

  it('puts dueAt at receipt + override and the ack at half of it', () => {
    expect(deadlines('ccpa', received, opts)).toEqual({
      jurisdiction: 'ccpa',
      dueDate: '2026-05-15',
      dueAt: '2026-05-15T10:01:00.000Z',
      ackDueDate: '2026-05-15',
      ackDueAt: '2026-05-15T10:00:30.000Z',
      extensionNoticeBy: '2026-05-15T10:01:00.000Z',
      pausesDuringVerification: false,
    });
    const gdpr = deadlines('gdpr', received, opts);
    expect([gdpr.dueAt, gdpr.ackDueAt]).toEqual(['2026-05-15T10:01:00.000Z', null]);
    const unknown = deadlines('unknown', received, opts);
    expect([unknown.dueAt, unknown.ackDueAt]).toEqual(['2026-05-15T10:01:00.000Z', '2026-05-15T10:00:30.000Z']);
  });

  it('dates a dueAt at midnight to the day before', () => {
    const d = deadlines('gdpr', '2026-05-15T23:59:00Z', opts);
    expect([d.dueDate, d.dueAt]).toEqual(['2026-05-15', '2026-05-16T00:00:00.000Z']);
  });

  it('extends by 2 x override from the original dueAt', () => {
    const ext = extendedDeadline('gdpr', received, deadlines('gdpr', received, opts), opts);
    expect([ext.dueDate, ext.dueAt, ext.extensionNoticeBy]).toEqual(['2026-05-15', '2026-05-15T10:03:00.000Z', '2026-05-15T10:01:00.000Z']);
  });

  it('pauses by exactly pausedMs', () => {
    const paused = pausedDeadline(deadlines('uk_gdpr', received, opts), 1500, opts);
    expect([paused.dueAt, paused.extensionNoticeBy]).toEqual(['2026-05-15T10:01:01.500Z', '2026-05-15T10:01:01.500Z']);
    const ext = extendedDeadline('uk_gdpr', received, paused, opts);
    expect([ext.dueAt, ext.extensionNoticeBy]).toEqual(['2026-05-15T10:03:01.500Z', '2026-05-15T10:01:01.500Z']);
  });
});

describe('invalid input', () => {
  const good = '2026-05-15T10:00:00Z';

  it('rejects invalid instants and dates', () => {
    for (const bad of ['not a date', '2026-02-30T00:00:00Z', '2026-05-15', '2026-05-15T10:00:00', '2026-05-15T24:00:00Z', '2026-13-01T00:00:00Z', '']) {
      expect(() => deadlines('gdpr', bad), bad).toThrow(/invalid/);
    }
    expect(() => addCalendarMonths('2026-1-31', 1)).toThrow(/invalid date/);
    expect(() => addCalendarMonths('2026-02-29', 1)).toThrow(/no such day/);
    expect(() => addBusinessDays('2026-04-31', 1)).toThrow(/no such day/);
    expect(() => addCalendarMonths('2026-01-31', 1.5)).toThrow(/whole number/);
    expect(() => addBusinessDays('2026-01-31', Number.NaN)).toThrow(/whole number/);
  });

  it('rejects an unknown jurisdiction', () => {
    expect(() => deadlines('fr' as Jurisdiction, good)).toThrow(Error);
    expect(() => deadlines('fr' as Jurisdiction, good)).toThrow(/unknown jurisdiction "fr"/);
    const bogus = { ...deadlines('gdpr', good), jurisdiction: 'fr' } as unknown as Deadlines;
    expect(() => pausedDeadline(bogus, DAY)).toThrow(/unknown jurisdiction/);
  });

  it('rejects bad overrides, pauses and mismatched deadlines', () => {
    expect(() => deadlines('gdpr', good, { overrideSeconds: 0 })).toThrow(/overrideSeconds/);
    expect(() => deadlines('gdpr', good, { overrideSeconds: Number.POSITIVE_INFINITY })).toThrow(/overrideSeconds/);
    const uk = deadlines('uk_gdpr', good);
    expect(() => pausedDeadline(uk, -1)).toThrow(/pausedMs/);
    expect(() => pausedDeadline(uk, Number.NaN)).toThrow(/pausedMs/);
    expect(() => extendedDeadline('gdpr', good, uk)).toThrow(/"uk_gdpr", not "gdpr"/);
    // A deadline computed for another receipt date, or in the other mode.
    expect(() => extendedDeadline('gdpr', '2026-05-20T10:00:00Z', deadlines('gdpr', good))).toThrow(/does not follow/);
    expect(() => pausedDeadline(deadlines('uk_gdpr', good, { overrideSeconds: 60 }), 1000)).toThrow(/not at 00:00 UTC/);
  });
});
