import type { Request } from 'express';
import { csrfField, html, table } from '../../console/html';
import { ValidationError } from '../../errors';
import { MAX_LOW_BALANCE_THRESHOLDS } from '../../notifications/events.rules';
import { MAX_ENDPOINTS_PER_ACCOUNT, MAX_URL_LENGTH, WEBHOOK_EVENT_TYPES } from '../../webhooks/webhooks.rules';
import { ALERTS_DELIVERIES_SHOWN, ALERTS_EVENTS_SHOWN, type ConsoleAlertsService } from '../alerts.service';
import { back, body, type CustomerPageKit } from './kit';

const param = (req: Request, name = 'id') => String(req.params[name] ?? '').slice(0, 64);

function tooLong(name: string): never {
  throw new ValidationError(`invalid input: ${name}: too long`, [{ field: name, message: 'too long' }]);
}

/** The thresholds field: amounts separated by commas or spaces; the service checks each and their number. */
function thresholdsOf(b: Record<string, unknown>): string[] {
  const v = b.low_balance_thresholds;
  if (v === undefined || v === '') return [];
  if (typeof v !== 'string') throw new ValidationError('invalid input: low_balance_thresholds: give it once', [{ field: 'low_balance_thresholds', message: 'give it once' }]);
  if (v.length > 400) tooLong('low_balance_thresholds');
  return v.split(/[\s,;]+/).filter((t) => t !== '');
}

/** The checked event types (one value or several); the webhook service checks each against its list. */
function eventsOf(b: Record<string, unknown>): string[] {
  const v = b.events;
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  if (list.length > WEBHOOK_EVENT_TYPES.length * 2 || list.some((e) => typeof e !== 'string' || e.length > 64)) tooLong('events');
  return list as string[];
}

function urlOf(b: Record<string, unknown>): string {
  const v = b.url;
  if (typeof v !== 'string') throw new ValidationError('invalid input: url: give one URL', [{ field: 'url', message: 'give one URL' }]);
  if (v.length > MAX_URL_LENGTH + 64) tooLong('url');
  return v;
}

/**
 * Alerts and webhooks (area 'alerts'): the account's low-balance thresholds
 * and alert emails, its latest events, and its webhook endpoints (add one,
 * its signing secret shown once in the answer to the POST; each endpoint's
 * delivery log; disable, enable, delete, redeliver). The rules are the
 * services' (src/notifications/events.service.ts,
 * src/webhooks/webhooks.service.ts), as for /v1/alerts and /v1/webhooks.
 */
export function alertsPages({ get, post, send }: CustomerPageKit, alerts: ConsoleAlertsService): void {
  get(
    '/app/alerts',
    async (req, res, s) => {
      const p = await alerts.page(s);
      send(
        res,
        s,
        req,
        'Alerts and webhooks',
        html`<section aria-labelledby="settings-h"><h2 id="settings-h">Balance alerts</h2>
<p>An event is recorded when the balance falls below one of these amounts (in the account's currency), when it is used up and when it recovers. With alert emails on, each event is also emailed to the billing address.</p>
<form method="post" action="/app/alerts/settings">${csrfField(s.csrf)}
<label for="low_balance_thresholds">Low-balance thresholds (up to ${String(MAX_LOW_BALANCE_THRESHOLDS)} amounts, separated by commas, such as 50.00, 10.00; empty for none)</label>
<input id="low_balance_thresholds" name="low_balance_thresholds" maxlength="400" value="${p.settings.lowBalanceThresholds.join(', ')}">
<label><input type="checkbox" name="email_alerts" value="on"${p.settings.emailAlerts ? html` checked` : ''}> Email alerts to the billing address</label>
<div><button type="submit">Save alert settings</button></div></form></section>
<section aria-labelledby="events-h"><h2 id="events-h">Recent events</h2>
<div id="events">${table(
          ['Time (UTC)', 'Event', 'Summary'],
          p.events.map((e) => [html`${e.occurredAt}`, html`<code>${e.type}</code>`, html`${e.summary}`]),
          `The latest ${String(ALERTS_EVENTS_SHOWN)} events, newest first`,
        )}</div></section>
<section aria-labelledby="webhooks-h"><h2 id="webhooks-h">Webhook endpoints</h2>
<div id="endpoints">${table(
          ['URL', 'Events', 'Status', 'Created', ''],
          p.endpoints.map((e) => [
            html`<code>${e.url}</code>`,
            html`${e.events.join(', ')}`,
            html`${e.status}${e.disabledReason ? ` (${e.disabledReason})` : ''}`,
            html`${e.createdAt}`,
            html`<a href="/app/alerts/webhooks/${e.id}">Deliveries and actions</a>`,
          ]),
          `Endpoints of this account (at most ${String(MAX_ENDPOINTS_PER_ACCOUNT)})`,
        )}</div>
<h3 id="new-endpoint-h">Add an endpoint</h3>
<p>MixRoute signs each delivery with the endpoint's secret (Standard Webhooks headers). The secret is shown once, on the page that follows.</p>
<form method="post" action="/app/alerts/webhooks" aria-labelledby="new-endpoint-h">${csrfField(s.csrf)}
<label for="url">URL (https, public address)</label><input id="url" name="url" type="url" required maxlength="${String(MAX_URL_LENGTH)}">
<fieldset><legend>Events</legend>${WEBHOOK_EVENT_TYPES.map((t) => html`<label><input type="checkbox" name="events" value="${t}"> <code>${t}</code></label> `)}</fieldset>
<div><button type="submit">Add endpoint</button></div></form></section>`,
        '/app/alerts',
      );
    },
    'alerts',
  );

  post(
    '/app/alerts/settings',
    async (req, res, s) => {
      const b = body(req);
      await alerts.setSettings(s, { lowBalanceThresholds: thresholdsOf(b), emailAlerts: b.email_alerts === 'on' });
      back(res, '/app/alerts', 'alerts_settings_saved');
    },
    'alerts',
  );

  // Answers with a page, not a redirect: the secret is in this response only, never in a URL or a later page.
  post(
    '/app/alerts/webhooks',
    async (req, res, s) => {
      const b = body(req);
      const created = await alerts.addEndpoint(s, { url: urlOf(b), events: eventsOf(b) });
      send(
        res,
        s,
        req,
        'Webhook endpoint added',
        html`<p role="status">Copy the signing secret now: it is shown this once.</p>
<p><code id="new-secret">${created.secret}</code></p>
<p class="muted"><code>${created.url}</code> · ${created.events.join(', ')}</p>
<p><a href="/app/alerts">Back to alerts and webhooks</a></p>`,
        '/app/alerts',
      );
    },
    'alerts',
  );

  get(
    '/app/alerts/webhooks/:id',
    async (req, res, s) => {
      const { endpoint: e, deliveries } = await alerts.endpoint(s, param(req));
      send(
        res,
        s,
        req,
        'Webhook endpoint',
        html`<p><code>${e.url}</code> · ${e.status}${e.disabledReason ? ` (${e.disabledReason})` : ''} · created ${e.createdAt} · secret <code>${e.secretPrefix}…</code></p>
<p>Events: ${e.events.join(', ')}</p>
<form method="post" action="/app/alerts/webhooks/${e.id}/${e.status === 'active' ? 'disable' : 'enable'}">${csrfField(s.csrf)}
<button type="submit">${e.status === 'active' ? 'Disable this endpoint' : 'Enable this endpoint'}</button></form>
<form method="post" action="/app/alerts/webhooks/${e.id}/delete">${csrfField(s.csrf)}
<button type="submit">Delete this endpoint and its delivery log</button></form>
<section aria-labelledby="deliveries-h"><h2 id="deliveries-h">Deliveries</h2>
<div id="deliveries">${table(
          ['Created (UTC)', 'Event', 'Status', 'Attempts', 'Last response', 'Last attempt', ''],
          deliveries.map((d) => [
            html`${d.createdAt}`,
            html`<code>${d.eventType}</code>`,
            html`${d.status}`,
            html`${String(d.attempts)}`,
            html`${d.lastResponseCode === null ? (d.lastError ?? '') : String(d.lastResponseCode)}`,
            html`${d.lastAttemptAt ?? ''}`,
            d.status === 'pending'
              ? html``
              : html`<form method="post" action="/app/alerts/deliveries/${d.id}/redeliver">${csrfField(s.csrf)}<button type="submit">Send again</button></form>`,
          ]),
          `The latest ${String(ALERTS_DELIVERIES_SHOWN)} deliveries, newest first`,
        )}</div></section>
<p><a href="/app/alerts">Back to alerts and webhooks</a></p>`,
        '/app/alerts',
      );
    },
    'alerts',
  );

  post(
    '/app/alerts/webhooks/:id/disable',
    async (req, res, s) => {
      const e = await alerts.disable(s, param(req));
      back(res, `/app/alerts/webhooks/${e.id}`, 'alerts_endpoint_disabled');
    },
    'alerts',
  );
  post(
    '/app/alerts/webhooks/:id/enable',
    async (req, res, s) => {
      const e = await alerts.enable(s, param(req));
      back(res, `/app/alerts/webhooks/${e.id}`, 'alerts_endpoint_enabled');
    },
    'alerts',
  );
  post(
    '/app/alerts/webhooks/:id/delete',
    async (req, res, s) => {
      await alerts.remove(s, param(req));
      back(res, '/app/alerts', 'alerts_endpoint_deleted');
    },
    'alerts',
  );
  post(
    '/app/alerts/deliveries/:id/redeliver',
    async (req, res, s) => {
      const d = await alerts.redeliver(s, param(req));
      back(res, `/app/alerts/webhooks/${d.endpointId}`, 'alerts_redelivered');
    },
    'alerts',
  );
}
