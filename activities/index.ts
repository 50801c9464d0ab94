import type { Clock } from '../src/clock';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import type { Logger } from '../src/logger';
import { billingActivities } from './billing';
import { ledgerService } from '../src/ledger/ledger.service';
import { meteringService } from '../src/metering/metering.service';
import { healthActivities } from './health';
import { invoicingActivities } from './invoicing';
import { invoicingService } from '../src/invoicing/invoicing.service';
import { reconciliationActivities } from './reconciliation';
import { dsrActivities, type PrivacyDeps } from './dsr';
import { retentionActivities } from './retention';
import { retentionService } from '../src/retention/retention.service';
import { privacyFulfilmentService } from '../src/privacy/fulfilment.service';

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
    ...billingActivities({ ledger: ledgerService(deps), metering: meteringService(deps) }),
    ...invoicingActivities({ invoicing: invoicingService({ db: deps.db, clock: deps.clock, config: { invoicing: deps.invoicing, billing: deps.billing } }) }),
    ...reconciliationActivities(deps),
    ...dsrActivities({ ...deps, privacyFulfilment: privacyFulfilmentService({ db: deps.db, clock: deps.clock, privacy: deps.privacy }) }),
    ...retentionActivities({ ...deps, retentionService: retentionService({ db: deps.db, clock: deps.clock, config: { retention: deps.retention } }) }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
