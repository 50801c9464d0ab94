import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { postEntry } from '../../src/ledger/ledger.data';
import { reconciliationService } from '../../src/reconciliation/reconciliation.service';
import { registerService } from '../../src/register/register.service';
import { Money } from '../../src/shared/money.rules';
import { testConfig } from '../helpers/env';
import { closeOwnStack, openOwnStack, ownDatabaseUrl } from '../helpers/ownDatabase';
import { completeRegisterEntry } from '../helpers/registerEntry';
import { insertUsageEvents } from '../helpers/usageEvents';
import { withTestWorker, workflowBundle } from '../helpers/worker';

/**
 * The `register` reconciliation check (docs/reconciliation.md,
 * docs/processing-register.md): each provider that received traffic in the
 * window without a complete register entry is reported, with the facts it
 * lacks, and makes the report need attention; providers with a complete
 * entry, providers without traffic in the window and requests that reached no
 * provider are not. It runs in the real `reconcile` workflow, whose older
 * recorded history must still replay. Reconciliation reads every account, so
 * this file has a database of its own.
 */
const { historyFromJSON } = createRequire(import.meta.url)('@temporalio/common/lib/proto-utils') as typeof import('@temporalio/common/lib/proto-utils');
const HISTORY = fileURLToPath(new URL('../replay/histories/reconcile.json', import.meta.url));

const config = testConfig({ DATABASE_URL: ownDatabaseUrl('register_check'), RECONCILE_SETTLEMENT_LAG_S: '60', RECONCILE_PAYMENT_GRACE_S: '60' });
let db: Db;
let connection: Connection;
let client: Client;

const DAY = '2026-08-11';
const NEXT_DAY = '2026-08-12';

beforeAll(async () => {
  ({ db, connection, client } = await openOwnStack(config));
}, 120_000);
afterAll(async () => {
  await closeOwnStack(config, { db, connection });
});

type Found = { check: string; kind: string; subject: string; accountId: string | null; expected: string | null; actual: string | null; unit: string; details: Record<string, unknown>; resolution: string; new: boolean };
const ours = (r: unknown) => (r as { discrepancies: Found[] }).discrepancies.filter((d) => d.check === 'register');

describe('the register check', () => {
  it('lists the providers that received traffic without a complete register entry, and none once their entries are complete', async () => {
    const tag = randomUUID().slice(0, 6);
    const p = { ok: `ok-${tag}`, none: `none-${tag}`, part: `part-${tag}`, idle: `idle-${tag}`, gone: `gone-${tag}` };
    const ops = accountsService({ db, clock: systemClock });
    for (const name of [p.ok, p.none, p.part, p.idle]) await ops.addProvider({ name, baseUrl: 'http://127.0.0.1:9', apiKeyEnv: 'PROVIDER_UNUSED_API_KEY' });
    await completeRegisterEntry(db, p.ok);
    // An entry that names US processing without a transfer mechanism, a role or an agreement.
    const register = registerService({ db, clock: systemClock });
    const partial = await register.recipients.create({ kind: 'model_provider', provider: p.part, countries: ['US'], transferMechanism: 'not_needed', reason: 'onboarding, facts to follow' }, 'test');
    const account = (await ops.createAccount({ name: 'Traffic', country: 'DE' })).id as string;
    await postEntry(db, { accountId: account, kind: 'grant', contra: 'promotions', amount: new Money('100'), idempotencyKey: `grant:${account}`, referenceType: 'test', referenceId: account, actor: 'test' }, { overdraftAllowance: new Money(0) });
    const event = (day: string, provider: string | null, hh: string) => ({ account_id: account, occurred_at: new Date(`${day}T${hh}:00:00Z`), provider, cost: '0.01' });
    await insertUsageEvents(db, [
      event(DAY, p.ok, '01'),
      event(DAY, p.none, '02'),
      event(DAY, p.none, '03'),
      event(DAY, p.part, '04'),
      // Refused before any provider was chosen: no provider received it.
      { ...event(DAY, null, '05'), status_code: 403, error_type: 'region_policy_no_route', cost: '0' },
      // The next day only: a provider without an entry, and one no longer in providers at all.
      event(NEXT_DAY, p.idle, '01'),
      event(NEXT_DAY, p.gone, '02'),
    ]);

    await withTestWorker(config, db, async () => {
      const svc = reconciliationService({ db, clock: systemClock, client, taskQueue: config.temporal.taskQueue });
      const started = await svc.start({ day: DAY }, 'staff:test');
      const result = await svc.wait(started);
      expect(result.checks.register).toMatchObject({ found: 2, needsAttention: 2, repaired: 0 });
      expect(result.verdict).toBe('needs_attention');
      const found = ours(await svc.get({ id: started.reportId }));
      expect(found.map((d) => ({ kind: d.kind, subject: d.subject, details: d.details, resolution: d.resolution, accountId: d.accountId, expected: d.expected, new: d.new }))).toEqual(
        [
          { kind: 'provider_without_register_entry', subject: p.none, details: { provider: p.none, missing: ['register entry'] }, resolution: 'needs_attention', accountId: null, expected: null, new: true },
          {
            kind: 'provider_without_register_entry',
            subject: p.part,
            details: { provider: p.part, missing: ['role', 'transfer_mechanism (a country outside the EEA needs one)', 'agreement_ref'] },
            resolution: 'needs_attention',
            accountId: null,
            expected: null,
            new: true,
          },
        ].sort((a, b) => a.subject.localeCompare(b.subject)),
      );

      // The month: the next day's providers too (one without a providers row); the two of the day are seen before.
      const month = await svc.get({ id: (await svc.wait(await svc.start({ period: '2026-08' }, 'staff:test'))).reportId });
      expect(ours(month).map((d) => `${d.subject} ${JSON.stringify(d.details.missing)} ${d.new ? 'new' : 'seen'}`).sort()).toEqual(
        [`${p.none} ["register entry"] seen`, `${p.part} ${JSON.stringify(found.find((d) => d.subject === p.part)!.details.missing)} seen`, `${p.idle} ["register entry"] new`, `${p.gone} ["register entry"] new`].sort(),
      );

      // Compliance completes both entries: the day is clean again.
      await completeRegisterEntry(db, p.none, { countries: ['DE', 'FR'] });
      await register.recipients.update(partial.id, { role: 'sub_processor', transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04', agreementRef: 'DPA-7', reason: 'facts received' }, 'test');
      const again = await svc.wait(await svc.start({ day: DAY }, 'staff:test'));
      expect(again.checks.register).toMatchObject({ found: 0 });
      expect(again).toMatchObject({ verdict: 'clean', found: 0 });

      // A run recorded before the check existed still replays; a run with it replays too.
      const bundle = await workflowBundle();
      await Worker.runReplayHistory({ workflowBundle: bundle }, historyFromJSON(JSON.parse(fs.readFileSync(HISTORY, 'utf8'))), 'reconcile-replay');
      await Worker.runReplayHistory({ workflowBundle: bundle }, await client.workflow.getHandle(started.workflowId, started.reportId).fetchHistory(), started.workflowId);
    });
  });
});
