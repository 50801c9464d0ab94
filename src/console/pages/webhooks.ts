import { csrfField, html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { back, BILLING, param, type PageKit } from './kit';

/**
 * An account's webhook endpoints and delivery log (docs/webhooks.md): what
 * support needs to answer "did you send it?": status, attempts and the last
 * response code, never a body or a secret; and redelivery of a finished
 * delivery.
 */
export function webhooksPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/accounts/:id/webhooks', BILLING, async (req, res, s) => {
    const accountId = param(req, 'id');
    const endpoint = typeof req.query.endpoint === 'string' && req.query.endpoint ? req.query.endpoint : undefined;
    const status = typeof req.query.status === 'string' && req.query.status ? req.query.status : undefined;
    const before = typeof req.query.before === 'string' && req.query.before ? req.query.before : undefined;
    const endpoints = await ops.webhooks.listEndpoints({ accountId });
    const log = await ops.webhooks.listDeliveries({ accountId, limit: 50, ...(endpoint ? { endpointId: endpoint } : {}), ...(status ? { status } : {}), ...(before ? { before } : {}) });
    const urlOf = new Map(endpoints.map((e) => [e.id, e.url]));
    const next = new URLSearchParams({ ...(endpoint ? { endpoint } : {}), ...(status ? { status } : {}), ...(log.nextCursor ? { before: log.nextCursor } : {}) });
    send(
      res,
      s,
      req,
      'Webhooks',
      html`<p><a href="/console/accounts/${accountId}">Back to the account</a></p>
<section aria-labelledby="eps"><h2 id="eps">Endpoints</h2>
${table(
  ['URL', 'Events', 'Status', 'Failures in a row', 'Secret', 'Created', 'Log'],
  endpoints.map((e) => [
    html`${e.url}`,
    html`${e.events.join(', ')}`,
    html`${e.status}${e.disabledReason ? ` (${e.disabledReason}, ${e.disabledAt ?? ''})` : ''}`,
    html`${String(e.consecutiveFailures)}`,
    html`${e.secretPrefix}…`,
    html`${e.createdAt}`,
    html`<a href="/console/accounts/${accountId}/webhooks?endpoint=${e.id}">deliveries</a>`,
  ]),
  'Webhook endpoints',
)}</section>
<section aria-labelledby="log"><h2 id="log">Delivery log${endpoint ? ` of ${urlOf.get(endpoint) ?? endpoint}` : ''}</h2>
${table(
  ['Created', 'Event', 'Endpoint', 'Status', 'Attempts', 'Last code', 'Last error', 'Last attempt', 'Next attempt', 'Redelivered', ''],
  log.deliveries.map((d) => [
    html`${d.createdAt}`,
    html`${d.eventType}`,
    html`${urlOf.get(d.endpointId) ?? d.endpointId}`,
    html`${d.status}`,
    html`${String(d.attempts)}`,
    html`${d.lastResponseCode === null ? '—' : String(d.lastResponseCode)}`,
    html`${d.lastError ?? '—'}`,
    html`${d.lastAttemptAt ?? '—'}`,
    html`${d.nextAttemptAt ?? '—'}`,
    html`${String(d.redeliveries)}`,
    d.status === 'pending'
      ? html``
      : html`<form method="post" action="/console/accounts/${accountId}/webhooks/deliveries/${d.id}/redeliver">${csrfField(s.csrf)}<button type="submit">Redeliver</button></form>`,
  ]),
  'Webhook deliveries, newest first',
)}
${log.nextCursor ? html`<p><a href="/console/accounts/${accountId}/webhooks?${next.toString()}">Older deliveries</a></p>` : html``}</section>`,
      '/console/accounts',
    );
  });

  post(
    '/console/accounts/:id/webhooks/deliveries/:delivery/redeliver',
    BILLING,
    async (req, res) => {
      const accountId = param(req, 'id');
      await ops.webhooks.redeliver({ id: param(req, 'delivery'), accountId });
      back(res, `/console/accounts/${accountId}/webhooks`, 'webhook_redelivered');
    },
    (req) => `/console/accounts/${param(req, 'id')}/webhooks`,
  );
}
