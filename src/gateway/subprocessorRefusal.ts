import type { Caller, CallerSubprocessors } from './keyCache';
import { REGION_POLICY_CODE, routesWithinPolicy } from './regionRefusal';
import type { ModelEntry, Route } from './routingTable';

/**
 * Sub-processor changes at the gateway (docs/processing-register.md#sub-processor-changes-at-the-gateway):
 * an account with a data-processing agreement is routed only to providers that
 * have a register entry (an undisclosed provider is no agreed sub-processor)
 * and that no pending or objected notice of the account holds back, primary
 * and fallbacks alike, in their order. The holds come with the cached key and
 * the register entries with the routing table, so the choice is a set lookup
 * per route, never a query. A model with no route left is refused, nothing is
 * forwarded, and the refusal is metered with its code like any other.
 */

/** The error code, on every route and in the metering record (usage_events.error_type). */
export const SUBPROCESSOR_CODE = 'subprocessor_not_approved';
/** 403: understood and will not be served until the notice is accepted or takes effect. */
export const SUBPROCESSOR_STATUS = 403;
/** As for the region refusal (regionRefusal.ts); the Anthropic routes answer `permission_error`. */
export const SUBPROCESSOR_OPENAI_TYPE = 'request_forbidden';

/** Why a caller may use none of a model's routes. */
export type RouteRefusal = typeof REGION_POLICY_CODE | typeof SUBPROCESSOR_CODE;

/**
 * A provider with a register entry, not held, and whose entry has not changed since the holds were loaded:
 * the routing table may see a new entry (or new countries) before this caller's cached key shows the notice
 * committed with it; until the key is reloaded (the key cache's TTL) such a route is left alone.
 */
const approved = (route: Route, s: CallerSubprocessors): boolean =>
  route.registered === true && !s.held.has(route.provider) && (route.registerSince ?? 0) <= s.loadedAt;

/**
 * The model's routes the account's agreement allows: the entry itself without
 * an agreement or when every route is allowed (no copy), a copy with only the
 * allowed routes in their order, or null when none is.
 */
export function routesApproved(entry: ModelEntry, subprocessors: CallerSubprocessors | null | undefined): ModelEntry | null {
  if (!subprocessors) return entry;
  if (entry.routes.every((r) => approved(r, subprocessors))) return entry;
  const allowed = entry.routes.filter((r) => approved(r, subprocessors));
  return allowed.length === 0 ? null : { ...entry, routes: allowed };
}

/**
 * The routes a caller may use: the region policy first, then the agreement.
 * The refusal code when none is left; the region refusal when the policy
 * alone leaves nothing. Without policy and agreement, the entry itself.
 */
export function routesForCaller(entry: ModelEntry, caller: Pick<Caller, 'regionPolicy' | 'subprocessors'>): ModelEntry | RouteRefusal {
  const inRegion = routesWithinPolicy(entry, caller.regionPolicy);
  if (!inRegion) return REGION_POLICY_CODE;
  return routesApproved(inRegion, caller.subprocessors) ?? SUBPROCESSOR_CODE;
}

/** The models a caller may use at least one route of (GET /v1/models): the list itself for most callers. */
export function modelsForCaller(models: ModelEntry[], caller: Pick<Caller, 'regionPolicy' | 'subprocessors'>): ModelEntry[] {
  if (!caller.regionPolicy && !caller.subprocessors) return models;
  return models.filter((m) => typeof routesForCaller(m, caller) !== 'string');
}

/** The message: which model and what to do; never which providers. */
export function subprocessorMessage(model: string): string {
  return (
    `This account's data-processing agreement allows none of the providers of the model \`${model}\` yet: a sub-processor ` +
    'notice is running or the account objected to it. Use another model, or accept the notice with a management key ' +
    '(see GET /v1/subprocessor-notices).'
  );
}
