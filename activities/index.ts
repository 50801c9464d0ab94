import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import type { Logger } from '../src/logger';
import { billingActivities } from './billing';
import { healthActivities } from './health';
import { invoicingActivities } from './invoicing';
import { reconciliationActivities } from './reconciliation';
import { dsrActivities, type PrivacyDeps } from './dsr';
import { retentionActivities } from './retention';

/** What activities may use; the worker passes production ones, tests pass a test database. */
export interface ActivityDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  billing: Config['billing'];
  invoicing: Config['invoicing'];
  reconcile: Config['reconcile'];
  retention: Config['retention'];
  privacy: PrivacyDeps;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...healthActivities(deps),
    ...billingActivities(deps),
    ...invoicingActivities(deps),
    ...reconciliationActivities(deps),
    ...dsrActivities(deps),
    ...retentionActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
