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
import { loadConfig } from '../src/config';
import { guardedConnector } from '../src/gateway/upstreamAddress';
import { upstreamAddressPolicy } from '../src/shared/upstreamAddressPolicy';
import { createWebhookSender } from '../src/webhooks/sender';
import { webhookDeliveryService } from '../src/webhooks/webhooks.service';
import { webhookActivities } from './webhooks';
import { accountEventsService } from '../src/notifications/events.service';
import { processorEmailSender } from '../src/privacy/processorMode.service';
import { paymentRequestActivities } from './paymentRequests';
import { paymentRequests } from '../src/invoicing/paymentRequests.service';
import { dunningActivities, dunningStarter } from './dunning';
import { dunningService } from '../src/invoicing/dunning.service';
import { subprocessorActivities } from './subprocessor';
import { subprocessorService } from '../src/register/subprocessor.service';
import { policyVersionActivities } from './policyVersions';
import { policyVersionsService } from '../src/policyVersions/policyVersions.service';

const dunningOf = (deps: ActivityDeps) => dunningService({ db: deps.db, clock: deps.clock, config: { invoicing: deps.invoicing } });

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
  /** Webhook delivery settings; absent, the defaults (docs/configuration.md). */
  webhooks?: Config['webhooks'];
}

function webhookDeps(deps: ActivityDeps) {
  const webhooks = deps.webhooks ?? loadConfig({}).webhooks;
  // Deliveries connect through the gateway's address guard, with WEBHOOK_ALLOWED_HOSTS as the policy.
  const connect = guardedConnector(upstreamAddressPolicy(webhooks.allowedHosts), { timeout: webhooks.timeoutMs });
  const service = webhookDeliveryService({
    db: deps.db,
    clock: deps.clock,
    config: { webhooks, dataDir: deps.privacy.dataDir },
    sender: createWebhookSender({ connect, timeoutMs: webhooks.timeoutMs }),
    mail: deps.privacy.mail,
  });
  const events = deps.privacy.mail ? accountEventsService({ db: deps.db, mail: deps.privacy.mail }) : undefined;
  const processorEmails = processorEmailSender({ db: deps.db, clock: deps.clock, mail: deps.privacy.mail });
  return { webhooks: service, events, processorEmails, clock: deps.clock, dispatchPollMs: webhooks.dispatchPollMs };
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...healthActivities(deps),
    ...billingActivities({ ledger: ledgerService(deps), metering: meteringService(deps) }),
    ...invoicingActivities({
      invoicing: invoicingService({ db: deps.db, clock: deps.clock, config: { invoicing: deps.invoicing, billing: deps.billing } }),
      startDunning: dunningStarter({ dunning: dunningOf(deps), invoicing: deps.invoicing }),
    }),
    ...dunningActivities({ dunning: dunningOf(deps) }),
    ...reconciliationActivities(deps),
    ...dsrActivities({ ...deps, privacyFulfilment: privacyFulfilmentService({ db: deps.db, clock: deps.clock, privacy: deps.privacy }) }),
    ...retentionActivities({ ...deps, retentionService: retentionService({ db: deps.db, clock: deps.clock, config: { retention: deps.retention } }) }),
    ...webhookActivities(webhookDeps(deps)),
    ...paymentRequestActivities({ paymentRequests: paymentRequests({ db: deps.db, config: { invoicing: deps.invoicing } }) }),
    ...subprocessorActivities({ subprocessors: subprocessorService({ db: deps.db, clock: deps.clock }) }),
    ...policyVersionActivities({ policyVersions: policyVersionsService({ db: deps.db, clock: deps.clock, mail: deps.privacy.mail }) }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
