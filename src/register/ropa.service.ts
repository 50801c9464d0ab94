import { z } from 'zod';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { validate } from '../shared/validate';
import { readRopaFacts } from './ropa.data';
import { renderRopaPdf } from './ropa.render';
import { ropaCsv, type RopaController, type RopaFacts } from './ropa.rules';

/**
 * The record of processing activities (GDPR article 30; issue 25, part 3;
 * docs/processing-register.md) for compliance staff: generated on demand
 * from the register and the retention policies, as CSV or PDF, with the
 * controller from the invoicing issuer (config.invoicing.issuer). Nothing in
 * the request but the format shapes it.
 */

// The format is required: a request without one gets a 400 problem, never a file it did not ask for.
export const recordOfProcessingInput = z.strictObject({
  format: z.enum(['csv', 'pdf'], { error: 'format must be csv or pdf' }),
});

export function ropaService(deps: { db: Db; clock: Clock; controller: RopaController }) {
  const { db, clock, controller } = deps;

  async function facts(): Promise<RopaFacts> {
    const raw = await readRopaFacts(db);
    return {
      controller,
      generatedOn: clock.now().toISOString().slice(0, 10),
      activities: raw.activities.map((a) => ({
        key: a.key,
        purpose: a.purpose,
        legalBasis: a.legal_basis,
        dataSubjectCategories: a.data_subject_categories,
        dataCategories: a.data_categories,
        systems: a.systems,
        retentionCategory: a.retention_category,
        recipientKinds: a.recipient_kinds,
      })),
      recipients: raw.recipients.map((r) => ({
        name: r.name,
        kind: r.kind,
        role: r.role,
        countries: r.countries,
        transferMechanism: r.transfer_mechanism,
        sccDate: r.scc_date,
        transferNote: r.transfer_note,
        agreementRef: r.agreement_ref,
      })),
      policies: raw.policies.map((p) => ({ category: p.category, period: Number(p.period), unit: p.unit, action: p.action })),
    };
  }

  return {
    facts,
    /** The record as a file: its media type, body and a file name with the date. */
    async recordOfProcessing(raw: unknown): Promise<{ format: 'csv' | 'pdf'; contentType: string; body: string | Buffer; filename: string }> {
      const { format } = validate(recordOfProcessingInput, raw ?? {});
      const f = await facts();
      const filename = `record-of-processing-${f.generatedOn}.${format}`;
      return format === 'pdf'
        ? { format, contentType: 'application/pdf', body: await renderRopaPdf(f), filename }
        : { format, contentType: 'text/csv; charset=utf-8', body: ropaCsv(f), filename };
    },
  };
}

export type RopaService = ReturnType<typeof ropaService>;
