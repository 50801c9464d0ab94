import { z } from 'zod';
import { decimalPlaces, isDecimalString, MAX_STAFF_AMOUNT, PRICE_SCALE, withinStaffAmountBound } from '../shared/money.rules';
import { STAFF_ROLES } from './staff.rules';
import { PROVIDER_KEY_ENV } from '../config';

/**
 * Input shapes for staff operations, shared by the CLI and the admin API so
 * both validate identically. Field names are the JSON names; CLI flags are
 * their kebab-case forms (--vat-id -> vatId).
 */

/**
 * Money comes in as a decimal string; a JSON number could already have lost precision.
 * Amounts are stored as NUMERIC(24,12): more decimals would be rounded silently by
 * PostgreSQL and more integer digits would overflow, so both are refused here, with
 * a bound far below the column's so that sums of many staff amounts still fit.
 */
const decimalString = (what: string) =>
  z
    .string({ error: `${what} must be a decimal string such as "2.50"` })
    .trim()
    .max(64, `${what} is too long`)
    .refine(isDecimalString, `${what} must be a decimal string such as "2.50"`)
    .refine((v) => decimalPlaces(v) <= PRICE_SCALE, `${what} may have at most ${PRICE_SCALE} decimal places`)
    .refine((v) => !isDecimalString(v) || withinStaffAmountBound(v), `${what} must be at most ${MAX_STAFF_AMOUNT} in absolute value`);

const nonNegativeDecimal = (what: string) =>
  decimalString(what).refine((v) => !v.startsWith('-'), `${what} must not be negative`);

/** Declared here (not with the other amount shapes below) because createKeyInput uses it. */
const positiveAmount = (what: string) => decimalString(what).refine((v) => !v.startsWith('-') && Number(v) > 0, `${what} must be positive`);

const uuid = (what: string) => z.uuid({ error: `${what} must be an id (UUID)` });
const text = (what: string, max = 200) => z.string().trim().min(1, `${what} must not be empty`).max(max);

export const createAccountInput = z.strictObject({
  name: text('name'),
  plan: z.enum(['prepaid', 'postpaid']).default('prepaid'),
  country: z
    .string()
    .trim()
    .toUpperCase()
    .regex(/^[A-Z]{2}$/, 'country must be an ISO 3166-1 alpha-2 code such as DE')
    .optional(),
  vatId: text('vatId', 32).optional(),
  billingEmail: z.email('billingEmail must be an email address').optional(),
  taxStatus: z.enum(['standard', 'exempt', 'reverse_charge']).optional(),
  creditLimit: nonNegativeDecimal('creditLimit').default('0'),
  // Prices are in USD; other currencies need FX rules that the invoice issue defines.
  currency: z.enum(['USD']).default('USD'),
});
export type CreateAccountInput = z.input<typeof createAccountInput>;

export const createUserInput = z.strictObject({
  accountId: uuid('accountId'),
  name: text('name'),
  email: z.email('email must be an email address'),
  phone: text('phone', 40).optional(),
  jobTitle: text('jobTitle').optional(),
});
export type CreateUserInput = z.input<typeof createUserInput>;

export const createKeyInput = z.strictObject({
  accountId: uuid('accountId'),
  userId: uuid('userId').optional(),
  name: text('name').optional(),
  rateLimitRpm: z.coerce.number().int().positive().max(1_000_000).optional(),
  /** `management`: the account's first key to manage its own keys (/v1/keys); it makes no model calls. */
  kind: z.enum(['inference', 'management'], { error: 'kind must be inference or management' }).default('inference'),
  expiresAt: z.iso.datetime({ offset: true, error: 'expiresAt must be an ISO 8601 time such as 2027-12-31T23:59:59Z' }).optional(),
  spendLimit: positiveAmount('spendLimit').optional(),
  limitWindow: z.enum(['daily', 'weekly', 'monthly'], { error: 'limitWindow must be daily, weekly or monthly' }).optional(),
});
export type CreateKeyInput = z.input<typeof createKeyInput>;

export const idInput = z.strictObject({ id: uuid('id') });

export const addProviderInput = z.strictObject({
  name: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'name must be lower-case letters, digits, ".", "_" or "-"'),
  baseUrl: z.url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL' }),
  // Only PROVIDER_*_API_KEY variables may hold a credential (config.ts): any other name
  // would let whoever adds a provider send the gateway's own secrets to a host of their choice.
  // Omitted: PROVIDER_<NAME>_API_KEY from the provider's name.
  apiKeyEnv: z
    .string()
    .regex(PROVIDER_KEY_ENV, 'apiKeyEnv must be the NAME of a variable of the form PROVIDER_<NAME>_API_KEY, such as PROVIDER_OPENAI_API_KEY')
    .optional(),
  kind: z.enum(['openai', 'anthropic']).default('openai'),
});
export type AddProviderInput = z.input<typeof addProviderInput>;

export const addModelInput = z.strictObject({
  name: text('name', 120),
  provider: text('provider', 63),
  upstreamModel: text('upstreamModel', 200),
  inputPerMtok: nonNegativeDecimal('inputPerMtok'),
  outputPerMtok: nonNegativeDecimal('outputPerMtok'),
  cachedInputPerMtok: nonNegativeDecimal('cachedInputPerMtok').optional(),
  /** Five-minute prompt-cache writes (Anthropic); unset: the input price. */
  cacheWritePerMtok: nonNegativeDecimal('cacheWritePerMtok').optional(),
  /** One-hour prompt-cache writes (Anthropic); unset: the input price. */
  cacheWrite1hPerMtok: nonNegativeDecimal('cacheWrite1hPerMtok').optional(),
  effectiveFrom: z.iso.datetime({ offset: true, error: 'effectiveFrom must be an ISO 8601 time such as 2026-12-01T00:00:00Z' }).optional(),
});
export type AddModelInput = z.input<typeof addModelInput>;

/** A new price version of an existing model: no provider or route in it, so billing staff may set it. */
export const addPriceInput = addModelInput.omit({ provider: true, upstreamModel: true });
export type AddPriceInput = z.input<typeof addPriceInput>;

export const setFallbacksInput = z.strictObject({
  name: text('name', 120),
  routes: z
    .array(z.strictObject({ provider: text('provider', 63), upstreamModel: text('upstreamModel', 200) }))
    .max(5, 'at most 5 fallback routes'),
});
export type SetFallbacksInput = z.input<typeof setFallbacksInput>;

export const createStaffTokenInput = z.strictObject({
  role: z.enum(STAFF_ROLES as [string, ...string[]]),
  name: text('name').optional(),
});
export type CreateStaffTokenInput = z.input<typeof createStaffTokenInput>;

/**
 * Every list is read a page at a time, so no request can make the server load a
 * whole table: `limit` (1-500, default 100) and `after`, the key of the last item
 * of the previous page (each list says which key it orders by).
 */
export const PAGE_LIMIT_MAX = 500;
export const pageLimit = (fallback = 100) =>
  z.coerce
    .number({ error: 'limit must be a whole number' })
    .int('limit must be a whole number')
    .min(1, 'limit must be at least 1')
    .max(PAGE_LIMIT_MAX, `limit must be at most ${PAGE_LIMIT_MAX}`)
    .default(fallback);
export const pageInput = z.strictObject({
  limit: pageLimit(),
  after: z.string().trim().min(1).max(200, 'after must be the key of the last item of the previous page').optional(),
});

export const listInput = z.strictObject({
  limit: pageLimit(),
  after: uuid('after').optional(),
});
export const listKeysInput = z.strictObject({ id: uuid('id'), limit: pageLimit(), after: uuid('after').optional() });

const positiveDecimal = (what: string) =>
  decimalString(what).refine((v) => !v.startsWith('-') && Number(v) > 0, `${what} must be positive`);
const signedNonZeroDecimal = (what: string) => decimalString(what).refine((v) => Number(v) !== 0, `${what} must not be zero`);
const reference = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_.:/-]{1,120}$/, 'reference must be 1-120 letters, digits or ._:/- (it is the idempotency key: the same reference credits once)');
const reason = z.string().trim().min(3, 'reason must say why (at least 3 characters)').max(500);

export const createTopUpInput = z.strictObject({
  accountId: uuid('accountId'),
  amount: positiveDecimal('amount'),
  reference,
  kind: z.enum(['topup', 'grant']).default('topup'),
});

export const refundInput = z.strictObject({ accountId: uuid('accountId'), amount: positiveDecimal('amount'), reference, reason });
export const adjustmentInput = z.strictObject({ accountId: uuid('accountId'), amount: signedNonZeroDecimal('amount'), reference, reason });
export const reversalInput = z.strictObject({ entryId: z.coerce.number().int().positive(), reason });

export const balanceInput = z.strictObject({
  accountId: uuid('accountId'),
  limit: z.coerce.number().int().min(1).max(500).default(20),
  before: z.coerce.number().int().positive().optional(),
});
