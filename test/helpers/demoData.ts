import { createHash } from 'node:crypto';
import { accountsService } from '../../src/accounts/accounts.service';
import type { Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import { customerConsoleService } from '../../src/customerConsole/customerConsole.service';
import type { Db } from '../../src/db/knex';
import { invoiceQueries } from '../../src/invoicing/invoices.service';
import { invoiceAccountForPeriod } from '../../src/invoicing/invoicing.service';
import { invoicePayments } from '../../src/invoicing/payments.service';
import { recordTopUp } from '../../src/ledger/ledger.service';
import { settleAccountUsage } from '../../src/metering/metering.service';
import { accountEventsService } from '../../src/notifications/events.service';
import { emailHash } from '../../src/privacy/privacy.data';
import { CHECKS } from '../../src/reconciliation/reconciliation.rules';
import { reconciliationService } from '../../src/reconciliation/reconciliation.service';
import { retentionService } from '../../src/retention/retention.service';
import { Money, toAmountString } from '../../src/shared/money.rules';
import { webhooksService } from '../../src/webhooks/webhooks.service';
import { completeRegisterEntry } from './registerEntry';

/**
 * Demo data for the documentation's screenshots (test/e2e/screenshots.test.ts):
 * "Northwind Labs", a postpaid account with four members, five API keys (one
 * revoked, some with spend limits), about two months of requests over five
 * models of two providers (the last 30 days dense, with a weekday/weekend
 * rhythm), settled day by day into the ledger, three invoices (one paid, one
 * open, one voided by a credit note), alert thresholds, a webhook endpoint
 * with delivered and failed deliveries, and a completed access request; plus
 * four other accounts so the staff console's lists have rows.
 *
 * Deterministic: every number comes from a seeded generator and every time is
 * relative to `now`, so two runs on the same day draw the same pages. Bounded:
 * under 20 000 usage events, inserted in chunks, so it runs in seconds.
 *
 * Accounts, users, keys, models, top-ups, settlement, invoices, payments, the
 * void, alert settings, endpoints, holds and reconciliation go through the
 * project's services; usage events, delivery outcomes, DSR rows and the
 * back-dating of timestamps are direct writes, as the gateway, the webhook
 * dispatcher and the workflows would have left them.
 */

export const DEMO_PASSWORD = 'correct horse battery staple';
export const DEMO_ACCOUNT = 'Northwind Labs';
export const DEMO_OWNER_EMAIL = 'maya.lindqvist@northwind-labs.example';

const DAY = 86_400_000;
const MAX_EVENTS = 20_000;

/** mulberry32: a small seeded generator, so the screenshots are the same from run to run. */
function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    /** Roughly log-normal around `median`: token counts and latencies have long tails. */
    around: (median: number, spread = 0.6) => Math.max(1, Math.round(median * Math.exp(spread * (next() + next() + next() - 1.5) * 1.4))),
    pick: <T>(items: readonly (readonly [T, number])[]): T => {
      const total = items.reduce((s, [, w]) => s + w, 0);
      let r = next() * total;
      for (const [v, w] of items) if ((r -= w) < 0) return v;
      return items[items.length - 1]![0];
    },
  };
}
type Rng = ReturnType<typeof seeded>;

const dayStart = (t: number) => Math.floor(t / DAY) * DAY;
const isoDay = (t: number) => new Date(t).toISOString().slice(0, 10);
const periodOf = (d: Date) => d.toISOString().slice(0, 7);
/** The first instant of the month `back` months before `now`'s (UTC). */
const monthStart = (now: Date, back: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));

interface DemoModel {
  name: string;
  provider: string;
  inputPerMtok: string;
  outputPerMtok: string;
  /** Median tokens in and out, and median latency (ms). */
  tin: number;
  tout: number;
  latency: number;
}
const MODELS: DemoModel[] = [
  { name: 'gpt-4o', provider: 'openai', inputPerMtok: '2.5', outputPerMtok: '10', tin: 7400, tout: 900, latency: 2100 },
  { name: 'gpt-4o-mini', provider: 'openai', inputPerMtok: '0.15', outputPerMtok: '0.6', tin: 4200, tout: 520, latency: 900 },
  { name: 'text-embedding-3-small', provider: 'openai', inputPerMtok: '0.02', outputPerMtok: '0', tin: 2400, tout: 0, latency: 180 },
  { name: 'claude-sonnet-4', provider: 'anthropic', inputPerMtok: '3', outputPerMtok: '15', tin: 9600, tout: 1250, latency: 3400 },
  { name: 'claude-3-5-haiku', provider: 'anthropic', inputPerMtok: '0.8', outputPerMtok: '4', tin: 5200, tout: 640, latency: 1100 },
];

export interface DemoData {
  accountId: string;
  accountName: string;
  owner: { email: string; userId: string };
  users: { email: string; userId: string; role: string }[];
  keys: { id: string; name: string; revoked: boolean }[];
  endpointId: string;
  accessRequestId: string;
  invoices: { paid: string; open: string; voided: string; creditNote: string };
  otherAccounts: { id: string; name: string }[];
  events: number;
}

/** A usage event as the gateway's batcher writes it: metadata only. */
function usageRow(rng: Rng, a: { accountId: string; keyId: string; userId: string | null }, m: DemoModel & { priceId: string }, at: number) {
  const failed = rng.next() < 0.012;
  const status = failed ? rng.pick([[429, 3], [500, 1], [400, 2]] as const) : 200;
  const input = failed ? 0 : rng.around(m.tin);
  const cacheRead = failed || m.provider !== 'anthropic' || rng.next() < 0.6 ? 0 : Math.round(input * 0.4);
  const output = failed || m.tout === 0 ? 0 : rng.around(m.tout, 0.7);
  const cost = failed ? new Money(0) : new Money(input).mul(m.inputPerMtok).plus(new Money(cacheRead).mul(m.inputPerMtok).mul('0.1')).plus(new Money(output).mul(m.outputPerMtok)).div(1_000_000);
  const latency = failed ? rng.int(40, 400) : rng.around(m.latency, 0.5);
  const id = createHash('sha256').update(`${a.accountId}|${at}|${rng.next()}`).digest('hex').slice(0, 24);
  return {
    request_id: `req-${id}`,
    occurred_at: new Date(at),
    finished_at: new Date(at + latency),
    account_id: a.accountId,
    api_key_id: a.keyId,
    user_id: a.userId,
    endpoint: m.name.startsWith('text-embedding') ? 'embeddings' : m.provider === 'anthropic' ? 'messages' : 'chat.completions',
    model: m.name,
    provider: m.provider,
    upstream_model: m.name,
    price_id: m.priceId,
    status_code: status,
    error_type: failed ? (status === 429 ? 'rate_limited' : status === 500 ? 'upstream_error' : 'invalid_request') : null,
    stream: m.tout > 0 && rng.next() < 0.45,
    input_tokens: input,
    cache_read_tokens: cacheRead,
    output_tokens: output,
    cost: toAmountString(cost),
    currency: 'USD',
    latency_ms: latency,
    upstream_latency_ms: Math.max(1, latency - rng.int(5, 40)),
    gateway_instance: 'gw-eu-1',
  };
}

async function insertEvents(db: Db, rows: Record<string, unknown>[]) {
  for (const day of new Set(rows.map((r) => isoDay((r.occurred_at as Date).getTime())))) {
    await db.raw(`SELECT ensure_usage_events_partition(?::date)`, [day]);
  }
  for (let i = 0; i < rows.length; i += 1000) await db('usage_events').insert(rows.slice(i, i + 1000));
}

/**
 * Settles an account's events up to the end of each of `days` (UTC), so its
 * ledger holds one usage deduction per day given, dated at that day's end.
 */
async function settleByDay(db: Db, config: Config, accountId: string, days: number[], now: Date) {
  const overdraftAllowance = new Money(config.billing.overdraftAllowance);
  for (const d of days) {
    const end = Math.min(d + DAY, now.getTime());
    for (;;) {
      const r = await settleAccountUsage(db, accountId, { limit: 5_000, overdraftAllowance, before: new Date(end) });
      if (r.settlementKey) await backdate(db, 'ledger_entries', { idempotency_key: r.settlementKey }, new Date(Math.min(end - 60_000, now.getTime() - 60_000)));
      if (!r.more) break;
    }
  }
}

/**
 * Moves a row's creation time into the past. ledger_entries is append-only
 * by a statement trigger; in this demo database only, it is bypassed for the
 * one update (session_replication_role skips triggers for the transaction).
 */
async function backdate(db: Db, table: 'ledger_entries' | 'account_events', where: Record<string, unknown>, at: Date) {
  await db.transaction(async (trx) => {
    await trx.raw(`SET LOCAL session_replication_role = replica`);
    if (table === 'account_events') await trx(table).where(where).update({ occurred_at: at });
    else await trx(table).where(where).update({ created_at: at });
  });
}

/** Seeds the demo data into `db` (a database of the caller's own: invoicing and reconciliation see every account). */
export async function seedDemoData(db: Db, config: Config, now: Date = new Date()): Promise<DemoData> {
  const rng = seeded(20261205);
  const clock: Clock = { now: () => now };
  const ops = accountsService({ db, clock, config });
  const today = dayStart(now.getTime());

  // Providers and models, with prices from well before the data starts.
  await ops.addProvider({ name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeyEnv: 'PROVIDER_OPENAI_API_KEY' });
  await ops.addProvider({ name: 'anthropic', baseUrl: 'https://api.anthropic.com', apiKeyEnv: 'PROVIDER_ANTHROPIC_API_KEY' });
  const models: (DemoModel & { priceId: string })[] = [];
  for (const m of MODELS) {
    const added = await ops.addModel({ name: m.name, provider: m.provider, upstreamModel: m.name, inputPerMtok: m.inputPerMtok, outputPerMtok: m.outputPerMtok, effectiveFrom: '2025-01-01T00:00:00Z' });
    models.push({ ...m, priceId: added.price!.id as string });
  }
  await completeRegisterEntry(db, 'openai', { countries: ['US'] });
  await completeRegisterEntry(db, 'anthropic', { countries: ['US', 'IE'] });
  for (const [country, rate] of [['DE', '0.19'], ['FR', '0.20'], ['GB', '0.20']] as const) {
    await db.raw(`INSERT INTO tax_rates (country, rate, effective_from) VALUES (?, ?, '2020-01-01') ON CONFLICT DO NOTHING`, [country, rate]);
  }

  // Northwind Labs: postpaid, in Germany, with a VAT id.
  const account = await ops.createAccount({ name: DEMO_ACCOUNT, plan: 'postpaid', country: 'DE', vatId: 'DE298765432', billingEmail: 'accounts@northwind-labs.example', creditLimit: '5000' });
  const accountId = account.id as string;
  const members = [
    { name: 'Maya Lindqvist', email: DEMO_OWNER_EMAIL, role: 'owner', jobTitle: 'CTO' },
    { name: 'Jonas Weber', email: 'jonas.weber@northwind-labs.example', role: 'admin', jobTitle: 'Platform lead' },
    { name: 'Priya Raman', email: 'priya.raman@northwind-labs.example', role: 'developer', jobTitle: 'ML engineer' },
    { name: 'Tom Becker', email: 'tom.becker@northwind-labs.example', role: 'billing', jobTitle: 'Finance' },
  ] as const;
  const users: DemoData['users'] = [];
  for (const m of members) {
    const u = await ops.createUser({ accountId, name: m.name, email: m.email, jobTitle: m.jobTitle });
    await db('users').where({ id: u.id }).update({ console_role: m.role });
    await customerConsoleService({ db }).setPassword(u.id as string, DEMO_PASSWORD);
    users.push({ email: m.email, userId: u.id as string, role: m.role });
  }
  const owner = users[0]!;

  // Alert thresholds and a webhook endpoint first: the events below get their deliveries from it.
  await accountEventsService({ db }).setAlertSettings({ accountId, settings: { lowBalanceThresholds: ['500.00', '100.00'], emailAlerts: true } });
  const hooks = webhooksService({ db, clock, config });
  const endpoint = await hooks.registerEndpoint({
    accountId,
    url: 'https://hooks.northwind-labs.example/mixroute',
    events: ['invoice.finalized', 'invoice.paid', 'credit_note.created', 'topup.succeeded', 'balance.low', 'key.limit_threshold', 'key.limit_reached'],
  });
  const endpointId = endpoint.id as string;

  // Five keys: production, staging, a batch job, a developer's own, and a revoked one.
  const keySpecs = [
    { name: 'production-api', spendLimit: '2000', limitWindow: 'monthly', rateLimitRpm: 600, user: 1, weight: 55 },
    { name: 'staging', spendLimit: '25', limitWindow: 'daily', rateLimitRpm: 120, user: 1, weight: 10 },
    { name: 'nightly-embeddings', spendLimit: null, limitWindow: null, rateLimitRpm: null, user: 2, weight: 18 },
    { name: 'priya-notebook', spendLimit: '6', limitWindow: 'weekly', rateLimitRpm: 60, user: 2, weight: 9 },
    { name: 'legacy-backend', spendLimit: null, limitWindow: null, rateLimitRpm: null, user: 1, weight: 8 },
  ] as const;
  const keys: (DemoData['keys'][number] & { userId: string; weight: number })[] = [];
  for (const k of keySpecs) {
    const created = await ops.createKey({
      accountId,
      userId: users[k.user]!.userId,
      name: k.name,
      ...(k.spendLimit ? { spendLimit: k.spendLimit, limitWindow: k.limitWindow } : {}),
      ...(k.rateLimitRpm ? { rateLimitRpm: k.rateLimitRpm } : {}),
    });
    keys.push({ id: created.id as string, name: k.name, revoked: false, userId: users[k.user]!.userId, weight: k.weight });
  }

  // Usage: a three-day trial at the end of the month three back, thin traffic the month two back, then
  // 30 dense days up to now, weekdays busier than weekends and growing. The revoked key stops 12 days ago.
  const trialStart = monthStart(now, 2).getTime() - 3 * DAY;
  const firstDay = monthStart(now, 2).getTime();
  const denseFrom = today - 29 * DAY;
  const revokedAt = today - 12 * DAY;
  const events: Record<string, unknown>[] = [];
  const days: number[] = [];
  for (let d = dayStart(trialStart); d <= today; d += DAY) {
    days.push(d);
    const dow = new Date(d).getUTCDay();
    const weekend = dow === 0 || dow === 6;
    const trial = d < firstDay;
    const dense = d >= denseFrom;
    const growth = 1 + (d - denseFrom) / DAY / 90;
    let n = trial ? rng.int(15, 30) : Math.round((weekend ? 95 : 370) * (dense ? growth : 0.35) * (0.85 + rng.next() * 0.3));
    if (d === today) n = Math.round(n * ((now.getTime() - today) / DAY));
    for (let i = 0; i < n; i++) {
      // Office hours (UTC) weigh more on weekdays; the nightly job runs at 02:00.
      const key = trial ? keys[4]! : rng.pick(keys.filter((k) => d < revokedAt || k.name !== 'legacy-backend').map((k) => [k, k.weight] as const));
      const hour = key.name === 'nightly-embeddings' ? rng.int(2, 3) : weekend ? rng.int(0, 23) : rng.pick([...Array(24).keys()].map((h) => [h, h >= 7 && h <= 18 ? 5 : 1] as const));
      const at = d + hour * 3_600_000 + rng.int(0, 3_599_999);
      if (at >= now.getTime() - 120_000) continue;
      const model =
        key.name === 'nightly-embeddings'
          ? models[2]!
          : rng.pick([
              [models[0]!, 22],
              [models[1]!, 38],
              [models[3]!, 18],
              [models[4]!, 16],
              [models[2]!, 6],
            ] as const);
      events.push(usageRow(rng, { accountId, keyId: key.id, userId: key.userId }, model, at));
    }
  }

  // The other accounts: smaller, steadier traffic over the same two months.
  const others = [
    { name: 'Acme Robotics GmbH', plan: 'postpaid', country: 'DE', vatId: 'DE123456789', perDay: 9, model: 0 },
    { name: 'Blue Heron Health Inc.', plan: 'prepaid', country: 'US', vatId: undefined, perDay: 7, model: 3 },
    { name: 'Kestrel Maps Ltd', plan: 'postpaid', country: 'GB', vatId: 'GB123456789', perDay: 6, model: 1 },
    { name: 'Orbital Games SAS', plan: 'prepaid', country: 'FR', vatId: 'FR12345678901', perDay: 5, model: 4 },
  ] as const;
  const otherAccounts: { id: string; name: string; plan: string }[] = [];
  for (const o of others) {
    const slug = o.name.toLowerCase().replace(/[^a-z]+/g, '-').replace(/-$/, '');
    const a = await ops.createAccount({ name: o.name, plan: o.plan, country: o.country, ...(o.vatId ? { vatId: o.vatId } : {}), billingEmail: `billing@${slug}.example`, creditLimit: o.plan === 'postpaid' ? '2000' : '0' });
    const u = await ops.createUser({ accountId: a.id, name: `${o.name.split(' ')[0]} Admin`, email: `admin@${slug}.example` });
    const key = await ops.createKey({ accountId: a.id, userId: u.id, name: 'production' });
    otherAccounts.push({ id: a.id as string, name: o.name, plan: o.plan });
    if (o.plan === 'prepaid') {
      await recordTopUp(db, { paymentId: `pi_demo_${slug}`, provider: 'manual', accountId: a.id as string, amount: '500.00', currency: 'USD', kind: 'topup', actor: 'staff:demo' }, { overdraftAllowance: new Money(0) });
    }
    for (let d = firstDay; d <= today; d += DAY) {
      const n = Math.round(o.perDay * (0.7 + rng.next() * 0.6));
      for (let i = 0; i < n; i++) {
        const at = d + rng.int(6, 20) * 3_600_000 + rng.int(0, 3_599_999);
        if (at < now.getTime() - 120_000) events.push(usageRow(rng, { accountId: a.id as string, keyId: key.id as string, userId: u.id as string }, models[rng.next() < 0.7 ? o.model : 1]!, at));
      }
    }
  }
  if (events.length > MAX_EVENTS) throw new Error(`demo data would have ${events.length} usage events; keep it under ${MAX_EVENTS}`);
  await insertEvents(db, events);

  // Money in: a welcome grant and a card top-up for Northwind before its first month.
  const grant = await recordTopUp(db, { paymentId: 'welcome-credit', provider: 'manual', accountId, amount: '100.00', currency: 'USD', kind: 'grant', actor: 'staff:demo' }, { overdraftAllowance: new Money(0) });
  await backdate(db, 'ledger_entries', { id: grant.entryId }, new Date(trialStart - 3_600_000));
  const topUp = await recordTopUp(db, { paymentId: 'pi_3Qdemo0northwind1', provider: 'manual', accountId, amount: '500.00', currency: 'USD', kind: 'topup', actor: 'customer:demo' }, { overdraftAllowance: new Money(0) });
  await backdate(db, 'ledger_entries', { id: topUp.entryId }, new Date(firstDay + 2 * DAY + 10 * 3_600_000));

  // Northwind's ledger shows a deduction a day for the last 30 days and a week at a time before;
  // the other accounts' ledgers are not shown, so they settle in one go.
  await settleByDay(db, config, accountId, days.filter((d) => d >= denseFrom || (d - days[0]!) % (7 * DAY) === 0), now);
  for (const o of otherAccounts) await settleByDay(db, config, o.id, [today], now);
  // The trial's key first, the others when the account went live.
  for (const [i, k] of keys.entries()) await db('api_keys').where({ id: k.id }).update({ created_at: new Date(i === 4 ? trialStart - 2 * 3_600_000 : firstDay - (4 - i) * 3_600_000 * 7) });
  await ops.revokeKey({ id: keys[4]!.id });
  await db('api_keys').where({ id: keys[4]!.id }).update({ revoked_at: new Date(revokedAt) });
  keys[4]!.revoked = true;
  await db('webhook_endpoints').where({ id: endpointId }).update({ created_at: new Date(trialStart - 3_600_000) });

  // Invoices of Northwind: the trial month (voided by a credit note: the trial was free), last month
  // but one (paid by bank transfer) and last month (open).
  const trialPeriod = periodOf(monthStart(now, 3));
  const paidPeriod = periodOf(monthStart(now, 2));
  const openPeriod = periodOf(monthStart(now, 1));
  const cfg = { invoicing: config.invoicing, overdraftAllowance: new Money(config.billing.overdraftAllowance) };
  const invoiceFor = async (period: string, issuedAt: Date) => {
    const r = await invoiceAccountForPeriod(db, { accountId, period, dryRun: false, now: issuedAt }, cfg);
    if (r.status !== 'invoiced') throw new Error(`demo invoice for ${period}: ${JSON.stringify(r)}`);
    return r.invoiceId;
  };
  const voided = await invoiceFor(trialPeriod, new Date(monthStart(now, 2).getTime() + 6 * 3_600_000));
  const voidedAt = new Date(monthStart(now, 2).getTime() + 3 * DAY + 9 * 3_600_000);
  const cn = await invoiceQueries({ db, clock: { now: () => voidedAt }, config }).void({ id: voided, reason: 'trial month is free of charge' }, 'staff:billie');
  const paid = await invoiceFor(paidPeriod, new Date(monthStart(now, 1).getTime() + 6 * 3_600_000));
  const paidInvoice = await db('invoices').where({ id: paid }).first('amount_due', 'due_date');
  const paidOn = isoDay(Math.min(monthStart(now, 1).getTime() + 9 * DAY, today));
  await invoicePayments({ db, clock }).recordPayment(paid, { amount: toAmountString(new Money(paidInvoice.amount_due)), paidOn, reference: 'NWL-TRF-0042' }, 'staff:billie');
  const transfer = await db('ledger_entries').where({ account_id: accountId, kind: 'adjustment' }).first('id');
  if (transfer) await backdate(db, 'ledger_entries', { id: transfer.id }, new Date(`${paidOn}T11:20:00Z`));
  const open = await invoiceFor(openPeriod, new Date(monthStart(now, 0).getTime() + 6 * 3_600_000));

  // Other accounts' invoices of last month but one: Acme's stays unpaid (receivables), Kestrel's is paid.
  for (const o of otherAccounts.filter((x) => x.plan === 'postpaid')) {
    const r = await invoiceAccountForPeriod(db, { accountId: o.id, period: paidPeriod, dryRun: false, now: new Date(monthStart(now, 1).getTime() + 6 * 3_600_000) }, cfg);
    if (r.status === 'invoiced' && o.name.startsWith('Kestrel')) {
      const inv = await db('invoices').where({ id: r.invoiceId }).first('amount_due');
      await invoicePayments({ db, clock }).recordPayment(r.invoiceId, { amount: toAmountString(new Money(inv.amount_due)), paidOn, reference: 'KM-2231' }, 'staff:billie');
    }
  }

  // Events happened when their cause did, not when this seeder ran; their deliveries went out then, most succeeded.
  const evs = (await db('account_events').where({ account_id: accountId }).orderBy('occurred_at').select('id', 'type', 'data')) as { id: string; type: string; data: Record<string, unknown> }[];
  const issued = new Map<string, Date>();
  for (const inv of (await db('invoices').where({ account_id: accountId }).select('id', 'issued_at')) as { id: string; issued_at: Date }[]) issued.set(inv.id, new Date(inv.issued_at));
  let fallback = denseFrom;
  for (const [i, e] of evs.entries()) {
    const ref = (e.data.creditNoteId ?? e.data.invoiceId) as string | undefined;
    const at = e.type === 'topup.succeeded' ? firstDay + 2 * DAY + 10 * 3_600_000 : e.type === 'invoice.paid' ? Date.parse(`${paidOn}T11:20:00Z`) : ref && issued.has(ref) ? issued.get(ref)!.getTime() : (fallback += 3 * DAY);
    await backdate(db, 'account_events', { id: e.id }, new Date(Math.min(at, now.getTime() - 3_600_000)));
    const failedDelivery = i % 4 === 2;
    await db('webhook_deliveries')
      .where({ event_id: e.id })
      .update({
        status: failedDelivery ? 'failed' : 'succeeded',
        attempts: failedDelivery ? 8 : 1,
        last_response_code: failedDelivery ? 503 : 200,
        last_error: failedDelivery ? 'receiver answered 503 Service Unavailable' : null,
        last_attempt_at: new Date(Math.min(at + (failedDelivery ? 6 * 3_600_000 : 900), now.getTime() - 60_000)),
        started_at: new Date(Math.min(at, now.getTime() - 3_600_000)),
        created_at: new Date(Math.min(at, now.getTime() - 3_600_000)),
      });
  }

  // Rights requests: the owner's access request (filed in the console, completed), and a queue for compliance.
  const dsr = async (row: { type: string; email: string; status: string; receivedDaysAgo: number; accountId?: string; createdBy: string; userIds?: string[]; closed?: boolean; extended?: boolean }) => {
    const received = new Date(now.getTime() - row.receivedDaysAgo * DAY);
    const due = new Date(received.getTime() + (row.extended ? 90 : 30) * DAY);
    const [r] = (await db('dsr_requests')
      .insert({
        type: row.type,
        status: row.status,
        channel: row.createdBy.startsWith('console:') ? 'subject' : 'staff',
        subject_email: row.email,
        subject_email_hash: emailHash(row.email),
        user_ids: row.userIds ?? [],
        account_id: row.accountId ?? null,
        jurisdiction: 'gdpr',
        received_at: received,
        due_date: isoDay(due.getTime()),
        due_at: due,
        ack_due_at: new Date(received.getTime() + 3 * DAY),
        extension_notice_by: new Date(received.getTime() + 30 * DAY),
        extended: row.extended ?? false,
        extension_reason: row.extended ? 'complex request spanning several systems' : null,
        verified_at: row.status === 'received' || row.status === 'verifying' ? null : new Date(received.getTime() + 3_600_000),
        verification_method: row.status === 'received' || row.status === 'verifying' ? null : row.createdBy.startsWith('console:') ? 'console_sign_in' : 'email_code',
        overdue: due < now && !row.closed,
        closed_at: row.closed ? new Date(received.getTime() + 2 * 3_600_000) : null,
        created_by: row.createdBy,
      })
      .returning('id')) as { id: string }[];
    const steps = ['received', ...(row.status === 'received' ? [] : row.status === 'verifying' ? ['verification_sent'] : ['identity_verified']), ...(row.closed ? ['export_ready', 'closed'] : [])];
    for (const [i, action] of steps.entries()) {
      await db('dsr_events').insert({ request_id: r!.id, actor: i === 0 ? row.createdBy : 'system:dsr', action, detail: JSON.stringify(action === 'received' ? { type: row.type, channel: row.createdBy.startsWith('console:') ? 'console' : 'staff', jurisdiction: 'gdpr' } : {}), idempotency_key: action, at: new Date(received.getTime() + i * 40 * 60_000) });
    }
    return r!.id;
  };
  const accessRequestId = await dsr({ type: 'access', email: owner.email, status: 'completed', receivedDaysAgo: 9, accountId, createdBy: `console:user:${owner.userId}`, userIds: [owner.userId], closed: true });
  await dsr({ type: 'deletion', email: 'former.contractor@example.com', status: 'verifying', receivedDaysAgo: 4, createdBy: 'staff:cora' });
  await dsr({ type: 'correction', email: users[2]!.email, status: 'in_progress', receivedDaysAgo: 12, accountId, createdBy: 'staff:cora', userIds: [users[2]!.userId] });
  await dsr({ type: 'access', email: 'j.doe@example.org', status: 'in_progress', receivedDaysAgo: 36, createdBy: 'staff:cora' });
  await dsr({ type: 'objection', email: 'r.smith@example.net', status: 'received', receivedDaysAgo: 25, createdBy: 'staff:cora', extended: true });

  // A legal hold and a reconciliation report of last month, made the way staff make them.
  await retentionService({ db, clock, config }).addHold({ accountId: otherAccounts[0]!.id, reason: 'tax audit 2025' }, 'staff:cora');
  const recon = reconciliationService({ db, clock, billing: config.billing, reconcile: config.reconcile });
  const reportId = createHash('sha256').update(`recon|${openPeriod}`).digest('hex').replace(/^(.{8})(.{4})(.{3})(.{3})(.{12}).*$/, '$1-$2-4$3-8$4-$5');
  await recon.openReport({ reportId, workflowId: `reconcile-period-${openPeriod}`, scope: 'period', label: openPeriod, requestedBy: 'staff:billie' });
  for (const check of CHECKS) await recon.runCheck({ reportId, check });
  await recon.closeReport({ reportId });

  return {
    accountId,
    accountName: DEMO_ACCOUNT,
    owner: { email: owner.email, userId: owner.userId },
    users,
    keys: keys.map(({ id, name, revoked }) => ({ id, name, revoked })),
    endpointId,
    accessRequestId,
    invoices: { paid, open, voided, creditNote: cn.creditNoteId as string },
    otherAccounts: otherAccounts.map(({ id, name }) => ({ id, name })),
    events: events.length,
  };
}
