import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Money } from '../../src/shared/money.rules';
import { paymentWebhookStack } from '../helpers/paymentWebhook';
import { withTestWorker } from '../helpers/worker';

/**
 * Attacks on the payment webhook with validly signed Stripe events:
 * - pay, then get the money back (refund or chargeback) and keep the credit:
 *   before the fix `charge.refunded` and `charge.dispute.*` were ignored;
 * - replay a refund so it is debited several times, or replay a won dispute;
 * - pay with one account's Stripe customer while naming another account in
 *   the metadata: before the fix the named account was credited.
 */
const SECRET = 'whsec_test_secret_for_payment_reversals';
const webhook = paymentWebhookStack(SECRET);
const { config, db, ops } = webhook;

const uid = () => randomUUID().replace(/-/g, '');
const event = (type: string, object: Record<string, unknown>) => JSON.stringify({ id: `evt_${uid()}`, object: 'event', type, data: { object } });
async function deliver(payload: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${webhook.url}/webhooks/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': webhook.sign(payload) },
    body: payload,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const pay = (accountId: string, paymentId: string, cents: number, customer: string | null) =>
  deliver(event('payment_intent.succeeded', { id: paymentId, object: 'payment_intent', amount_received: cents, currency: 'usd', customer, metadata: { account_id: accountId } }));
const refunded = (paymentId: string, cents: number, refundedCents: number, customer: string | null) =>
  event('charge.refunded', { id: `ch_${uid()}`, object: 'charge', payment_intent: paymentId, amount: cents, amount_refunded: refundedCents, refunded: refundedCents === cents, currency: 'usd', customer });
const dispute = (type: 'created' | 'closed', disputeId: string, paymentId: string, cents: number, status: string) =>
  event(`charge.dispute.${type}`, { id: disputeId, object: 'dispute', charge: `ch_${uid()}`, payment_intent: paymentId, amount: cents, currency: 'usd', reason: 'fraudulent', status });

const entries = (accountId: string) => db('ledger_entries').where({ account_id: accountId }).orderBy('id');
const balance = async (accountId: string) => new Money((await db('account_balances').where({ account_id: accountId }).first())?.balance ?? '0');

describe('payment reversals', () => {
  it('a signed refund delivered three times posts one reversal; a larger cumulative refund posts only the difference', async () => {
    const account = await ops.createAccount({ name: 'Refund Co' });
    const paymentId = `pi_${uid()}`;
    const customer = `cus_${uid()}`;
    await withTestWorker(config, db, async () => {
      expect((await pay(account.id, paymentId, 1000, customer)).body).toMatchObject({ applied: true });
    });

    const partial = refunded(paymentId, 1000, 300, customer);
    const answers = await Promise.all([deliver(partial), deliver(partial), deliver(partial)]);
    for (const a of answers) expect(a.status).toBe(200);
    expect(answers.filter((a) => a.body.status === 'posted')).toHaveLength(1);

    const more = refunded(paymentId, 1000, 500, customer);
    expect((await deliver(more)).body).toMatchObject({ status: 'posted' });
    expect((await deliver(more)).body).toMatchObject({ status: 'already_applied' });
    // A late delivery of the earlier, smaller total takes nothing more.
    expect((await deliver(partial)).body).toMatchObject({ status: 'already_applied' });

    const rows = await entries(account.id);
    expect(rows.map((r) => [r.kind, new Money(r.amount).toString(), r.reference_type])).toEqual([
      ['topup', '10', 'payment'],
      ['refund', '-3', 'payment_refund'],
      ['refund', '-2', 'payment_refund'],
    ]);
    expect(rows[1]).toMatchObject({ contra: 'cash', actor: 'webhook:stripe', reference_id: `stripe:${paymentId}` });
    expect((await balance(account.id)).eq(5)).toBe(true);
  });

  it('a dispute debits once when opened; closed as lost posts nothing more, closed as won re-credits once', async () => {
    const lostAccount = await ops.createAccount({ name: 'Chargeback Lost Co' });
    const wonAccount = await ops.createAccount({ name: 'Chargeback Won Co' });
    const lostPayment = `pi_${uid()}`;
    const wonPayment = `pi_${uid()}`;
    await withTestWorker(config, db, async () => {
      expect((await pay(lostAccount.id, lostPayment, 2000, null)).body).toMatchObject({ applied: true });
      expect((await pay(wonAccount.id, wonPayment, 1500, null)).body).toMatchObject({ applied: true });
    });

    const lost = `dp_${uid()}`;
    for (const payload of [dispute('created', lost, lostPayment, 2000, 'needs_response'), dispute('created', lost, lostPayment, 2000, 'needs_response')]) {
      expect((await deliver(payload)).status).toBe(200);
    }
    for (let i = 0; i < 2; i++) expect((await deliver(dispute('closed', lost, lostPayment, 2000, 'lost'))).body).toMatchObject({ status: 'already_applied' });
    expect((await entries(lostAccount.id)).map((r) => [r.kind, new Money(r.amount).toString()])).toEqual([
      ['topup', '20'],
      ['refund', '-20'],
    ]);
    expect((await balance(lostAccount.id)).eq(0)).toBe(true);

    const won = `dp_${uid()}`;
    expect((await deliver(dispute('created', won, wonPayment, 1500, 'needs_response'))).body).toMatchObject({ status: 'posted' });
    const closed = dispute('closed', won, wonPayment, 1500, 'won');
    const closings = await Promise.all([deliver(closed), deliver(closed)]);
    expect(closings.filter((a) => a.body.status === 'posted')).toHaveLength(1);
    expect((await deliver(dispute('created', won, wonPayment, 1500, 'needs_response'))).body).toMatchObject({ status: 'already_applied' });
    const rows = await entries(wonAccount.id);
    expect(rows.map((r) => [r.kind, new Money(r.amount).toString(), r.reference_type])).toEqual([
      ['topup', '15', 'payment'],
      ['refund', '-15', 'payment_dispute'],
      ['reversal', '15', 'payment_dispute'],
    ]);
    expect(Number(rows[2].reverses_entry_id)).toBe(Number(rows[1].id));
    expect((await balance(wonAccount.id)).eq(15)).toBe(true);
  });

  it("a payment naming an account but paid by another account's customer is not credited", async () => {
    const victim = await ops.createAccount({ name: 'Bound Customer Co' });
    const target = await ops.createAccount({ name: 'Named Account Co' });
    const victimCustomer = `cus_${uid()}`;
    const stranger = `cus_${uid()}`;
    const crossed = `pi_${uid()}`;
    const foreign = `pi_${uid()}`;
    await withTestWorker(config, db, async () => {
      // The victim's first payment ties its Stripe customer to it.
      expect((await pay(victim.id, `pi_${uid()}`, 500, victimCustomer)).body).toMatchObject({ applied: true });
      // The victim's customer names another account.
      const a = await pay(target.id, crossed, 700, victimCustomer);
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ applied: false, refused: 'customer_mismatch' });
      // Another customer names the victim's account.
      expect((await pay(victim.id, foreign, 900, stranger)).body).toMatchObject({ applied: false, refused: 'customer_mismatch' });
      // Delivered again: still refused.
      expect((await pay(target.id, crossed, 700, victimCustomer)).body).toMatchObject({ applied: false });
    });
    expect(await entries(target.id)).toHaveLength(0);
    expect((await balance(target.id)).eq(0)).toBe(true);
    expect((await balance(victim.id)).eq(5)).toBe(true);
    expect(await db('payments').where({ provider_payment_id: crossed }).first()).toMatchObject({ status: 'customer_mismatch', customer_id: victimCustomer, account_id: target.id });
    expect(await db('payments').where({ provider_payment_id: foreign }).first()).toMatchObject({ status: 'customer_mismatch', customer_id: stranger });
    // A refund of the refused payment takes nothing from anyone.
    expect((await deliver(refunded(crossed, 700, 700, victimCustomer))).body).toMatchObject({ status: 'not_credited' });
    expect(await entries(target.id)).toHaveLength(0);
  });
});
