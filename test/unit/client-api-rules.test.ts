import { describe, expect, it } from 'vitest';
import { csvField, daysInRange, decodeActivityCursor, encodeActivityCursor, parseDay } from '../../src/accounts/clientApi.rules';

describe('parseDay', () => {
  it('takes real calendar days only', () => {
    expect(parseDay('2028-02-29')?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
    for (const bad of ['2027-02-29', '2026-13-01', '2026-1-01', '2026-01-01T00:00:00Z', '', '20260101', ' 2026-01-01']) expect(parseDay(bad), bad).toBeNull();
  });

  it('counts both ends of a range', () => {
    expect(daysInRange(parseDay('2031-01-01')!, parseDay('2031-01-01')!)).toBe(1);
    // 2032 is a leap year: 1 Jan 2031 to 1 Jan 2032 is 366 days, both included.
    expect(daysInRange(parseDay('2031-01-01')!, parseDay('2032-01-01')!)).toBe(366);
  });
});

describe('activity cursor', () => {
  const key = '0c7a1a52-6f4e-4a57-9a0e-1d2f3b4c5d6e';

  it('round-trips for the grouping it was made for, and only that one', () => {
    const c = encodeActivityCursor(['day', 'model', 'key'], ['2031-01-01', 'gpt-4o, "mini"', key]);
    expect(decodeActivityCursor(c, ['day', 'model', 'key'])).toEqual(['2031-01-01', 'gpt-4o, "mini"', key]);
    expect(decodeActivityCursor(c, ['day', 'model'])).toBeNull();
    expect(decodeActivityCursor(c, ['model', 'key'])).toBeNull();
  });

  it('refuses values not of their dimension’s form, and anything not made by us', () => {
    expect(decodeActivityCursor(encodeActivityCursor(['day'], ['tomorrow']), ['day'])).toBeNull();
    expect(decodeActivityCursor(encodeActivityCursor(['key'], ['not-a-uuid']), ['key'])).toBeNull();
    expect(decodeActivityCursor(encodeActivityCursor(['model'], ['m'.repeat(201)]), ['model'])).toBeNull();
    expect(decodeActivityCursor(Buffer.from('{"g":"day","k":[1]}').toString('base64url'), ['day'])).toBeNull();
    expect(decodeActivityCursor(Buffer.from('not json').toString('base64url'), ['day'])).toBeNull();
    expect(decodeActivityCursor('a+b/c=', ['day'])).toBeNull();
    expect(decodeActivityCursor('A'.repeat(601), ['day'])).toBeNull();
  });
});

describe('csvField', () => {
  it('quotes only what needs it, doubling quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField(42)).toBe('42');
    expect(csvField(null)).toBe('');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
  });
});
