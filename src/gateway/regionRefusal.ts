import { withinRegion } from '../register/register.rules';
import type { CallerRegionPolicy } from './keyCache';
import type { ModelEntry } from './routingTable';

/**
 * Region policies at the gateway (docs/processing-register.md#region-policies):
 * an account limited to a set of countries is routed only to providers whose
 * every country of processing lies in it, primary and fallbacks alike, in their
 * order. The policy comes with the cached key and the countries with the
 * routing table, so the choice is a set lookup per route and country, never a
 * query. A model with no route left is refused, nothing is forwarded, and the
 * refusal is metered with its code like any other.
 */

/** The error code, on every route and in the metering record (usage_events.error_type). */
export const REGION_POLICY_CODE = 'region_policy_no_route';
/** 403: understood and will not be served; retrying does not help until the policy or the routes change. */
export const REGION_POLICY_STATUS = 403;
/**
 * OpenAI's error type for a request refused for where it would be processed
 * (its own `unsupported_country_region_territory` answer uses it); the
 * Anthropic routes answer `permission_error` (403).
 */
export const REGION_POLICY_OPENAI_TYPE = 'request_forbidden';

/**
 * The model's routes the policy allows: the entry itself when there is no
 * policy or every route is allowed (no copy on the common path), a copy with
 * only the allowed routes in their order, or null when none is.
 */
export function routesWithinPolicy(entry: ModelEntry, policy: CallerRegionPolicy | null | undefined): ModelEntry | null {
  if (!policy) return entry;
  const allowed = entry.routes.filter((r) => withinRegion(r.countries ?? [], policy.allowed));
  if (allowed.length === entry.routes.length) return entry;
  return allowed.length === 0 ? null : { ...entry, routes: allowed };
}

/** The policy as messages name it: its label, or its countries. */
export function policyName(policy: CallerRegionPolicy): string {
  return policy.label ?? [...policy.allowed].sort().join(', ');
}

/** The message: which policy, which model, and what to do; never which providers or where they are. */
export function regionPolicyMessage(policy: CallerRegionPolicy, model: string): string {
  return (
    `This account's region policy (${policyName(policy)}) allows no route for the model \`${model}\`: none of its providers ` +
    'processes data only in the allowed countries. Use another model, or ask the account owner to change the policy.'
  );
}
