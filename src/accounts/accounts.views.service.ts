import { Money, toAmountString } from '../shared/money.rules';
import type { AccountRow } from './accounts.data';
import type { ApiKeyRow } from './apiKeys.data';
import type { ModelRow, PriceRow, ProviderRow } from './routing.data';
import type { UserRow } from './users.data';

/**
 * What staff see of each record: camelCase, amounts as decimal strings, times as ISO strings.
 * Part of the accounts service because it maps the data files' rows, which only services may import.
 */

const iso = (d: Date | null) => (d ? d.toISOString() : null);
/** NUMERIC comes back as "10.000000000000"; show it without the storage padding (money.rules.ts's canonical form). */
const amount = (v: string) => toAmountString(new Money(v));
const optionalAmount = (v: string | null) => (v === null ? null : amount(v));

export const accountView = (a: AccountRow) => ({
  id: a.id,
  name: a.name,
  plan: a.plan,
  country: a.country,
  vatId: a.vat_id,
  taxStatus: a.tax_status,
  billingEmail: a.billing_email,
  creditLimit: amount(a.credit_limit),
  currency: a.currency,
  status: a.status,
  createdAt: iso(a.created_at),
});

export const userView = (u: UserRow) => ({
  id: u.id,
  accountId: u.account_id,
  name: u.name,
  email: u.email,
  phone: u.phone,
  jobTitle: u.job_title,
  createdAt: iso(u.created_at),
});

/** Key metadata only: the key itself is never stored and so never shown again. */
export const apiKeyView = (k: ApiKeyRow) => ({
  id: k.id,
  accountId: k.account_id,
  userId: k.user_id,
  name: k.name,
  prefix: k.prefix,
  rateLimitRpm: k.rate_limit_rpm,
  kind: k.kind,
  expiresAt: iso(k.expires_at),
  spendLimit: optionalAmount(k.spend_limit),
  limitWindow: k.limit_window,
  limitAlertPercents: k.limit_alert_percents,
  createdAt: iso(k.created_at),
  revokedAt: iso(k.revoked_at),
});

export const providerView = (p: ProviderRow) => ({
  id: p.id,
  name: p.name,
  baseUrl: p.base_url,
  apiKeyEnv: p.api_key_env,
  kind: p.kind,
  createdAt: iso(p.created_at),
});

export const priceView = (p: PriceRow) => ({
  id: p.id,
  currency: p.currency,
  inputPerMtok: amount(p.input_per_mtok),
  cachedInputPerMtok: optionalAmount(p.cached_input_per_mtok),
  outputPerMtok: amount(p.output_per_mtok),
  cacheWritePerMtok: optionalAmount(p.cache_write_per_mtok ?? null),
  cacheWrite1hPerMtok: optionalAmount(p.cache_write_1h_per_mtok ?? null),
  effectiveFrom: iso(p.effective_from),
});

export const modelView = (m: ModelRow, providerName: string, price?: PriceRow) => ({
  id: m.id,
  name: m.public_name,
  provider: providerName,
  upstreamModel: m.upstream_model,
  active: m.active,
  ...(price ? { price: priceView(price) } : {}),
});
