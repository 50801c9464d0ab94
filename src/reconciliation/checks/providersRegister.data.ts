import { missingRecipientFacts } from '../../register/register.rules';
import type { Discrepancy } from '../reconciliation.rules';
import type { CheckContext } from './checkContext.data';

/**
 * The `register` check (docs/reconciliation.md, docs/processing-register.md):
 * every provider that received traffic in the window has a complete entry in
 * the processing register. Reports only: compliance staff complete the entry
 * (`mixroute register recipients ...`); reconciliation never writes to the
 * register.
 *
 * One set-based query: the distinct providers of the window's usage events
 * (a request forwarded upstream names its provider; a request refused before
 * that names none), left-joined to their providers row and recipient entry.
 * A provider with no entry, or one that lacks facts (missingRecipientFacts,
 * the same rule as the console's completeness), is
 * `provider_without_register_entry`, subject the provider's name. Details
 * carry the provider's name and the names of the missing facts, nothing else.
 */

interface ProviderEntry {
  provider: string;
  has_entry: boolean;
  role: string | null;
  countries: string[] | null;
  transfer_mechanism: string | null;
  scc_date: string | null;
  agreement_ref: string | null;
}

export async function checkProvidersRegister(ctx: CheckContext): Promise<Discrepancy[]> {
  const { db, window } = ctx;
  const rows: ProviderEntry[] = (
    await db.raw(
      `SELECT t.provider, r.id IS NOT NULL AS has_entry, r.role, r.countries, r.transfer_mechanism,
              to_char(r.scc_date, 'YYYY-MM-DD') AS scc_date, r.agreement_ref
         FROM (SELECT DISTINCT e.provider FROM usage_events e
                WHERE e.occurred_at >= ? AND e.occurred_at < ? AND e.provider IS NOT NULL) t
         LEFT JOIN providers p ON p.name = t.provider
         LEFT JOIN recipients r ON r.provider_id = p.id
        ORDER BY t.provider`,
      [window.start, window.end],
    )
  ).rows;

  const out: Discrepancy[] = [];
  for (const r of rows) {
    const missing = r.has_entry
      ? missingRecipientFacts({ role: r.role, countries: r.countries ?? [], transferMechanism: r.transfer_mechanism, sccDate: r.scc_date, agreementRef: r.agreement_ref })
      : ['register entry'];
    if (missing.length === 0) continue;
    out.push({
      kind: 'provider_without_register_entry',
      subject: r.provider,
      accountId: null,
      expected: null,
      actual: null,
      unit: 'register',
      details: { provider: r.provider, missing },
      resolution: 'needs_attention',
      repairRef: null,
    });
  }
  return out;
}
