import { z } from 'zod';
import { NotFoundError } from '../errors';
import type { AccountEventsService } from '../notifications/events.service';
import { eventEmail } from '../notifications/events.rules';
import type { WebhooksService } from '../webhooks/webhooks.service';
import type { CustomerSession } from './customerConsole.service';

/**
 * The customer console's Alerts and webhooks page (/app/alerts, issue 26):
 * the account's alert settings and recent events (src/notifications/
 * events.service.ts) and its webhook endpoints with their delivery logs
 * (src/webhooks/webhooks.service.ts), the services /v1/alerts and
 * /v1/webhooks use. Every call is scoped to the session's account: an id of
 * another account's endpoint or delivery is "not found".
 */
export const ALERTS_EVENTS_SHOWN = 50;
export const ALERTS_DELIVERIES_SHOWN = 50;

type Account = Pick<CustomerSession, 'accountId'>;
const isId = (v: string) => z.uuid().safeParse(v).success;
/** A path id that is no id is "not found", as an id of another account is. */
const idOf = (id: string, what: string) => {
  if (!isId(id)) throw new NotFoundError(`${what} not found`);
  return id;
};

export function consoleAlertsService({ events, webhooks }: { events: AccountEventsService; webhooks: WebhooksService }) {
  return {
    /** Settings, the latest events (with a one-line summary) and the webhook endpoints of the session's account. */
    async page(s: Account) {
      const settings = await events.getAlertSettings({ accountId: s.accountId });
      const list = await events.listEvents({ accountId: s.accountId, query: { limit: ALERTS_EVENTS_SHOWN } });
      const endpoints = await webhooks.listEndpoints({ accountId: s.accountId });
      return {
        settings,
        events: list.items.map((e) => ({
          ...e,
          summary: eventEmail({ id: e.id, type: e.type, accountId: s.accountId, data: e.data }).subject.replace(/^MixRoute: /, ''),
        })),
        endpoints,
      };
    },

    /** What the overview shows under "Alerts in force": the thresholds, the email switch and the active endpoints. */
    async inForce(s: Account) {
      const settings = await events.getAlertSettings({ accountId: s.accountId });
      const endpoints = await webhooks.listEndpoints({ accountId: s.accountId });
      return { lowBalanceThresholds: settings.lowBalanceThresholds, emailAlerts: settings.emailAlerts, activeEndpoints: endpoints.filter((e) => e.status === 'active').length };
    },

    /** Replaces the thresholds and sets the email switch; the service validates both before anything is saved. */
    setSettings: (s: Account, settings: { lowBalanceThresholds: unknown; emailAlerts: boolean }) => events.setAlertSettings({ accountId: s.accountId, settings }),

    /** Registers an endpoint; the answer holds the signing secret (shown once). */
    addEndpoint: (s: Account, input: { url: unknown; events: unknown }) => webhooks.registerEndpoint({ accountId: s.accountId, url: input.url, events: input.events }),

    /** One endpoint and its latest deliveries. */
    async endpoint(s: Account, id: string) {
      const endpoint = await webhooks.getEndpoint({ id: idOf(id, 'webhook endpoint'), accountId: s.accountId });
      const { deliveries } = await webhooks.listDeliveries({ accountId: s.accountId, endpointId: endpoint.id, limit: ALERTS_DELIVERIES_SHOWN });
      return { endpoint, deliveries };
    },

    disable: (s: Account, id: string) => webhooks.disableEndpoint({ id: idOf(id, 'webhook endpoint'), accountId: s.accountId }, 'account'),
    enable: (s: Account, id: string) => webhooks.enableEndpoint({ id: idOf(id, 'webhook endpoint'), accountId: s.accountId }),
    remove: (s: Account, id: string) => webhooks.deleteEndpoint({ id: idOf(id, 'webhook endpoint'), accountId: s.accountId }),
    redeliver: (s: Account, deliveryId: string) => webhooks.redeliver({ id: idOf(deliveryId, 'webhook delivery'), accountId: s.accountId }),
  };
}

export type ConsoleAlertsService = ReturnType<typeof consoleAlertsService>;
