import { randomUUID } from 'node:crypto';
import { unzipSync, strFromU8 } from 'fflate';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock';
import { accountsService } from '../../src/accounts/accounts.service';
import { privacyService } from '../../src/privacy/privacy.service';
import type { DsrState } from '../../workflows/messages';
import { dsrConfig, dsrSuite, mailbox } from '../helpers/dsrStack';
import { testConfig, testDb } from '../helpers/env';
import { insertUsageEvents } from '../helpers/usageEvents';
import { withTestWorker } from '../helpers/worker';

/**
 * GDPR art. 15(1) and (2) on a real request: a user whose API requests went to
 * two providers in different countries files an access request through the
 * DSR workflow; the package's article-15 section names exactly those two
 * providers with their safeguards, and every other element.
 */
const base = testConfig();
const db = testDb(base);
const suite = dsrSuite(base, db);

describe('access answer (article 15)', () => {
  it('lists every element, with exactly the two providers the requests went to and their safeguards', async () => {
    const tag = randomUUID().slice(0, 8);
    const ops = accountsService({ db, clock: systemClock });
    const email = `a15-${tag}@example.com`;
    const account = await ops.createAccount({ name: `A15 Co ${tag}`, billingEmail: email, country: 'DE' });
    const user = await ops.createUser({ accountId: account.id, name: `A15 ${tag}`, email });
    const key = await ops.createKey({ accountId: account.id, userId: user.id });
    const other = await ops.createAccount({ name: `A15 Other ${tag}`, billingEmail: `other-${tag}@example.com`, country: 'DE' });

    const [de] = await db('providers').insert({ name: `a15-de-${tag}`, base_url: 'http://127.0.0.1:9' }).returning('id');
    const [us] = await db('providers').insert({ name: `a15-us-${tag}`, base_url: 'http://127.0.0.1:9' }).returning('id');
    const [elsewhere] = await db('providers').insert({ name: `a15-jp-${tag}`, base_url: 'http://127.0.0.1:9' }).returning('id');
    await db('recipients').insert([
      { name: `a15-de-${tag}`, kind: 'model_provider', provider_id: de.id, role: 'sub_processor', countries: ['DE'], transfer_mechanism: 'not_needed', agreement_ref: 'DPA-DE' },
      { name: `a15-us-${tag}`, kind: 'model_provider', provider_id: us.id, role: 'sub_processor', countries: ['US'], transfer_mechanism: 'standard_contractual_clauses', scc_date: '2021-06-04', agreement_ref: 'DPA-US' },
      { name: `a15-jp-${tag}`, kind: 'model_provider', provider_id: elsewhere.id, role: 'sub_processor', countries: ['JP'], transfer_mechanism: 'adequacy_decision', agreement_ref: 'DPA-JP' },
      { name: `a15-hosting-${tag}`, kind: 'hosting', role: 'processor', countries: ['DE'], transfer_mechanism: 'not_needed', agreement_ref: 'DPA-H' },
      { name: `a15-pay-${tag}`, kind: 'payment_processor', role: 'independent_controller', countries: ['IE', 'US'], transfer_mechanism: 'standard_contractual_clauses', scc_date: '2021-06-04', agreement_ref: 'DPA-P' },
      { name: `a15-mail-${tag}`, kind: 'email_service', role: 'processor', countries: ['DE'], transfer_mechanism: 'not_needed', agreement_ref: 'DPA-M' },
    ]);
    await db('processing_activities')
      .insert({ key: `a15_fwd_${tag}`, purpose: 'Forwarding API requests to model providers', legal_basis: 'contract', data_subject_categories: ['customer users'], data_categories: ['request metadata'], systems: ['gateway'], retention_category: 'usage_events' })
      .onConflict('key')
      .ignore();
    const ev = (i: number, provider: string, accountId = account.id, extra: Record<string, unknown> = { api_key_id: key.id, user_id: user.id }) => ({
      request_id: `req-a15-${tag}-${i}`,
      occurred_at: new Date(Date.now() - 60_000 * (i + 1)),
      finished_at: new Date(Date.now() - 60_000 * (i + 1) + 500),
      account_id: accountId,
      model: 'some-model',
      provider,
      upstream_model: 'up',
      latency_ms: 30,
      ...extra,
    });
    // Two events on the DE provider, one on the US one; the JP provider served only another account.
    await insertUsageEvents(db, [ev(0, `a15-de-${tag}`), ev(1, `a15-de-${tag}`), ev(2, `a15-us-${tag}`), ev(3, `a15-jp-${tag}`, other.id, {})]);
    await db('payments').insert({ provider: 'stripe', provider_payment_id: `pi_a15_${tag}`, account_id: account.id, amount: '10', currency: 'USD', status: 'succeeded' });

    const config = dsrConfig();
    await withTestWorker(config, db, async () => {
      const svc = privacyService({ db, clock: systemClock, config, client: suite.client, taskQueue: config.temporal.taskQueue });
      const { id } = await svc.create({ type: 'access', email, jurisdiction: 'gdpr' }, 'staff:test');
      await svc.verify(id, { method: 'document', note: 'ID card' }, 'staff:test');
      expect(await (suite.client.workflow.getHandle(`dsr:${id}`).result() as Promise<DsrState>)).toMatchObject({ status: 'completed' });

      const answer = mailbox(config).find((m) => m.to === email && /completed/.test(m.subject))!;
      const link = new URL(/(http\S+\/privacy\/packages\/\S+)/.exec(answer.body)![1]!);
      const files = unzipSync(new Uint8Array(await svc.download(link.pathname.split('/').pop()!, Object.fromEntries(link.searchParams))));
      const a15 = JSON.parse(strFromU8(files['data.json']!)).article15;

      // Purposes with their legal basis, from the register.
      expect(a15.purposes).toContainEqual(
        expect.objectContaining({ activity: `a15_fwd_${tag}`, purpose: 'Forwarding API requests to model providers', legalBasis: 'contract', retention: expect.objectContaining({ category: 'usage_events', period: 90 }) }),
      );
      // Categories held about them and the register's categories.
      expect(a15.categories.held.map((c: { category: string }) => c.category)).toEqual(expect.arrayContaining(['users', 'accounts', 'api_keys', 'usage_metadata', 'payments']));
      expect(a15.categories.register).toContain('request metadata');

      // Recipients: exactly the two providers their requests went to, each with role, countries and safeguard.
      const providers = a15.recipients.filter((r: { kind: string }) => r.kind === 'model_provider');
      expect(providers).toEqual([
        expect.objectContaining({ name: `a15-de-${tag}`, registerEntry: 'complete', role: 'sub_processor', countries: ['DE'], outsideEea: [], transferMechanism: 'not_needed', sccDate: null }),
        expect.objectContaining({ name: `a15-us-${tag}`, registerEntry: 'complete', role: 'sub_processor', countries: ['US'], outsideEea: ['US'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04' }),
      ]);
      // Other recipients by kind: they paid, we emailed them, and the hosting holds everything.
      const names = a15.recipients.map((r: { name: string }) => r.name);
      expect(names).toEqual(expect.arrayContaining([`a15-hosting-${tag}`, `a15-pay-${tag}`, `a15-mail-${tag}`]));
      expect(names).not.toContain(`a15-jp-${tag}`);
      // Art. 15(2): the safeguard of each transfer.
      expect(a15.transferSafeguards).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ recipient: `a15-de-${tag}`, countries: ['DE'], mechanism: 'not_needed' }),
          expect.objectContaining({ recipient: `a15-us-${tag}`, countries: ['US'], outsideEea: ['US'], mechanism: 'standard_contractual_clauses', sccDate: '2021-06-04' }),
        ]),
      );
      // Retention periods from the policies of the categories.
      expect(a15.retention).toContainEqual(expect.objectContaining({ category: 'usage_events', period: 90, unit: 'days', description: '90 days' }));
      expect(a15.retention).toContainEqual(expect.objectContaining({ category: 'payments', unit: 'years_after_year_end' }));
      // Source, rights with the complaint, automated decisions.
      expect(a15.sources).toContainEqual(expect.objectContaining({ category: 'usage_metadata', source: 'our_systems' }));
      expect(a15.sources).toContainEqual(expect.objectContaining({ category: 'users', source: 'you' }));
      expect(a15.rights.map((r: { right: string }) => r.right)).toEqual(['access', 'rectification', 'erasure', 'restriction', 'objection', 'portability', 'withdraw_consent']);
      expect(a15.complaint.description).toContain('supervisory authority');
      expect(a15.automatedDecisionMaking.exists).toBe(false);
      // Nothing staff typed into the request reaches it.
      expect(JSON.stringify(a15)).not.toContain('ID card');
    });
  });
});
