import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { runCli, runCliJson } from '../helpers/cli';
import { testEnv } from '../helpers/env';
import { paymentWebhookStack } from '../helpers/paymentWebhook';
import { withTestWorker } from '../helpers/worker';
import { staffService } from '../../src/staff/staff.service';

const SECRET = 'whsec_test_secret_for_mixroute';
const webhook = paymentWebhookStack(SECRET);
const { config, db, ops, sign } = webhook;
let billingToken: string;

beforeAll(async () => {
  billingToken = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
});

function paymentEvent(accountId: string, paymentId: string, cents: number) {
  return JSON.stringify({
    id: `evt_${randomUUID()}`,
    object: 'event',
    type: 'payment_intent.succeeded',
    data: { object: { id: paymentId, object: 'payment_intent', amount_received: cents, currency: 'usd', metadata: { account_id: accountId } } },
  });
}
const deliver = (payload: string, signature?: string) =>
  fetch(`${webhook.url}/webhooks/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) },
    body: payload,
  });

describe('payment webhook', () => {
  it('credits a payment delivered ten times exactly once', async () => {
    const account = await ops.createAccount({ name: 'Webhook Co' });
    const paymentId = `pi_${randomUUID().replace(/-/g, '')}`;
    const payload = paymentEvent(account.id, paymentId, 1050);
    await withTestWorker(config, db, async () => {
      const responses = await Promise.all(Array.from({ length: 10 }, () => deliver(payload, sign(payload))));
      for (const r of responses) expect(r.status).toBe(200);
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as { applied?: boolean; workflowId: string }[];
      expect(new Set(bodies.map((b) => b.workflowId))).toEqual(new Set([`topup:stripe:${paymentId}`]));
      // Only the delivery that started the workflow reports that it credited.
      expect(bodies.filter((b) => b.applied === true)).toHaveLength(1);
    });
    expect(await db('payments').where({ provider_payment_id: paymentId }).select('amount')).toHaveLength(1);
    const entries = await db('ledger_entries').where({ account_id: account.id });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ kind: 'topup', contra: 'cash', actor: 'webhook:stripe', reference_type: 'payment' });
    expect(new Money(entries[0].amount).eq('10.5')).toBe(true);
    const b = await db('account_balances').where({ account_id: account.id }).first();
    expect(new Money(b.balance).eq('10.5')).toBe(true);
  });

  it('rejects unsigned, badly signed, stale and malformed deliveries with 400 and records each', async () => {
    const account = await ops.createAccount({ name: 'Attack Co' });
    const payload = paymentEvent(account.id, `pi_${randomUUID().replace(/-/g, '')}`, 999);
    const cases: [string, Promise<Response>][] = [
      ['unsigned', deliver(payload)],
      ['bad_signature', deliver(payload, sign(payload, { secret: 'whsec_wrong' }))],
      ['bad_signature', deliver(payload.replace('999', '99900'), sign(payload))],
      ['stale', deliver(payload, sign(payload, { timestamp: Math.floor(Date.now() / 1000) - 3600 }))],
    ];
    const malformed = JSON.stringify({ id: 'evt_x', object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_x', amount_received: 100, currency: 'usd', metadata: {} } } });
    cases.push(['malformed', deliver(malformed, sign(malformed))]);
    for (const [reason, pending] of cases) {
      const res = await pending;
      expect(res.status, reason).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const requestId = res.headers.get('x-request-id');
      const event = await db('security_events').where({ request_id: requestId }).first();
      expect(event, reason).toMatchObject({ kind: 'webhook_rejected', reason, source: 'admin' });
    }
    expect(await db('ledger_entries').where({ account_id: account.id })).toHaveLength(0);
  });

  it('acknowledges other event types without crediting', async () => {
    // charge.refunded and charge.dispute.* are handled: test/security/payment-reversals.test.ts.
    const payload = JSON.stringify({ id: 'evt_y', object: 'event', type: 'customer.created', data: { object: { id: 'cus_1' } } });
    const res = await deliver(payload, sign(payload));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ignored: 'customer.created' });
  });
});

describe('staff credit operations', () => {
  it('top-up, grant, refund, adjustment and reversal from the CLI and the admin API, audited, each once per reference', async () => {
    const env = testEnv(config);
    const account = await ops.createAccount({ name: 'Staff Credit Co' });
    await withTestWorker(config, db, async () => {
      const first = await runCliJson(['topups', 'create', '--account', account.id, '--amount', '20.00', '--reference', `INV-${account.id}`], env);
      expect(first).toMatchObject({ applied: true, workflowId: `topup:manual:INV-${account.id}` });
      const again = await runCliJson(['topups', 'create', '--account', account.id, '--amount', '20.00', '--reference', `INV-${account.id}`], env);
      expect(again).toMatchObject({ applied: false, entryId: first.entryId });

      const api = (path: string, body: unknown) =>
        fetch(`${webhook.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${billingToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const grant = await api('/billing/topups', { accountId: account.id, amount: '5', reference: `PROMO-${account.id}`, kind: 'grant' });
      expect(grant.status).toBe(201);
      expect(await grant.json()).toMatchObject({ applied: true });
    });

    const noReason = await runCli(['refunds', 'create', '--account', account.id, '--amount', '3', '--reference', 'R-1', '--reason', 'x'], env);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('reason must say why');

    const refund = await runCliJson(['refunds', 'create', '--account', account.id, '--amount', '3', '--reference', `R-${account.id}`, '--reason', 'customer asked'], env);
    expect(refund.entry).toMatchObject({ kind: 'refund', amount: '-3', reason: 'customer asked' });
    expect(refund.entry.actor).toMatch(/^cli:/);

    const tooMuch = await runCli(['refunds', 'create', '--account', account.id, '--amount', '500', '--reference', `R2-${account.id}`, '--reason', 'mistake test'], env);
    expect(tooMuch.code).toBe(1);
    expect(tooMuch.stderr).toMatch(/cannot cover/);

    const adjust = await fetch(`${webhook.url}/billing/adjustments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${billingToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ accountId: account.id, amount: '-1.25', reference: `ADJ-${account.id}`, reason: 'goodwill reversal' }),
    });
    expect(adjust.status).toBe(201);
    const adjusted = (await adjust.json()) as { entry: { id: number; actor: string } };
    expect(adjusted.entry.actor).toMatch(/^staff:/);

    const reversed = await runCliJson(['ledger', 'reverse', String(adjusted.entry.id), '--reason', 'posted by mistake'], env);
    expect(reversed.entry).toMatchObject({ kind: 'reversal', amount: '1.25', reversesEntryId: adjusted.entry.id });

    const balance = await runCliJson(['balance', '--account', account.id, '--limit', '2'], env);
    // 20 + 5 - 3 - 1.25 + 1.25
    expect(balance).toMatchObject({ balance: '22', balanceRounded: '22.00', held: '0', spendable: '22', pendingUsage: { events: 0, cost: '0' } });
    expect(balance.entries).toHaveLength(2);
    expect(balance.entries[0].kind).toBe('reversal');
    const next = await runCliJson(['balance', '--account', account.id, '--limit', '2', '--before', String(balance.nextPage.before)], env);
    expect(next.entries.map((e: { kind: string }) => e.kind)).toEqual(['refund', 'grant']);
  });
});
