import { csrfField, html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { back, body, COMPLIANCE, param, type PageKit } from './kit';

/** Retention runs (and starting one now) and legal holds (placing and releasing). */
export function retentionPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/retention', COMPLIANCE, async (req, res, s) => {
    const runs = await ops.retention.listRuns({ limit: 10 });
    const holds = await ops.retention.holds({});
    send(
      res,
      s,
      req,
      'Retention runs and legal holds',
      html`<form method="post" action="/console/retention/run">${csrfField(s.csrf)}<button type="submit">Run expiry now</button></form>
${runs.map((r) =>
  table(
    ['Category', 'Cutoff', 'Expired rows', 'Day partitions', 'Kept: hold', 'Kept: unbilled', 'Note'],
    r.categories.map((c) => [html`${c.category}`, html`${c.cutoff.slice(0, 10)}`, html`${String(c.expiredRows)}`, html`${String(c.expiredPartitions)}`, html`${String(c.keptHold)}`, html`${String(c.keptUnbilled)}`, html`${c.note ?? ''}`]),
    `Run ${r.id.slice(0, 8)} (${r.status}, ${r.startedAt}, by ${r.requestedBy})`,
  ),
)}
<form method="post" action="/console/legal-holds">${csrfField(s.csrf)}<fieldset><legend>Place a legal hold</legend>
<label for="account">Account id</label><input id="account" name="accountId" required>
<label for="hreason">Reason</label><input id="hreason" name="reason" required minlength="5"><div><button type="submit">Place hold</button></div></fieldset></form>
${table(
  ['Account', 'Reason', 'Placed', 'Released', 'Release'],
  holds.map((h) => [
    html`${h.accountId}`,
    html`${h.reason}`,
    html`${h.createdAt} by ${h.createdBy}`,
    html`${h.releasedAt ? `${h.releasedAt} by ${h.releasedBy}: ${h.releaseReason}` : 'in force'}`,
    h.releasedAt
      ? html``
      : html`<form method="post" action="/console/legal-holds/${h.id}/release" class="inline">${csrfField(s.csrf)}<label for="r-${h.id}">Reason</label><input id="r-${h.id}" name="reason" required minlength="5"> <button type="submit" class="secondary">Release</button></form>`,
  ]),
  'Legal holds',
)}`,
      '/console/retention',
    );
  });
  post(
    '/console/retention/run',
    COMPLIANCE,
    async (_req, res, s) => {
      await ops.retention.run(s.actor);
      back(res, '/console/retention', 'expiry_started');
    },
    () => '/console/retention',
  );
  post(
    '/console/legal-holds',
    COMPLIANCE,
    async (req, res, s) => {
      await ops.retention.addHold({ accountId: body(req).accountId, reason: body(req).reason }, s.actor);
      back(res, '/console/retention', 'hold_placed');
    },
    () => '/console/retention',
  );
  post(
    '/console/legal-holds/:id/release',
    COMPLIANCE,
    async (req, res, s) => {
      await ops.retention.releaseHold(param(req, 'id'), { reason: body(req).reason }, s.actor);
      back(res, '/console/retention', 'hold_released');
    },
    () => '/console/retention',
  );
}
