import { systemClock } from '../../src/clock';
import type { Db } from '../../src/db/knex';
import { registerService } from '../../src/register/register.service';

/**
 * A complete processing-register entry for a model provider, made the way
 * compliance staff make it (the register service, with its change log).
 * Reconciliation's `register` check reports every provider that received
 * traffic without one, so fixtures whose reports must come out clean give
 * their providers one.
 */
export async function completeRegisterEntry(db: Db, provider: string, facts: { countries?: string[] } = {}) {
  return registerService({ db, clock: systemClock }).recipients.create(
    {
      kind: 'model_provider',
      provider,
      role: 'sub_processor',
      countries: facts.countries ?? ['US'],
      transferMechanism: 'standard_contractual_clauses',
      sccDate: '2021-06-04',
      agreementRef: `DPA-${provider}`.slice(0, 200),
      reason: 'test fixture',
    },
    'test',
  );
}
