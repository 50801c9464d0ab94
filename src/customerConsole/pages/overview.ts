import { html, table } from '../../console/html';
import { formatMoney, Money } from '../../shared/money.rules';
import type { ConsoleAlertsService } from '../alerts.service';
import type { CustomerConsoleService } from '../customerConsole.service';
import type { CustomerPageKit } from './kit';

/**
 * The overview: the session's account, its balance and spendable, spend this
 * month and last, the alerts in force, and daily spend by model (the staff
 * console's chart).
 */
export function overviewPages({ get, send }: CustomerPageKit, service: CustomerConsoleService, alerts?: ConsoleAlertsService): void {
  get('/app', async (req, res, s) => {
    const o = await service.overview(s);
    const a = alerts ? await alerts.inForce(s) : null;
    // People read amounts rounded to the currency's minor unit, with fixed digits ("86.40 USD").
    const money = (v: string) => formatMoney(new Money(v), o.currency);
    const digits = (v: string) => money(v).split(' ')[0]!;
    const days = [...new Set(o.daily.map((u) => u.day))];
    const models = [...new Set(o.daily.map((u) => u.model))];
    const chart = {
      labels: days,
      datasets: models.map((m) => ({ label: m || '(none)', data: days.map((d) => Number(o.daily.find((u) => u.day === d && u.model === m)?.cost ?? 0)) })),
    };
    send(
      res,
      s,
      req,
      'Overview',
      html`<div class="grid">
  <section aria-labelledby="acct"><h2 id="acct">${o.name}</h2>
    <p class="figure" id="balance">${money(o.balance)}</p>
    <p>Balance · spendable now: <span id="spendable">${digits(o.spendable)}</span> ${o.currency} · held for requests in flight: ${digits(o.held)}</p>
    <p class="muted">${o.plan} plan · ${o.status}</p></section>
  <section aria-labelledby="spend"><h2 id="spend">Spend</h2>
    <p>This month: <span id="spend-this-month">${digits(o.spendThisMonth)}</span> ${o.currency}</p>
    <p>Last month: <span id="spend-last-month">${digits(o.spendLastMonth)}</span> ${o.currency}</p>
    <p class="muted">Settled usage, by UTC month; a request shows up within a minute of its answer.</p></section>
${a
  ? html`<section aria-labelledby="alerts-h"><h2 id="alerts-h">Alerts in force</h2>
    <p id="alerts-low-balance">${a.lowBalanceThresholds.length ? html`Low balance: when it falls below ${a.lowBalanceThresholds.map((t) => digits(t)).join(', ')} ${o.currency}` : 'No low-balance alerts'}${a.lowBalanceThresholds.length ? (a.emailAlerts ? ', emailed to the billing address' : ', not emailed') : ''}</p>
    <p id="alerts-endpoints">Webhook endpoints active: ${String(a.activeEndpoints)}</p>
    <p><a href="/app/alerts">Alerts and webhooks</a></p></section>`
  : ''}
</div>
<section aria-labelledby="daily"><h2 id="daily">Daily spend by model, last 30 days</h2>
  <canvas id="spend-chart" role="img" aria-label="Spend per day and model" data-chart-unit="${o.currency}" data-chart="${JSON.stringify(chart)}"></canvas>
  ${table(['Day', 'Model', 'Requests', `Cost (${o.currency})`], o.daily.map((u) => [html`${u.day}`, html`${u.model || '(none)'}`, html`${String(u.requests)}`, html`${digits(u.cost)}`]), 'Spend by day and model')}
</section>`,
      '/app',
    );
  });
}
