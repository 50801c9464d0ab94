import type Decimal from 'decimal.js';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { NotFoundError, ValidationError } from '../errors';
import { Money, toAmountString } from '../shared/money.rules';
import { accountCredits, activityPage, generationById, keyOverview, ACTIVITY_DIMENSIONS, type ActivityDimension, type ActivityRow } from './clientApi.data';
import {
  ACTIVITY_DEFAULT_DAYS,
  ACTIVITY_DEFAULT_LIMIT,
  ACTIVITY_MAX_DAYS,
  ACTIVITY_MAX_LIMIT,
  REQUEST_ID_PATTERN,
  addDays,
  dayString,
  daysInRange,
  decodeActivityCursor,
  encodeActivityCursor,
  parseDay,
} from './clientApi.rules';
import { windowBounds, windowFirstDay } from './keyWindow.rules';

/**
 * What an API key may read about its own account (issue 22): the key itself,
 * the account's credits, one request, and daily activity. The caller is the
 * authenticated key; an inference key sees only itself and its own requests,
 * a management key the whole account.
 */
export interface ClientApiCaller {
  accountId: string;
  apiKeyId: string;
  kind: 'inference' | 'management';
}

/** Query parameters as they arrived: a repeated parameter is an array, and refused. */
export type QueryInput = Record<string, unknown>;

export interface ClientApiDeps {
  db: Db;
  clock: Clock;
  /**
   * The ledger's spendable rule (spendable in src/ledger/ledger.rules.ts) with the configured overdraft
   * allowance, passed in by the composition root: the ledger depends on accounts, not the other way.
   */
  spendable: (i: { plan: 'prepaid' | 'postpaid'; balance: Decimal; held: Decimal; creditLimit: Decimal }) => Decimal;
}

const amount = (v: string | Decimal) => toAmountString(new Money(v));
const iso = (d: Date | null) => (d ? d.toISOString() : null);

function param(query: QueryInput, name: string): string | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new ValidationError(`${name}: give it once, as a single value`, [{ field: name, message: 'must be given once' }]);
  return v;
}

function invalid(field: string, message: string): never {
  throw new ValidationError(`${field}: ${message}`, [{ field, message }]);
}

export function clientApiService({ db, clock, spendable }: ClientApiDeps) {
  return {
    /** GET /v1/key: the calling key, its limit and its settled spend per window. */
    async describeKey(caller: ClientApiCaller) {
      const now = clock.now();
      const at = (w: 'daily' | 'weekly' | 'monthly') => windowFirstDay(w, now)!;
      // Every window is a calendar day, week or month (or the key's life), so one read sums all four and
      // the key's own window is picked from them.
      const probe = await keyOverview(db, caller.accountId, caller.apiKeyId, { day: at('daily'), week: at('weekly'), month: at('monthly') });
      if (!probe) throw new NotFoundError('The key no longer exists.');
      const window = probe.limit_window;
      const spendWindow = window === 'daily' ? probe.spend_day : window === 'weekly' ? probe.spend_week : window === 'monthly' ? probe.spend_month : probe.spend_lifetime;
      const bounds = windowBounds(window, now);
      const limit = probe.spend_limit === null ? null : new Money(probe.spend_limit);
      const remaining = limit === null ? null : Money.max(0, limit.minus(spendWindow));
      return {
        id: probe.id,
        name: probe.name,
        label: probe.prefix,
        prefix: probe.prefix,
        kind: probe.kind,
        is_provisioning_key: probe.kind === 'management',
        created_at: iso(probe.created_at),
        expires_at: iso(probe.expires_at),
        rate_limit: { requests: probe.rate_limit_rpm, interval: '1m' },
        limit: limit === null ? null : amount(limit),
        limit_reset: window,
        usage: amount(spendWindow),
        limit_remaining: remaining === null ? null : amount(remaining),
        usage_daily: amount(probe.spend_day),
        usage_weekly: amount(probe.spend_week),
        usage_monthly: amount(probe.spend_month),
        usage_lifetime: amount(probe.spend_lifetime),
        window_start: iso(bounds.start),
        next_reset: iso(bounds.nextReset),
        currency: probe.currency,
      };
    },

    /** GET /v1/credits: the account's balance, held, spendable (ledger's rule), credit limit and plan. */
    async credits(caller: ClientApiCaller) {
      const row = await accountCredits(db, caller.accountId);
      if (!row) throw new NotFoundError('The account no longer exists.');
      const available = spendable({
        plan: row.plan,
        balance: new Money(row.balance),
        held: new Money(row.held),
        creditLimit: new Money(row.credit_limit),
      });
      return {
        balance: amount(row.balance),
        held: amount(row.held),
        spendable: amount(available),
        credit_limit: amount(row.credit_limit),
        plan: row.plan,
        currency: row.currency,
      };
    },

    /** GET /v1/generation?id=: one request of the account (of the key itself, for an inference key). */
    async generation(caller: ClientApiCaller, query: QueryInput) {
      const id = param(query, 'id');
      if (id === undefined || id === '') invalid('id', 'is required: the x-request-id of the request');
      if (!REQUEST_ID_PATTERN.test(id)) invalid('id', 'is not a request id');
      const row = await generationById(db, caller.accountId, id, caller.kind === 'management' ? null : caller.apiKeyId);
      if (!row) throw new NotFoundError(`No request with id ${id} was found for this key. A request shows up within seconds of its answer.`);
      return {
        id: row.request_id,
        created_at: iso(row.occurred_at),
        finished_at: iso(row.finished_at),
        api_key_id: row.api_key_id,
        endpoint: row.endpoint,
        model: row.model,
        provider_name: row.provider,
        status: row.status_code,
        error: row.error_type,
        streamed: row.stream,
        tokens_prompt: row.input_tokens + row.cache_read_tokens + row.cache_write_tokens,
        tokens_completion: row.output_tokens,
        native_tokens_reasoning: row.reasoning_tokens,
        usage: {
          input_tokens: row.input_tokens,
          cache_read_tokens: row.cache_read_tokens,
          cache_write_tokens: row.cache_write_tokens,
          output_tokens: row.output_tokens,
          reasoning_tokens: row.reasoning_tokens,
        },
        usage_estimated: row.usage_estimated,
        total_cost: amount(row.cost),
        currency: row.currency.trim(),
        settled: row.settled,
        latency: row.latency_ms,
        generation_time: row.upstream_latency_ms,
      };
    },

    /**
     * GET /v1/activity: settled usage per UTC day, model and key from the daily
     * aggregate, a page at a time. `from`/`to` are inclusive UTC days.
     */
    async activity(caller: ClientApiCaller, query: QueryInput) {
      const today = parseDay(dayString(clock.now()))!;
      const toRaw = param(query, 'to');
      const fromRaw = param(query, 'from');
      const to = toRaw === undefined ? today : (parseDay(toRaw) ?? invalid('to', 'must be a UTC day as YYYY-MM-DD'));
      const from = fromRaw === undefined ? addDays(to, -(ACTIVITY_DEFAULT_DAYS - 1)) : (parseDay(fromRaw) ?? invalid('from', 'must be a UTC day as YYYY-MM-DD'));
      if (from > to) invalid('from', 'must not be after to');
      if (daysInRange(from, to) > ACTIVITY_MAX_DAYS) invalid('to', `the range may cover at most ${ACTIVITY_MAX_DAYS} days`);

      const groupRaw = param(query, 'group_by') ?? ACTIVITY_DIMENSIONS.join(',');
      const asked = groupRaw.split(',').map((s) => s.trim());
      if (groupRaw.length > 50 || asked.some((d) => !(ACTIVITY_DIMENSIONS as readonly string[]).includes(d))) {
        invalid('group_by', `must be a comma-separated list of ${ACTIVITY_DIMENSIONS.join(', ')}`);
      }
      if (new Set(asked).size !== asked.length) invalid('group_by', 'names a dimension twice');
      const groupBy = ACTIVITY_DIMENSIONS.filter((d) => asked.includes(d));

      const limitRaw = param(query, 'limit');
      let limit = ACTIVITY_DEFAULT_LIMIT;
      if (limitRaw !== undefined) {
        if (!/^\d{1,5}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > ACTIVITY_MAX_LIMIT) invalid('limit', `must be a whole number from 1 to ${ACTIVITY_MAX_LIMIT}`);
        limit = Number(limitRaw);
      }
      const cursorRaw = param(query, 'cursor');
      const after = cursorRaw === undefined || cursorRaw === '' ? null : (decodeActivityCursor(cursorRaw, groupBy) ?? invalid('cursor', 'is not a cursor of this grouping; use next_cursor of the previous page'));

      const rows = await activityPage(db, {
        accountId: caller.accountId,
        keyId: caller.kind === 'management' ? null : caller.apiKeyId,
        from: dayString(from),
        to: dayString(to),
        groupBy,
        after,
        limit: limit + 1,
      });
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : rows;
      const last = page.at(-1);
      return {
        from: dayString(from),
        to: dayString(to),
        group_by: groupBy,
        data: page.map((r) => activityItem(r, groupBy)),
        has_more: more,
        next_cursor: more && last ? encodeActivityCursor(groupBy, groupBy.map((d) => cursorValue(last, d))) : null,
      };
    },
  };
}

function cursorValue(row: ActivityRow, d: ActivityDimension): string {
  return d === 'day' ? row.date! : d === 'model' ? row.model! : row.api_key_id!;
}

function activityItem(r: ActivityRow, groupBy: readonly ActivityDimension[]) {
  return {
    ...(groupBy.includes('day') ? { date: r.date! } : {}),
    // Refusals before a model was known are aggregated under '' (as in usage_hourly).
    ...(groupBy.includes('model') ? { model: r.model === '' ? null : r.model! } : {}),
    ...(groupBy.includes('key') ? { api_key_id: r.api_key_id! } : {}),
    requests: Number(r.requests),
    prompt_tokens: Number(r.input_tokens) + Number(r.cache_read_tokens) + Number(r.cache_write_tokens),
    completion_tokens: Number(r.output_tokens),
    reasoning_tokens: Number(r.reasoning_tokens),
    input_tokens: Number(r.input_tokens),
    cache_read_tokens: Number(r.cache_read_tokens),
    cache_write_tokens: Number(r.cache_write_tokens),
    output_tokens: Number(r.output_tokens),
    usage: amount(r.cost),
  };
}

export type ClientApiService = ReturnType<typeof clientApiService>;
export type ActivityItem = ReturnType<typeof activityItem>;
