import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DUNNING_SCHEDULE,
  DunningScheduleError,
  dunningAnchor,
  endsDunning,
  parseDunningSchedule,
  stepDueAt,
  stepEventType,
  validateDunningSteps,
  type DunningStep,
} from '../../src/shared/dunning.rules';

const DAY = 86_400_000;

describe('parseDunningSchedule', () => {
  it('parses the default: a notice 3 days before, reminders 1 and 7 days after, suspension 14 days after', () => {
    expect(parseDunningSchedule(DEFAULT_DUNNING_SCHEDULE)).toEqual([
      { name: 'notice-3d', kind: 'notice', offsetMs: -3 * DAY },
      { name: 'reminder+1d', kind: 'reminder', offsetMs: DAY },
      { name: 'reminder+7d', kind: 'reminder', offsetMs: 7 * DAY },
      { name: 'suspension+14d', kind: 'suspension', offsetMs: 14 * DAY },
    ]);
  });

  it('takes every unit, spaces and any order, and sorts by offset', () => {
    expect(parseDunningSchedule(' reminder@90m , notice@-2h,reminder@+30s, suspension@1d ')).toEqual([
      { name: 'notice-2h', kind: 'notice', offsetMs: -2 * 3_600_000 },
      { name: 'reminder+30s', kind: 'reminder', offsetMs: 30_000 },
      { name: 'reminder+90m', kind: 'reminder', offsetMs: 90 * 60_000 },
      { name: 'suspension+1d', kind: 'suspension', offsetMs: DAY },
    ]);
  });

  it.each([
    ['', /no steps/],
    [' , ', /no steps/],
    ['reminder@7', /not a step/],
    ['reminder@7w', /not a step/],
    ['warning@1d', /not a step/],
    ['reminder@1.5d', /not a step/],
    ['reminder 7d', /not a step/],
    ['reminder@1000000d', /not a step/],
    ['reminder@367d', /more than 366 days/],
    ['reminder@1d,reminder@1d', /appears twice/],
    ["reminder@1d,reminder@24h", /at the same time/],
    ['suspension@7d,reminder@14d', /suspension must be the last/],
    ['suspension@7d,suspension@14d', /suspends at most once/],
    ['notice@1d', /before the invoice is overdue/],
    [Array.from({ length: 11 }, (_, i) => `reminder@${i + 1}d`).join(','), /more than 10 steps/],
  ])('refuses %j', (text, message) => {
    expect(() => parseDunningSchedule(text)).toThrow(DunningScheduleError);
    expect(() => parseDunningSchedule(text)).toThrow(message);
  });

  it('quotes at most 40 characters of a bad step', () => {
    const long = `reminder@${'x'.repeat(200)}`;
    expect(() => parseDunningSchedule(long)).toThrow(/^"reminder@x{31}" is not a step/);
  });
});

describe('validateDunningSteps', () => {
  const step = (name: string, kind: DunningStep['kind'], offsetMs: number): DunningStep => ({ name, kind, offsetMs });

  it('accepts steps in milliseconds (a test schedule) and sorts them', () => {
    const steps = validateDunningSteps([step('reminder+2s', 'reminder', 2_000), step('notice-1s', 'notice', -1_000), step('suspension+4s', 'suspension', 4_000)]);
    expect(steps.map((s) => s.name)).toEqual(['notice-1s', 'reminder+2s', 'suspension+4s']);
  });

  it('does not change its argument', () => {
    const input = [step('reminder+2s', 'reminder', 2_000), step('notice-1s', 'notice', -1_000)];
    validateDunningSteps(input);
    expect(input[0]!.name).toBe('reminder+2s');
  });

  it.each([
    [[step('Reminder+1d', 'reminder', DAY)], /not like reminder\+7d/],
    [[step('reminder', 'reminder', DAY)], /not like reminder\+7d/],
    [[step('reminder+1d; drop', 'reminder', DAY)], /not like reminder\+7d/],
    [[step('reminder+1d', 'reminder', 1.5)], /bad offset/],
    [[step('reminder+1d', 'reminder', Number.NaN)], /bad offset/],
    [[step('reminder+1d', 'reminder', 400 * DAY)], /bad offset/],
    [[step('notice+1d', 'notice', DAY)], /before the invoice is overdue/],
    [[step('a+1', 'reminder', 1), step('a+1', 'reminder', 2)], /appears twice/],
    [[step('a+1', 'bogus' as DunningStep['kind'], 1)], /no kind/],
    [[step('a+1', 'reminder', 1), step('b+1', 'reminder', 1)], /at the same time/],
    [[step('suspension+1s', 'suspension', 1_000), step('reminder+2s', 'reminder', 2_000)], /last step/],
    [Array.from({ length: 11 }, (_, i) => step(`reminder+${i}s`, 'reminder', i * 1_000)), /more than 10/],
  ])('refuses bad steps (%#)', (steps, message) => {
    expect(() => validateDunningSteps(steps)).toThrow(message);
  });
});

describe('dunningAnchor and stepDueAt', () => {
  it('anchors at 00:00 UTC of the due date', () => {
    expect(dunningAnchor('2026-12-31')).toBe(Date.UTC(2026, 11, 31));
    expect(new Date(dunningAnchor('2026-03-29')).toISOString()).toBe('2026-03-29T00:00:00.000Z');
  });

  it('puts the first reminder at the moment the invoice is overdue (the day after its due date)', () => {
    const [notice, first] = parseDunningSchedule(DEFAULT_DUNNING_SCHEDULE);
    const anchor = dunningAnchor('2027-01-31');
    expect(new Date(stepDueAt(anchor, notice!)).toISOString()).toBe('2027-01-28T00:00:00.000Z');
    expect(new Date(stepDueAt(anchor, first!)).toISOString()).toBe('2027-02-01T00:00:00.000Z');
  });

  it.each(['2026-1-31', '31.01.2026', '', '2026-01-31T00:00:00Z', "2026-01-31' OR 1=1", '2026-02-30', '2026-13-01'])('refuses a due date %j', (d) => {
    expect(() => dunningAnchor(d)).toThrow(DunningScheduleError);
  });
});

describe('what a step sends and what ends dunning', () => {
  it('maps kinds to event types', () => {
    expect(stepEventType('notice')).toBe('invoice.payment_due');
    expect(stepEventType('reminder')).toBe('invoice.overdue');
    expect(stepEventType('suspension')).toBe('account.suspended');
  });

  it('ends on paid, void, uncollectible and for what is not collected; goes on while something is due', () => {
    for (const s of ['paid', 'void', 'uncollectible', null, undefined]) expect(endsDunning(s), String(s)).toBe(true);
    for (const s of ['open', 'partially_paid', 'overdue']) expect(endsDunning(s), s).toBe(false);
  });
});
