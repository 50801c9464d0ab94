import { z } from 'zod';
import { accountCredits } from '../accounts/clientApi.data';
import { REQUEST_ID_PATTERN, addDays, dayString, daysInRange, parseDay } from '../accounts/clientApi.rules';
import { accountKeysForUsage, accountModelsSince, requestLog, usageByDayModelKey, usageTotals, type UsageFilter } from '../accounts/usageReport.data';
import { systemClock, type Clock } from '../clock';
import type { Db } from '../db/knex';
import { NotFoundError, ValidationError } from '../errors';
import { Money, toAmountString } from '../shared/money.rules';
import type { CustomerSession } from './customerConsole.service';

/**
 * The customer console's usage page (issue 26): usage of the session's
 * account by UTC day, model and key over a range of at most
 * USAGE_MAX_DAYS days, its totals, the same as CSV, and the request log
 * (metadata only; MixRoute stores no prompts or completions). The account
 * is always the session's; filter values come from the query string and are
 * validated here, and a key or model of another account matches nothing,
 * since every query is scoped by the account.
 */
export const USAGE_DEFAULT_DAYS = 30;
export const USAGE_MAX_DAYS = 92;
/** Rows of the day × model × key table (and of the CSV) at most. */
export const USAGE_MAX_ROWS = 2000;
export const USAGE_CSV_MAX_ROWS = 20_000;
/** Requests per page of the request log. */
export const REQUEST_LOG_PAGE = 50;
const MAX_KEYS = 500;
const MAX_MODELS = 500;

const one = (max: number) => z.string().max(max).optional();
const usageQuery = z.object({
  from: one(10),
  to: one(10),
  key: one(36),
  model: one(200),
  request: one(100),
  before: one(140),
});

/** The filters as the page shows them back in its form and links. */
export interface UsageFilters {
  from: string;
  to: string;
  key: string;
  model: string;
  request: string;
}

function invalid(field: string, message: string): never {
  throw new ValidationError(`${field}: ${message}`, [{ field, message }]);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BEFORE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z)~([A-Za-z0-9_-]{1,100})$/;
const amount = (v: string) => toAmountString(new Money(v));

export interface UsageServiceDeps {
  db: Db;
  clock?: Clock;
}

export function usageService({ db, clock = systemClock }: UsageServiceDeps) {
  /** Validates the query string: a repeated parameter, a bad day, a range over the limit, a key that is no id are refused. */
  function parse(raw: Record<string, unknown>) {
    const parsed = usageQuery.safeParse(raw);
    if (!parsed.success) {
      const field = String(parsed.error.issues[0]?.path[0] ?? 'query');
      invalid(field, 'give it once, as a short single value');
    }
    const q = parsed.data;
    const today = parseDay(dayString(clock.now()))!;
    const to = q.to ? (parseDay(q.to) ?? invalid('to', 'must be a day as YYYY-MM-DD')) : today;
    const from = q.from ? (parseDay(q.from) ?? invalid('from', 'must be a day as YYYY-MM-DD')) : addDays(to, -(USAGE_DEFAULT_DAYS - 1));
    if (from > to) invalid('from', 'must not be after the end day');
    if (daysInRange(from, to) > USAGE_MAX_DAYS) invalid('to', `the range may cover at most ${USAGE_MAX_DAYS} days`);
    const key = q.key ?? '';
    if (key && !UUID.test(key)) invalid('key', 'is not a key id; pick a key from the list');
    const model = q.model ?? '';
    if ([...model].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) invalid('model', 'is not a model name; pick a model from the list');
    const request = (q.request ?? '').trim();
    if (request && !REQUEST_ID_PATTERN.test(request)) invalid('request', 'is not a request id (the x-request-id of a response, such as req-…)');
    let before: { at: string; requestId: string } | null = null;
    if (q.before) {
      const m = BEFORE.exec(q.before);
      if (!m || Number.isNaN(new Date(m[1]!).getTime())) invalid('before', 'is not a position in the request log; use the page links');
      before = { at: m[1]!, requestId: m[2]! };
    }
    const filters: UsageFilters = { from: dayString(from), to: dayString(to), key, model, request };
    return { filters, until: addDays(to, 1), fromDate: from, before };
  }

  const filterOf = (accountId: string, f: UsageFilters): UsageFilter => ({ accountId, from: f.from, to: f.to, keyId: f.key || null, model: f.model || null });

  async function currencyOf(accountId: string): Promise<string> {
    const acct = await accountCredits(db, accountId);
    if (!acct) throw new NotFoundError('The account no longer exists.');
    return acct.currency.trim();
  }

  return {
    /** The usage page's data for the session's account and the query string's filters. */
    async page(s: Pick<CustomerSession, 'accountId'>, raw: Record<string, unknown>) {
      const { filters, until, fromDate, before } = parse(raw);
      const currency = await currencyOf(s.accountId);
      const f = filterOf(s.accountId, filters);
      const keys = await accountKeysForUsage(db, s.accountId, MAX_KEYS);
      const models = await accountModelsSince(db, s.accountId, dayString(addDays(parseDay(dayString(clock.now()))!, -366)), MAX_MODELS);
      const rows = await usageByDayModelKey(db, f, USAGE_MAX_ROWS + 1);
      const totals = await usageTotals(db, f);
      const log = await requestLog(db, {
        accountId: s.accountId,
        since: fromDate,
        until,
        keyId: f.keyId,
        model: f.model,
        requestId: filters.request || null,
        before: filters.request ? null : before,
        limit: REQUEST_LOG_PAGE + 1,
      });
      const more = log.length > REQUEST_LOG_PAGE;
      const requests = (more ? log.slice(0, REQUEST_LOG_PAGE) : log).map((r) => ({
        requestId: r.request_id,
        at: new Date(r.occurred_at).toISOString(),
        model: r.model ?? '',
        keyId: r.api_key_id,
        key: r.key_name ? `${r.key_name} (${r.key_prefix ?? ''})` : (r.key_prefix ?? ''),
        status: r.status_code,
        tokensIn: Number(r.tokens_in),
        tokensOut: Number(r.tokens_out),
        cost: amount(r.cost),
        currency: r.currency.trim(),
        latencyMs: r.latency_ms,
      }));
      const last = (more ? log[REQUEST_LOG_PAGE - 1] : null) ?? null;
      const keyLabel = (id: string | null) => {
        const k = keys.find((x) => x.id === id);
        return k ? (k.name ? `${k.name} (${k.prefix})` : k.prefix) : (id ?? '');
      };
      const total = (t: (typeof totals)[number]) => ({ requests: Number(t.requests), tokensIn: t.tokens_in, tokensOut: t.tokens_out, cost: amount(t.cost) });
      return {
        filters,
        currency,
        keys: keys.map((k) => ({ id: k.id, label: k.name ? `${k.name} (${k.prefix})` : k.prefix })),
        models,
        rows: rows.slice(0, USAGE_MAX_ROWS).map((r) => ({
          day: r.day,
          model: r.model,
          keyId: r.api_key_id,
          key: r.key_name ? `${r.key_name} (${r.key_prefix ?? ''})` : (r.key_prefix ?? r.api_key_id),
          requests: Number(r.requests),
          tokensIn: r.tokens_in,
          tokensOut: r.tokens_out,
          cost: amount(r.cost),
        })),
        truncated: rows.length > USAGE_MAX_ROWS,
        byDay: totals.filter((t) => t.level === 'day').map((t) => ({ day: t.day!, ...total(t) })),
        byModel: totals.filter((t) => t.level === 'model').map((t) => ({ model: t.model!, ...total(t) })),
        byKey: totals.filter((t) => t.level === 'key').map((t) => ({ keyId: t.api_key_id!, key: keyLabel(t.api_key_id), ...total(t) })),
        total: totals.filter((t) => t.level === 'all').map(total)[0] ?? null,
        requests,
        nextBefore: more && last ? `${last.cursor_at}~${last.request_id}` : null,
      };
    },

    /** The CSV's rows (day, model, key, requests, tokens, cost) for the same filters; at most USAGE_CSV_MAX_ROWS. */
    async csvRows(s: Pick<CustomerSession, 'accountId'>, raw: Record<string, unknown>) {
      const { filters } = parse(raw);
      const currency = await currencyOf(s.accountId);
      const rows = await usageByDayModelKey(db, filterOf(s.accountId, filters), USAGE_CSV_MAX_ROWS);
      return {
        filters,
        currency,
        rows: rows.map((r) => ({ day: r.day, model: r.model, keyId: r.api_key_id, keyName: r.key_name ?? '', keyPrefix: r.key_prefix ?? '', requests: Number(r.requests), tokensIn: r.tokens_in, tokensOut: r.tokens_out, cost: amount(r.cost) })),
      };
    },
  };
}

export type UsageService = ReturnType<typeof usageService>;
