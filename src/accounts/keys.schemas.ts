import { z } from 'zod';
import { decimalPlaces, isDecimalString, MAX_STAFF_AMOUNT, PRICE_SCALE, withinStaffAmountBound } from '../shared/money.rules';
import type { FieldDoc } from './clientApi.rules';
import { LIMIT_WINDOWS } from './keyWindow.rules';

/**
 * Input shapes of the client key API (/v1/keys on the gateway). Field names are
 * OpenRouter's where they mean the same (name, limit, limit_reset, expires_at,
 * disabled), in snake_case as the gateway's JSON is.
 */

/** The most keys an account may hold unrevoked through the client API; staff are not bound by it. */
export const MAX_ACTIVE_KEYS_PER_ACCOUNT = 1000;
/** A page of /v1/keys holds at most this many keys. */
export const KEYS_PAGE_MAX = 100;
/** How far ahead an expiry may be set: far enough for any rotation policy, near enough to catch a typo in the year. */
export const MAX_KEY_LIFETIME_MS = 10 * 366 * 86_400_000;
export const MAX_ALERT_PERCENTS = 5;
export const MAX_RATE_LIMIT_RPM = 1_000_000;

/**
 * A spend limit in USD: a decimal string ("25.00"), or a JSON number for tools
 * written for OpenRouter, which sends numbers (a number is taken by its shortest
 * decimal form, which is exact for any limit written with at most 15 digits).
 * Positive, at most 12 decimals (the column's scale), at most 1,000,000,000.
 */
const limitAmount = z
  .union([z.string().trim().max(64, 'limit is too long'), z.number().finite('limit must be a finite number')], {
    error: 'limit must be a decimal string such as "25.00" (or a number), or null',
  })
  .transform((v) => (typeof v === 'number' ? String(v) : v))
  .refine(isDecimalString, 'limit must be a decimal amount in USD such as "25.00"')
  .refine((v) => decimalPlaces(v) <= PRICE_SCALE, `limit may have at most ${PRICE_SCALE} decimal places`)
  .refine((v) => !v.startsWith('-') && Number(v) > 0, 'limit must be positive (use null for no limit)')
  .refine(withinStaffAmountBound, `limit must be at most ${MAX_STAFF_AMOUNT}`);

const isoTime = z.iso.datetime({ offset: true, error: 'expires_at must be an ISO 8601 time such as 2027-12-31T23:59:59Z, or null' });

const keyName = z.string({ error: 'name must be a string' }).trim().min(1, 'name must not be empty').max(200, 'name must be at most 200 characters');

const rateLimitRpm = z
  .number({ error: 'rate_limit_rpm must be a whole number of requests per minute, or null' })
  .int('rate_limit_rpm must be a whole number')
  .min(1, 'rate_limit_rpm must be at least 1')
  .max(MAX_RATE_LIMIT_RPM, `rate_limit_rpm must be at most ${MAX_RATE_LIMIT_RPM}`);

const alertPercents = z
  .array(z.number().int('limit_alert_percents must be whole percentages').min(1, 'each percentage is 1-100').max(100, 'each percentage is 1-100'), {
    error: 'limit_alert_percents must be a list of whole percentages such as [80, 100]',
  })
  .max(MAX_ALERT_PERCENTS, `at most ${MAX_ALERT_PERCENTS} alert percentages`)
  .transform((v) => [...new Set(v)].sort((a, b) => a - b));

const limitReset = z.enum(LIMIT_WINDOWS, { error: 'limit_reset must be daily, weekly, monthly or null' });

/** The settings a key carries, as the client sends them. */
const settings = {
  rate_limit_rpm: rateLimitRpm.nullable().optional(),
  limit: limitAmount.nullable().optional(),
  limit_reset: limitReset.nullable().optional(),
  expires_at: isoTime.nullable().optional(),
  limit_alert_percents: alertPercents.optional(),
};

export const clientCreateKeyInput = z.strictObject({
  name: keyName,
  kind: z.enum(['inference', 'management'], { error: 'kind must be inference or management' }).default('inference'),
  ...settings,
});
export type ClientCreateKeyInput = z.input<typeof clientCreateKeyInput>;

export const clientUpdateKeyInput = z
  .strictObject({
    name: keyName.nullable().optional(),
    /** Only `true` (revoke): a revoked key's secret may have leaked, so it is never re-enabled. */
    disabled: z.boolean({ error: 'disabled must be true or false' }).optional(),
    ...settings,
  })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');
export type ClientUpdateKeyInput = z.input<typeof clientUpdateKeyInput>;

export const clientListKeysInput = z.strictObject({
  limit: z.coerce
    .number({ error: 'limit must be a whole number' })
    .int('limit must be a whole number')
    .min(1, 'limit must be at least 1')
    .max(KEYS_PAGE_MAX, `limit must be at most ${KEYS_PAGE_MAX}`)
    .default(KEYS_PAGE_MAX),
  after: z.uuid({ error: 'after must be the id of the last key of the previous page' }).optional(),
});

/** The key object of /v1/keys, for the client OpenAPI document (src/gateway/clientOpenapi.ts). */
export const KEY_OBJECT_FIELDS: readonly FieldDoc[] = [
  { name: 'id', type: 'string', description: 'The key’s id, used in /v1/keys/{id}.' },
  { name: 'name', type: 'string', nullable: true, description: 'The name given to the key.' },
  { name: 'label', type: 'string', description: 'The key’s display prefix (OpenRouter: `label`); the same as `prefix`.' },
  { name: 'prefix', type: 'string', description: 'The first characters of the key; the key itself is never stored or shown again.' },
  { name: 'kind', type: 'string', enum: ['inference', 'management'], description: '`inference` keys make model calls; `management` keys manage the account’s keys.' },
  { name: 'disabled', type: 'boolean', description: 'True once the key is revoked.' },
  { name: 'created_at', type: 'string', format: 'date-time', description: 'When the key was created.' },
  { name: 'revoked_at', type: 'string', format: 'date-time', nullable: true, description: 'When the key was revoked.' },
  { name: 'expires_at', type: 'string', format: 'date-time', nullable: true, description: 'When the key stops working; null: never.' },
  { name: 'rate_limit_rpm', type: 'integer', nullable: true, description: `Requests per minute (1-${MAX_RATE_LIMIT_RPM}); null: the gateway’s default.` },
  { name: 'limit', type: 'string', format: 'decimal', nullable: true, description: 'Spend limit in USD per `limit_reset` window; null: none.' },
  { name: 'limit_reset', type: 'string', enum: LIMIT_WINDOWS, nullable: true, description: 'The limit’s UTC calendar window; null with a limit: the key’s whole life.' },
  { name: 'limit_alert_percents', type: 'object', description: `Shares of the limit (whole percentages 1-100, at most ${MAX_ALERT_PERCENTS}) at which the account is told.` },
];

/** The request body fields of POST and PATCH /v1/keys, for the OpenAPI document. */
export const KEY_REQUEST_FIELDS: readonly FieldDoc[] = [
  { name: 'name', type: 'string', nullable: true, description: 'Required on create; 1-200 characters.' },
  { name: 'kind', type: 'string', enum: ['inference'], description: 'Create only; `management` keys are made by staff.' },
  { name: 'rate_limit_rpm', type: 'integer', nullable: true, description: `Requests per minute, 1-${MAX_RATE_LIMIT_RPM}.` },
  { name: 'limit', type: 'string', format: 'decimal', nullable: true, description: 'Positive USD amount, at most 1000000000 with at most 12 decimals (a JSON number is also taken).' },
  { name: 'limit_reset', type: 'string', enum: LIMIT_WINDOWS, nullable: true, description: 'Needs a limit.' },
  { name: 'expires_at', type: 'string', format: 'date-time', nullable: true, description: 'In the future and at most 3660 days ahead.' },
  { name: 'limit_alert_percents', type: 'object', description: `A list of at most ${MAX_ALERT_PERCENTS} whole percentages 1-100.` },
  { name: 'disabled', type: 'boolean', description: 'PATCH only: true revokes the key (never re-enabled).' },
];
