import type { Command } from 'commander';

import { systemClock } from '../clock';
import { webhooksService, type DeliveryView, type EndpointView, type WebhooksService } from '../webhooks/webhooks.service';

import { defined, print, staffCommand, withDb } from './shared';

const withWebhooks = <T>(fn: (svc: WebhooksService) => Promise<T>): Promise<T> => withDb((db, cfg) => fn(webhooksService({ db, clock: systemClock, config: cfg })));

const endpointLine = (e: EndpointView) =>
  `${e.id}  ${e.status.padEnd(8)} ${e.url}  [${e.events.join(', ')}]  secret ${e.secretPrefix}…${e.consecutiveFailures ? `  failing x${e.consecutiveFailures}` : ''}${e.disabledReason ? `  (disabled: ${e.disabledReason})` : ''}`;
const deliveryLine = (d: DeliveryView) =>
  `${d.id}  ${d.createdAt}  ${d.eventType.padEnd(20)} ${d.status.padEnd(9)} attempts ${d.attempts}  code ${d.lastResponseCode ?? '-'}${d.lastError ? `  ${d.lastError}` : ''}${d.nextAttemptAt ? `  next ${d.nextAttemptAt}` : ''}${d.redeliveries ? `  redelivered x${d.redeliveries}` : ''}`;

/** `mixroute webhooks ...`: an account's webhook endpoints and their delivery log (docs/webhooks.md). */
export function registerWebhooks(program: Command): void {
  const webhooks = program.command('webhooks').description("accounts' webhook endpoints and delivery log");
  staffCommand(webhooks, 'add', 'register an endpoint; prints its signing secret once')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--url <url>', 'where events are POSTed (http or https)')
    .requiredOption('--events <list>', 'comma-separated event types, e.g. balance.low,topup.succeeded')
    .action(async (o) =>
      print(
        await withWebhooks((svc) => svc.registerEndpoint({ accountId: o.account, url: o.url, events: String(o.events).split(',').map((s) => s.trim()).filter(Boolean) })),
        !!o.json,
        (e) => `${endpointLine(e)}\nsecret: ${e.secret}\n(shown once: give it to the account now)`,
      ),
    );
  staffCommand(webhooks, 'list', "an account's endpoints")
    .requiredOption('--account <id>', 'account id')
    .action(async (o) => print(await withWebhooks((svc) => svc.listEndpoints({ accountId: o.account })), !!o.json, (rows: EndpointView[]) => rows.map(endpointLine).join('\n') || '(no endpoints)'));
  staffCommand(webhooks, 'disable', 'stop deliveries to an endpoint')
    .argument('<id>', 'endpoint id')
    .action(async (id: string, o) => print(await withWebhooks((svc) => svc.disableEndpoint({ id }, 'staff')), !!o.json, endpointLine));
  staffCommand(webhooks, 'enable', 'deliver to an endpoint again (failure count reset)')
    .argument('<id>', 'endpoint id')
    .action(async (id: string, o) => print(await withWebhooks((svc) => svc.enableEndpoint({ id })), !!o.json, endpointLine));
  staffCommand(webhooks, 'delete', 'delete an endpoint and its delivery log')
    .argument('<id>', 'endpoint id')
    .action(async (id: string, o) => print(await withWebhooks((svc) => svc.deleteEndpoint({ id })), !!o.json, (r) => `deleted ${r.id}`));
  staffCommand(webhooks, 'deliveries', 'the delivery log, newest first (status, attempts, last response code)')
    .option('--account <id>', 'account id')
    .option('--endpoint <id>', 'endpoint id')
    .option('--status <s>', 'pending, succeeded or failed')
    .option('--limit <n>', 'page size', '50')
    .option('--before <cursor>', 'the nextCursor of the previous page')
    .action(async (o) =>
      print(
        await withWebhooks((svc) => svc.listDeliveries(defined({ accountId: o.account, endpointId: o.endpoint, status: o.status, limit: o.limit, before: o.before }))),
        !!o.json,
        (r: { deliveries: DeliveryView[]; nextCursor: string | null }) =>
          [r.deliveries.map(deliveryLine).join('\n') || '(no deliveries)', ...(r.nextCursor ? [`(more: --before ${r.nextCursor})`] : [])].join('\n'),
      ),
    );
  staffCommand(webhooks, 'redeliver', 'send a finished delivery again')
    .argument('<id>', 'delivery id')
    .action(async (id: string, o) => print(await withWebhooks((svc) => svc.redeliver({ id })), !!o.json, deliveryLine));
}
