import { html, raw, table } from '../../console/html';
import { csvLine } from '../../shared/csv.rules';
import { formatMoney, Money } from '../../shared/money.rules';
import { USAGE_MAX_DAYS, type UsageFilters, type UsageService } from '../usage.service';
import type { CustomerPageKit } from './kit';

/** The query string of the filters (and extra parameters), for links that keep them. */
const queryOf = (f: UsageFilters, extra: Record<string, string> = {}) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ from: f.from, to: f.to, key: f.key, model: f.model, ...extra })) if (v) p.set(k, v);
  return p.toString();
};

/**
 * Usage (area 'usage'): the account's usage by day, model and key over a
 * range with totals, spend by day in the staff console's chart, a CSV of the
 * same, and the request log (metadata only).
 */
export function usagePages({ get, send }: CustomerPageKit, usage: UsageService): void {
  get(
    '/app/usage',
    async (req, res, s) => {
      const u = await usage.page(s, req.query as Record<string, unknown>);
      const f = u.filters;
      const digits = (v: string) => formatMoney(new Money(v), u.currency).split(' ')[0]!;
      const chart = { labels: u.byDay.map((d) => d.day), datasets: [{ label: 'Spend', data: u.byDay.map((d) => Number(d.cost)) }] };
      const option = (value: string, label: string, selected: boolean) => html`<option value="${value}"${selected ? raw(' selected') : ''}>${label}</option>`;
      send(
        res,
        s,
        req,
        'Usage',
        html`<form method="get" action="/app/usage" class="filters" aria-label="Filter usage">
  <label>From <input type="date" name="from" value="${f.from}" required></label>
  <label>To <input type="date" name="to" value="${f.to}" required></label>
  <label>Model <select name="model">${option('', 'All models', !f.model)}${u.models.filter((m) => m !== '').map((m) => option(m, m, m === f.model))}</select></label>
  <label>Key <select name="key">${option('', 'All keys', !f.key)}${u.keys.map((k) => option(k.id, k.label, k.id === f.key))}</select></label>
  <button type="submit">Show</button>
  <a href="/app/usage.csv?${queryOf(f)}" download>Download CSV</a>
</form>
<p class="muted">UTC days, at most ${USAGE_MAX_DAYS} days at a time. Settled usage: a request shows up here within a minute of its answer.</p>
<section aria-labelledby="totals"><h2 id="totals">Totals, ${f.from} to ${f.to}</h2>
  <p>Requests: <span id="total-requests">${String(u.total?.requests ?? 0)}</span> · tokens in: <span id="total-tokens-in">${u.total?.tokensIn ?? '0'}</span> · tokens out: <span id="total-tokens-out">${u.total?.tokensOut ?? '0'}</span> · cost: <span id="total-cost">${digits(u.total?.cost ?? '0')}</span> ${u.currency}</p>
  <canvas id="spend-chart" role="img" aria-label="Spend per day" data-chart-unit="${u.currency}" data-chart="${JSON.stringify(chart)}"></canvas>
  <div id="by-day">${table(['Day', 'Requests', 'Tokens in', 'Tokens out', `Cost (${u.currency})`], u.byDay.map((d) => [html`${d.day}`, html`${String(d.requests)}`, html`${d.tokensIn}`, html`${d.tokensOut}`, html`${digits(d.cost)}`]), 'By day')}</div>
  <div id="by-model">${table(['Model', 'Requests', 'Tokens in', 'Tokens out', `Cost (${u.currency})`], u.byModel.map((d) => [html`${d.model || '(none)'}`, html`${String(d.requests)}`, html`${d.tokensIn}`, html`${d.tokensOut}`, html`${digits(d.cost)}`]), 'By model')}</div>
  <div id="by-key">${table(['Key', 'Requests', 'Tokens in', 'Tokens out', `Cost (${u.currency})`], u.byKey.map((d) => [html`${d.key}`, html`${String(d.requests)}`, html`${d.tokensIn}`, html`${d.tokensOut}`, html`${digits(d.cost)}`]), 'By key')}</div>
</section>
<section aria-labelledby="detail"><h2 id="detail">By day, model and key</h2>
  ${u.truncated ? html`<p class="muted">Only the first rows are shown; narrow the range or filter, or download the CSV.</p>` : ''}
  <div id="by-day-model-key">${table(
    ['Day', 'Model', 'Key', 'Requests', 'Tokens in', 'Tokens out', `Cost (${u.currency})`],
    u.rows.map((r) => [html`${r.day}`, html`${r.model || '(none)'}`, html`${r.key}`, html`${String(r.requests)}`, html`${r.tokensIn}`, html`${r.tokensOut}`, html`${digits(r.cost)}`]),
    'Usage by day, model and key',
  )}</div>
</section>
<section aria-labelledby="log"><h2 id="log">Request log</h2>
  <p id="no-content">MixRoute never stores prompts or completions, so there is no request or response content to show: the log holds only each request's time, id, model, key, status, tokens, cost and latency.</p>
  <form method="get" action="/app/usage" aria-label="Find a request">
    <input type="hidden" name="from" value="${f.from}"><input type="hidden" name="to" value="${f.to}">
    <label>Request id <input type="search" name="request" value="${f.request}" maxlength="100" placeholder="req-…"></label>
    <button type="submit">Find</button>${f.request ? html` <a href="/app/usage?${queryOf(f)}">Show all requests</a>` : ''}
  </form>
  ${f.request && !u.requests.length ? html`<p id="not-found" role="status">No request with id ${f.request} was found in this account.</p>` : ''}
  <div id="requests">${table(
    ['Time (UTC)', 'Request id', 'Model', 'Key', 'Status', 'Tokens in', 'Tokens out', 'Cost', 'Latency (ms)'],
    u.requests.map((r) => [
      html`${r.at}`,
      html`<code>${r.requestId}</code>`,
      html`${r.model || '(none)'}`,
      html`${r.key}`,
      html`${String(r.status)}`,
      html`${String(r.tokensIn)}`,
      html`${String(r.tokensOut)}`,
      html`${r.cost} ${r.currency}`,
      html`${String(r.latencyMs)}`,
    ]),
    'Latest requests, newest first',
  )}</div>
  ${u.nextBefore ? html`<p><a id="older" href="/app/usage?${queryOf(f, { before: u.nextBefore })}">Older requests</a></p>` : ''}
</section>`,
        '/app/usage',
      );
    },
    'usage',
  );

  get(
    '/app/usage.csv',
    async (req, res, s) => {
      const c = await usage.csvRows(s, req.query as Record<string, unknown>);
      const lines = [csvLine(['day', 'model', 'key_id', 'key_name', 'key_prefix', 'requests', 'tokens_in', 'tokens_out', 'cost', 'currency'])];
      for (const r of c.rows) lines.push(csvLine([r.day, r.model, r.keyId, r.keyName, r.keyPrefix, r.requests, r.tokensIn, r.tokensOut, r.cost, c.currency]));
      res.setHeader('cache-control', 'no-store');
      res.setHeader('content-disposition', `attachment; filename="usage-${c.filters.from}-${c.filters.to}.csv"`);
      res.type('text/csv').send(lines.join(''));
    },
    'usage',
  );
}
