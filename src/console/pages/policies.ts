import { csrfField, html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { ADMIN, back, body, type PageKit } from './kit';

/** Retention policies: the period of each category, and changing one. */
export function policiesPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/policies', ADMIN, async (req, res, s) => {
    const policies = await ops.retention.policies();
    send(
      res,
      s,
      req,
      'Retention policies',
      html`${table(['Category', 'Period', 'Unit', 'Action', 'Legal basis'], policies.map((p) => [html`${p.category}`, html`${String(p.period)}`, html`${p.unit}`, html`${p.action}`, html`${p.legalBasis}`]), 'Policies')}
<form method="post" action="/console/policies">${csrfField(s.csrf)}<fieldset><legend>Change a period</legend>
<label for="pcat">Category</label><select id="pcat" name="category">${policies.map((p) => html`<option value="${p.category}">${p.category}</option>`)}</select>
<label for="pper">Period</label><input id="pper" name="period" required inputmode="numeric">
<label for="preason">Reason</label><input id="preason" name="reason" required minlength="5"><div><button type="submit">Change</button></div></fieldset></form>`,
      '/console/policies',
    );
  });
  post(
    '/console/policies',
    ADMIN,
    async (req, res, s) => {
      const b = body(req);
      await ops.retention.setPolicy({ category: b.category, period: b.period, reason: b.reason }, s.actor);
      back(res, '/console/policies', 'policy_changed');
    },
    () => '/console/policies',
  );
}
