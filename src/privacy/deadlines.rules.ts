/**
 * Legal deadlines of data-subject requests. Pure and deterministic (no I/O, no clock,
 * no imports): Temporal workflows import it, and a replay must compute the same dates.
 *
 * Conventions:
 * - Periods run from the UTC calendar date of receipt; the day of receipt itself is not
 *   counted (EU: Regulation 1182/71 Art. 3(1), as applied by EDPB Guidelines 01/2022 on the
 *   right of access: received 5 March -> answer by 5 April; California: Civ. Code § 10,
 *   "excluding the first day, and including the last").
 * - A deadline is a whole UTC day: the request becomes overdue at 00:00 UTC of the next day.
 * - Weekends and public holidays never move a deadline later (both laws would allow that in
 *   some cases); we stay on the earlier, always-compliant date.
 * - Internally every deadline is the instant it is overdue, in ms since the epoch; the
 *   'YYYY-MM-DD' date is the UTC date of (that instant - 1 ms). The same rule covers the
 *   override mode, where deadlines fall at arbitrary instants.
 */

export type Jurisdiction = 'gdpr' | 'uk_gdpr' | 'ccpa' | 'unknown';

export const JURISDICTIONS: readonly Jurisdiction[] = Object.freeze<Jurisdiction[]>(['gdpr', 'uk_gdpr', 'ccpa', 'unknown']);

export type PeriodUnit = 'calendarMonths' | 'calendarDays' | 'businessDays';

export interface Period {
  readonly unit: PeriodUnit;
  /** A whole number of units, counted from the day of receipt. */
  readonly amount: number;
}

export interface JurisdictionRule {
  /** Human label, e.g. for the request's admin page. */
  readonly label: string;
  /** Where the data subject may complain if the deadline is missed. */
  readonly supervisoryAuthority: string;
  /** The provisions the periods below come from. */
  readonly legalBasis: string;
  /** Time to answer the request. */
  readonly answer: Period;
  /** Time to confirm receipt, when the law requires a separate acknowledgement. */
  readonly acknowledgement: Period | null;
  /**
   * The one allowed extension, in the unit of `answer`. The total is counted from receipt
   * (GDPR "two further months" = receipt + 3 months, not due date + 2 months, which would
   * lose days after a clamped 31st). It must be announced before the original answer deadline.
   */
  readonly extension: Period;
  /** Whether the clock stops while the requester's identity is being verified. */
  readonly pausesDuringVerification: boolean;
}

/** Adding a jurisdiction: add it to `Jurisdiction`, `JURISDICTIONS` and here; 'unknown' picks it up. */
export const RULES: Record<Exclude<Jurisdiction, 'unknown'>, JurisdictionRule> = Object.freeze({
  gdpr: Object.freeze({
    label: 'EU GDPR',
    supervisoryAuthority:
      'the data protection supervisory authority of the EU/EEA member state of habitual residence, place of work or of the alleged infringement (Art. 77 GDPR)',
    // Art. 12(3) GDPR: one month, extendable by two further months, the extension announced
    // within the first month. The period runs from receipt even while identity is checked
    // (EDPB Guidelines 01/2022 on the right of access), so the clock does not stop.
    legalBasis: 'Art. 12(3) GDPR; EDPB Guidelines 01/2022',
    answer: Object.freeze({ unit: 'calendarMonths', amount: 1 }),
    acknowledgement: null,
    extension: Object.freeze({ unit: 'calendarMonths', amount: 2 }),
    pausesDuringVerification: false,
  }),
  uk_gdpr: Object.freeze({
    label: 'UK GDPR',
    supervisoryAuthority: "the Information Commissioner's Office (ICO), ico.org.uk",
    // Same periods as the EU text (Art. 12(3) UK GDPR), but the time limit only starts once
    // the controller has the information it asked for to confirm identity (UK GDPR Art. 12A,
    // inserted by the Data (Use and Access) Act 2025; ICO right-of-access guidance): the
    // clock stops during verification.
    legalBasis: 'Art. 12(3) and 12A UK GDPR; ICO guidance on the right of access',
    answer: Object.freeze({ unit: 'calendarMonths', amount: 1 }),
    acknowledgement: null,
    extension: Object.freeze({ unit: 'calendarMonths', amount: 2 }),
    pausesDuringVerification: true,
  }),
  ccpa: Object.freeze({
    label: 'California (CCPA/CPRA)',
    supervisoryAuthority: 'the California Privacy Protection Agency (cppa.ca.gov) and the California Attorney General',
    // Cal. Civ. Code 1798.130(a)(2)(A): 45 days, extendable once by 45 more with notice within
    // the first 45. CCPA regs 7021(a): confirm receipt within 10 business days; 7021(b): the
    // 45 days begin on receipt "regardless of time required to verify the request".
    legalBasis: 'Cal. Civ. Code 1798.130(a)(2)(A); CCPA regs (11 CCR) 7021',
    answer: Object.freeze({ unit: 'calendarDays', amount: 45 }),
    acknowledgement: Object.freeze({ unit: 'businessDays', amount: 10 }),
    extension: Object.freeze({ unit: 'calendarDays', amount: 45 }),
    pausesDuringVerification: false,
  }),
});

export interface Deadlines {
  jurisdiction: Jurisdiction;
  /** Last day to answer, UTC date 'YYYY-MM-DD'. */
  dueDate: string;
  /** The instant the request becomes overdue: the start (00:00 UTC) of the day after dueDate, ISO string. */
  dueAt: string;
  /** CCPA: last day to acknowledge receipt, else null. Same date/instant convention. */
  ackDueDate: string | null;
  ackDueAt: string | null;
  /** The latest date an extension may be announced (GDPR: within the first month = the original due date; CCPA: within the original 45 days) ISO instant. */
  extensionNoticeBy: string;
  pausesDuringVerification: boolean;
}

export interface DeadlineOptions {
  /** Tests and dev only: the answer period in seconds instead of the legal one, so timers fire quickly. */
  overrideSeconds?: number;
}

const DAY_MS = 86_400_000;

/** The deadlines of a request received at `receivedAt` (ISO instant) under `jurisdiction`. */
export function deadlines(jurisdiction: Jurisdiction, receivedAt: string, opts: DeadlineOptions = {}): Deadlines {
  checkJurisdiction(jurisdiction);
  const t = times(jurisdiction, parseInstant(receivedAt, 'receivedAt'), overrideMs(opts));
  // Art. 12(3) GDPR / Civ. Code 1798.130(a)(2)(A): an extension is announced within the original period.
  return build(jurisdiction, t.due, t.ack, t.due, t.pauses);
}

/**
 * The deadlines after the one allowed extension. `current` is what `deadlines` (and possibly
 * `pausedDeadline`) returned for the same request; time already added by a verification
 * pause is kept. Throws if `current` is already extended or does not belong to this request.
 */
export function extendedDeadline(jurisdiction: Jurisdiction, receivedAt: string, current: Deadlines, opts: DeadlineOptions = {}): Deadlines {
  checkJurisdiction(jurisdiction);
  if (current.jurisdiction !== jurisdiction) {
    throw new Error(`extendedDeadline: current deadlines are for ${JSON.stringify(current.jurisdiction)}, not ${JSON.stringify(jurisdiction)}`);
  }
  const override = overrideMs(opts);
  const base = times(jurisdiction, parseInstant(receivedAt, 'receivedAt'), override);
  const due = parseInstant(current.dueAt, 'current.dueAt');
  const noticeBy = parseInstant(current.extensionNoticeBy, 'current.extensionNoticeBy');
  if (noticeBy !== due) {
    throw new Error(`extendedDeadline: the deadline of this ${jurisdiction} request has already been extended; the law allows one extension`);
  }
  const pausedBy = due - base.due;
  if (pausedBy < 0 || (pausedBy > 0 && !base.pauses) || (override === null && pausedBy % DAY_MS !== 0)) {
    throw new Error(
      `extendedDeadline: current.dueAt ${current.dueAt} does not follow from receivedAt ${receivedAt} (${jurisdiction}${override === null ? '' : `, overrideSeconds ${opts.overrideSeconds}`})`,
    );
  }
  return {
    ...build(jurisdiction, base.extended + pausedBy, null, due, base.pauses),
    ackDueDate: current.ackDueDate,
    ackDueAt: current.ackDueAt,
  };
}

/**
 * The deadlines after the clock stood still for `pausedMs` during identity verification.
 * Without an override the pause counts in whole days, rounded up: deadlines are whole days,
 * and the restarted period runs from the day the identity information arrives (UK GDPR
 * Art. 12A; ICO guidance), so a day on which the clock stood still at all counts in full.
 * Jurisdictions whose clock keeps running (EU GDPR, CCPA, unknown) get `current` back unchanged.
 * Before the extension the notice deadline moves with the due date (the first month is
 * longer); after it, the notice deadline is history and stays.
 */
export function pausedDeadline(current: Deadlines, pausedMs: number, opts: DeadlineOptions = {}): Deadlines {
  checkJurisdiction(current.jurisdiction);
  if (typeof pausedMs !== 'number' || !Number.isFinite(pausedMs) || pausedMs < 0) {
    throw new Error(`pausedDeadline: pausedMs must be a finite number >= 0, got ${String(pausedMs)}`);
  }
  const override = overrideMs(opts);
  const due = parseInstant(current.dueAt, 'current.dueAt');
  const noticeBy = parseInstant(current.extensionNoticeBy, 'current.extensionNoticeBy');
  if (override === null && (due % DAY_MS !== 0 || noticeBy % DAY_MS !== 0)) {
    throw new Error(`pausedDeadline: current.dueAt ${current.dueAt} is not at 00:00 UTC; pass the overrideSeconds it was computed with`);
  }
  const pauses = current.jurisdiction !== 'unknown' && RULES[current.jurisdiction].pausesDuringVerification;
  if (!pauses) return { ...current };
  const shift = override === null ? Math.ceil(pausedMs / DAY_MS) * DAY_MS : Math.round(pausedMs);
  const extended = noticeBy !== due;
  return {
    ...current,
    dueDate: lastDayBefore(due + shift),
    dueAt: formatInstant(due + shift),
    extensionNoticeBy: extended ? current.extensionNoticeBy : formatInstant(noticeBy + shift),
  };
}

/** `date` plus `months` calendar months, clamped to the last day of the target month (31 Jan + 1 -> 28/29 Feb). */
export function addCalendarMonths(date: string, months: number): string {
  checkInteger(months, 'addCalendarMonths: months');
  return formatDate(addMonthsToDay(parseDate(date, 'addCalendarMonths: date'), months));
}

/** `date` plus `days` calendar days (negative goes back). */
export function addCalendarDays(date: string, days: number): string {
  checkInteger(days, 'addCalendarDays: days');
  return formatDate(parseDate(date, 'addCalendarDays: date') + days);
}

/**
 * `date` plus `days` business days, Monday to Friday (negative goes back). Public holidays
 * are NOT skipped: which holidays count is not settled for CCPA regs 7021(a), and ignoring
 * them only ever gives an earlier, still compliant, date. Starting on a weekend, the first
 * business day is the following Monday.
 */
export function addBusinessDays(date: string, days: number): string {
  checkInteger(days, 'addBusinessDays: days');
  return formatDate(addBusinessDaysToDay(parseDate(date, 'addBusinessDays: date'), days));
}

// ---------------------------------------------------------------------------------------

interface Times {
  /** Overdue instants, ms since the epoch. */
  due: number;
  ack: number | null;
  extended: number;
  pauses: boolean;
}

function times(jurisdiction: Jurisdiction, receivedMs: number, override: number | null): Times {
  if (jurisdiction !== 'unknown') return ruleTimes(RULES[jurisdiction], receivedMs, override);
  // Unknown jurisdiction: meet all of them at once, i.e. the earliest date of each kind. The
  // clock never stops, since some jurisdiction keeps it running during verification.
  const all = (Object.keys(RULES) as Exclude<Jurisdiction, 'unknown'>[]).map((j) => ruleTimes(RULES[j], receivedMs, override));
  const acks = all.map((t) => t.ack).filter((a): a is number => a !== null);
  return {
    due: Math.min(...all.map((t) => t.due)),
    ack: acks.length ? Math.min(...acks) : null,
    extended: Math.min(...all.map((t) => t.extended)),
    pauses: false,
  };
}

function ruleTimes(rule: JurisdictionRule, receivedMs: number, override: number | null): Times {
  if (override !== null) {
    return {
      due: receivedMs + override,
      ack: rule.acknowledgement ? receivedMs + Math.round(override / 2) : null,
      extended: receivedMs + 3 * override,
      pauses: rule.pausesDuringVerification,
    };
  }
  if (rule.extension.unit !== rule.answer.unit) {
    throw new Error(`rule ${rule.label}: the extension must be in the unit of the answer period (${rule.answer.unit})`);
  }
  const received = Math.floor(receivedMs / DAY_MS);
  const endOf = (period: Period): number => (addPeriod(received, period) + 1) * DAY_MS;
  return {
    due: endOf(rule.answer),
    ack: rule.acknowledgement ? endOf(rule.acknowledgement) : null,
    extended: endOf({ unit: rule.answer.unit, amount: rule.answer.amount + rule.extension.amount }),
    pauses: rule.pausesDuringVerification,
  };
}

function addPeriod(day: number, period: Period): number {
  switch (period.unit) {
    case 'calendarMonths':
      return addMonthsToDay(day, period.amount);
    case 'calendarDays':
      return day + period.amount;
    case 'businessDays':
      return addBusinessDaysToDay(day, period.amount);
  }
}

function build(jurisdiction: Jurisdiction, due: number, ack: number | null, noticeBy: number, pauses: boolean): Deadlines {
  return {
    jurisdiction,
    dueDate: lastDayBefore(due),
    dueAt: formatInstant(due),
    ackDueDate: ack === null ? null : lastDayBefore(ack),
    ackDueAt: ack === null ? null : formatInstant(ack),
    extensionNoticeBy: formatInstant(noticeBy),
    pausesDuringVerification: pauses,
  };
}

function checkJurisdiction(jurisdiction: unknown): asserts jurisdiction is Jurisdiction {
  if (!(JURISDICTIONS as readonly unknown[]).includes(jurisdiction)) {
    throw new Error(`unknown jurisdiction ${JSON.stringify(jurisdiction)}: expected one of ${JURISDICTIONS.join(', ')}`);
  }
}

function checkInteger(n: number, what: string): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new Error(`${what} must be a whole number, got ${String(n)}`);
}

function overrideMs(opts: DeadlineOptions): number | null {
  const s = opts.overrideSeconds;
  if (s === undefined) return null;
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) {
    throw new Error(`overrideSeconds must be a finite number > 0, got ${String(s)}`);
  }
  return Math.max(1, Math.round(s * 1000));
}

// --- Calendar arithmetic on day numbers (days since 1970-01-01), no Date needed. ---------

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** Proleptic Gregorian date -> day number (H. Hinnant's days_from_civil). */
function dayFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Day number -> proleptic Gregorian date (H. Hinnant's civil_from_days). */
function civilFromDay(day: number): { y: number; m: number; d: number } {
  const z = day + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

function addMonthsToDay(day: number, months: number): number {
  const { y, m, d } = civilFromDay(day);
  const index = y * 12 + (m - 1) + months;
  const ty = Math.floor(index / 12);
  const tm = index - ty * 12 + 1;
  return dayFromCivil(ty, tm, Math.min(d, daysInMonth(ty, tm)));
}

function addBusinessDaysToDay(day: number, days: number): number {
  const step = days < 0 ? -1 : 1;
  let left = Math.abs(days);
  let current = day;
  while (left > 0) {
    current += step;
    if (!isWeekend(current)) left--;
  }
  return current;
}

function isWeekend(day: number): boolean {
  const weekday = (((day + 4) % 7) + 7) % 7; // day 0 (1970-01-01) was a Thursday; 0 = Sunday
  return weekday === 0 || weekday === 6;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function parseDate(date: string, what: string): number {
  const m = typeof date === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(date) : null;
  if (!m) throw new Error(`${what}: invalid date ${JSON.stringify(date)}, expected YYYY-MM-DD`);
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) throw new Error(`${what}: invalid date ${JSON.stringify(date)}, no such day`);
  return dayFromCivil(y, mo, d);
}

function formatDate(day: number): string {
  const { y, m, d } = civilFromDay(day);
  if (y < 0 || y > 9999) throw new Error(`date out of range (year ${y})`);
  return `${pad(y, 4)}-${pad(m)}-${pad(d)}`;
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/** A strict ISO 8601 instant with a Z or ±HH:MM offset -> ms since the epoch (sub-ms digits dropped). */
function parseInstant(value: string, what: string): number {
  const m = typeof value === 'string' ? INSTANT.exec(value) : null;
  if (!m) throw new Error(`${what}: invalid ISO instant ${JSON.stringify(value)}, expected e.g. 2026-05-15T10:00:00Z`);
  const day = parseDate(`${m[1]}-${m[2]}-${m[3]}`, what);
  const [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const offset = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  if (h > 23 || mi > 59 || s > 59 || Math.abs(offset) >= 24 * 60 || Number(m[11] ?? 0) > 59) {
    throw new Error(`${what}: invalid ISO instant ${JSON.stringify(value)}, time out of range`);
  }
  return day * DAY_MS + ((h * 60 + mi - offset) * 60 + s) * 1000 + ms;
}

function formatInstant(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  const t = ms - day * DAY_MS;
  const date = formatDate(day);
  return `${date}T${pad(Math.floor(t / 3_600_000))}:${pad(Math.floor(t / 60_000) % 60)}:${pad(Math.floor(t / 1000) % 60)}.${pad(t % 1000, 3)}Z`;
}

/** The UTC date of the last moment before the overdue instant. */
function lastDayBefore(overdueMs: number): string {
  return formatDate(Math.floor((overdueMs - 1) / DAY_MS));
}
