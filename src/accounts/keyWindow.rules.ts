/**
 * A key's spend-limit window (issue 22): the UTC calendar period whose spend counts
 * against the key's limit. The window is computed from the time asked about, never
 * reset by a job, so a missed schedule cannot leave a key blocked, and every gateway
 * instance agrees on it without talking to the others.
 *
 * - `daily`: from 00:00 UTC of the day.
 * - `weekly`: from Monday 00:00 UTC (ISO weeks).
 * - `monthly`: from 00:00 UTC on the first of the month.
 * - `null`: no reset; the limit covers the key's whole life.
 *
 * Every window starts on a UTC midnight, so a window's settled spend is a sum of
 * whole days of the daily aggregate (usage_daily_keys).
 */
export const LIMIT_WINDOWS = ['daily', 'weekly', 'monthly'] as const;
export type LimitWindow = (typeof LIMIT_WINDOWS)[number];

export interface WindowBounds {
  /** First instant of the window; null for a lifetime limit. */
  start: Date | null;
  /** First instant of the next window; null for a lifetime limit. */
  nextReset: Date | null;
}

const DAY_MS = 86_400_000;

function utcMidnight(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
}

/** The window that contains `at`. */
export function windowBounds(window: LimitWindow | null, at: Date): WindowBounds {
  if (window === null) return { start: null, nextReset: null };
  const day = utcMidnight(at);
  switch (window) {
    case 'daily':
      return { start: day, nextReset: new Date(day.getTime() + DAY_MS) };
    case 'weekly': {
      // getUTCDay: Sunday 0 ... Saturday 6; ISO weeks start on Monday.
      const sinceMonday = (day.getUTCDay() + 6) % 7;
      const start = new Date(day.getTime() - sinceMonday * DAY_MS);
      return { start, nextReset: new Date(start.getTime() + 7 * DAY_MS) };
    }
    case 'monthly': {
      const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
      return { start, nextReset: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1)) };
    }
  }
}

/** The window's first UTC day as YYYY-MM-DD (for the daily aggregate), or null for a lifetime limit. */
export function windowFirstDay(window: LimitWindow | null, at: Date): string | null {
  const { start } = windowBounds(window, at);
  return start ? start.toISOString().slice(0, 10) : null;
}
