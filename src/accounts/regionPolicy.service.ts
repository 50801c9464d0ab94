import { z } from 'zod';
import type { Db } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { isCountryCode, NAMED_REGIONS } from '../register/register.rules';
import { validate } from '../shared/validate';
import { hasControl } from '../shared/text';
import {
  accountStatus,
  clearRegionPolicy,
  lockAccount,
  regionPolicyChanges,
  regionPolicyOf,
  setRegionPolicy,
  type RegionPolicyChangeRow,
  type RegionPolicyRow,
} from './regionPolicy.data';

/**
 * Region policies (docs/processing-register.md#region-policies): billing or
 * admin staff limit an account, on the customer's request, to providers whose
 * every country of processing lies in an allowed set (a named region such as
 * EEA, countries, or both); compliance staff read them. Every change records
 * who, why and the values before and after in register_changes, in the same
 * transaction. The gateway reads the policy with the key, so a change applies
 * on every instance within the key cache's TTL (GATEWAY_KEY_CACHE_MS).
 */

/** The database's bound on a policy's countries (account_region_policies.allowed_countries). */
export const MAX_POLICY_COUNTRIES = 60;
/** The database's bound on a label (account_region_policies.label). */
const MAX_LABEL = 40;

const reason = z
  .string({ error: 'reason must say why' })
  .trim()
  .min(3, 'reason must say why (at least 3 characters)')
  .max(500, 'reason must be at most 500 characters')
  .refine((v) => !hasControl(v), 'reason must be one line of text without control characters');

/** `allow`: "EEA", "DE,FR", "EEA,CH", or the same as a list; bounded before it is looked at. */
const allow = z.union([
  z.string({ error: 'allow must name a region (EEA) or countries (DE,FR)' }).max(400, 'allow is too long'),
  z.array(z.string().max(10, 'allow: an entry is too long')).max(MAX_POLICY_COUNTRIES, `allow: at most ${MAX_POLICY_COUNTRIES} entries`),
]);

/** The admin API's body of POST /billing/accounts/:id/region-policy. */
export const setRegionPolicyBody = z.strictObject({ allow, reason });
/** The admin API's body of DELETE /billing/accounts/:id/region-policy. */
export const clearRegionPolicyBody = z.strictObject({ reason });

const accountId = z.uuid({ error: 'id must be an account id (UUID)' });

/**
 * The allowed countries an `allow` names, sorted and without repeats, and the
 * label messages use: the named regions and countries as given ("EEA,CH") when
 * a named region is among them, null for a plain list (messages then name the
 * countries). Throws a ValidationError naming each entry that is neither.
 */
export function parseAllow(raw: string | string[]): { allowedCountries: string[]; label: string | null } {
  const tokens = (Array.isArray(raw) ? raw : raw.split(','))
    .map((t) => t.trim().toUpperCase())
    .filter((t) => t.length > 0);
  const countries = new Set<string>();
  const bad: string[] = [];
  for (const t of tokens) {
    const named = Object.hasOwn(NAMED_REGIONS, t) ? NAMED_REGIONS[t] : undefined;
    if (named) for (const c of named) countries.add(c);
    else if (isCountryCode(t)) countries.add(t);
    else bad.push(t);
  }
  const fail = (message: string): never => {
    throw new ValidationError(`invalid input: allow: ${message}`, [{ field: 'allow', message }]);
  };
  if (bad.length > 0) {
    // Echo at most a few, each cut short: the message stays small whatever was sent.
    const shown = bad.slice(0, 5).map((b) => JSON.stringify(b.slice(0, 10))).join(', ');
    fail(`${shown} ${bad.length === 1 ? 'is' : 'are'} neither a country code (ISO 3166-1 alpha-2, e.g. DE) nor a named region (${Object.keys(NAMED_REGIONS).join(', ')})`);
  }
  if (countries.size === 0) fail('name a region (EEA) or at least one country (DE,FR)');
  if (countries.size > MAX_POLICY_COUNTRIES) fail(`names ${countries.size} countries; a policy holds at most ${MAX_POLICY_COUNTRIES}`);
  const spec = [...new Set(tokens)].join(',');
  const label = tokens.some((t) => Object.hasOwn(NAMED_REGIONS, t)) && spec.length <= MAX_LABEL ? spec : null;
  return { allowedCountries: [...countries].sort(), label };
}

const policyView = (r: RegionPolicyRow) => ({ allowedCountries: r.allowed_countries, label: r.label, updatedAt: r.updated_at.toISOString() });
const changeView = (r: RegionPolicyChangeRow) => ({
  action: r.action,
  actor: r.actor,
  reason: r.reason,
  before: r.before,
  after: r.after,
  changedAt: r.changed_at.toISOString(),
});

export type RegionPolicyView = ReturnType<typeof policyView>;

export function regionPolicyService({ db }: { db: Db }) {
  /** Locks the account (404 unknown, 409 closed) for the rest of the transaction. */
  const lockOpen = async (trx: Db, id: string) => {
    const status = await lockAccount(trx, id);
    if (!status) throw new NotFoundError(`account ${id} does not exist`);
    if (status === 'closed') throw new ConflictError(`account ${id} is closed`);
  };

  return {
    /** The account's policy (null: none, every route is used) and its last 20 changes, newest first. */
    async get(rawAccountId: unknown) {
      const id = validate(z.strictObject({ accountId }), { accountId: rawAccountId }).accountId;
      if (!(await accountStatus(db, id))) throw new NotFoundError(`account ${id} does not exist`);
      const [row, changes] = await Promise.all([regionPolicyOf(db, id), regionPolicyChanges(db, id)]);
      return { accountId: id, policy: row ? policyView(row) : null, changes: changes.map(changeView) };
    },

    /** Sets the policy; the same policy again changes nothing (`changed: false`). */
    async set(raw: { accountId: unknown; allow: unknown; reason: unknown; actor: string }) {
      const input = validate(z.strictObject({ accountId, allow, reason }), { accountId: raw.accountId, allow: raw.allow, reason: raw.reason });
      const parsed = parseAllow(input.allow);
      return db.transaction(async (trx) => {
        await lockOpen(trx, input.accountId);
        const r = await setRegionPolicy(trx, { accountId: input.accountId, ...parsed, actor: raw.actor, reason: input.reason });
        return { accountId: input.accountId, changed: r.changed, policy: policyView(r.policy) };
      });
    },

    /** Removes the policy: every route is used again. None: nothing changes (`cleared: false`). */
    async clear(raw: { accountId: unknown; reason: unknown; actor: string }) {
      const input = validate(z.strictObject({ accountId, reason }), { accountId: raw.accountId, reason: raw.reason });
      return db.transaction(async (trx) => {
        await lockOpen(trx, input.accountId);
        const r = await clearRegionPolicy(trx, { accountId: input.accountId, actor: raw.actor, reason: input.reason });
        return { accountId: input.accountId, cleared: r.cleared, policy: null };
      });
    },
  };
}

export type RegionPolicyService = ReturnType<typeof regionPolicyService>;
