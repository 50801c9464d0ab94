import { describe, expect, it } from 'vitest';
import { renderRopaPdf, ropaPdfText } from '../../src/register/ropa.render';
import { ROPA_CSV_HEADER, erasureTimeLimit, recipientCategories, ropaCsv, ropaRows, safeguardOf, thirdCountryTransfers, type RopaFacts, type RopaRecipient } from '../../src/register/ropa.rules';

/**
 * The record of processing activities, pure: rows per activity with the
 * article 30(1) facts, third-country transfers with their safeguards, the
 * erasure time limit from the retention policy, and a spreadsheet-safe CSV.
 */
const recipient = (r: Partial<RopaRecipient> & { name: string }): RopaRecipient => ({
  kind: 'other', role: 'processor', countries: ['DE'], transferMechanism: 'not_needed', sccDate: null, transferNote: null, agreementRef: 'DPA-1', ...r,
});

const facts: RopaFacts = {
  controller: { name: 'MixRoute GmbH', address: 'Street 1\n10115 Berlin', country: 'DE', vatId: 'DE123456789', email: 'privacy@mixroute.example' },
  generatedOn: '2026-12-05',
  activities: [
    { key: 'billing', purpose: 'Invoicing customers', legalBasis: 'legal_obligation', dataSubjectCategories: ['customer contacts'], dataCategories: ['billing contact', 'invoices'], systems: ['ledger'], retentionCategory: 'invoices' },
    { key: 'gateway', purpose: 'Forwarding API requests', legalBasis: 'contract', dataSubjectCategories: ['customer users', 'end users'], dataCategories: ['prompts in transit'], systems: ['gateway'], retentionCategory: null },
  ],
  recipients: [
    recipient({ name: 'Mailer GmbH', kind: 'email_service' }),
    recipient({ name: 'OpenAI', kind: 'model_provider', role: 'sub_processor', countries: ['US', 'IE'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04' }),
    recipient({ name: '=HYPERLINK("http://x")', kind: 'other', role: null, countries: ['CH'], transferMechanism: null, agreementRef: null }),
  ],
  policies: [
    { category: 'invoices', period: 8, unit: 'years_after_year_end', action: 'delete' },
    { category: 'usage_events', period: 90, unit: 'days', action: 'delete' },
  ],
};

describe('record of processing: rows', () => {
  it('gives one row per activity with purpose, legal basis, categories, recipients, transfers, erasure limit and systems', () => {
    const rows = ropaRows(facts);
    expect(rows.map((r) => r.activity)).toEqual(['billing', 'gateway']);
    expect(rows[0]).toMatchObject({
      purpose: 'Invoicing customers',
      legalBasis: 'legal obligation (art. 6(1)(c))',
      dataSubjectCategories: ['customer contacts'],
      dataCategories: ['billing contact', 'invoices'],
      erasureTimeLimit: '8 years after the end of the calendar year, then deleted (retention category invoices)',
      systems: ['ledger'],
    });
    expect(rows[1]!.erasureTimeLimit).toBe('no retention policy recorded');
    expect(rows[0]!.recipients).toHaveLength(3);
    expect(rows[0]!.recipients[1]).toBe('OpenAI (model provider, sub-processor; US, IE)');
    expect(rows[0]!.recipients[2]).toContain('[entry incomplete: role, transfer_mechanism, agreement_ref]');
  });

  it('names per activity only the recipients of the kinds it states; none stated names all, an empty list none', () => {
    const rows = ropaRows({
      ...facts,
      activities: [
        { ...facts.activities[0]!, key: 'mail', recipientKinds: ['email_service'] },
        { ...facts.activities[1]!, key: 'routing', recipientKinds: ['model_provider', 'hosting'] },
        { ...facts.activities[1]!, key: 'internal', recipientKinds: [] },
        { ...facts.activities[1]!, key: 'unstated', recipientKinds: null },
      ],
    });
    const byKey = Object.fromEntries(rows.map((r) => [r.activity, r]));
    expect(byKey.mail!.recipients).toEqual(['Mailer GmbH (email service, processor; DE)']);
    expect(byKey.mail!.transfers).toEqual([]);
    expect(byKey.routing!.recipients).toEqual(['OpenAI (model provider, sub-processor; US, IE)']);
    expect(byKey.routing!.recipientCategories).toEqual(['model provider (sub-processor): IE, US']);
    expect(byKey.routing!.transfers).toEqual([{ recipient: 'OpenAI', countries: ['US'], safeguard: 'standard contractual clauses of 2021-06-04' }]);
    expect(byKey.internal!.recipients).toEqual([]);
    expect(byKey.unstated!.recipients).toHaveLength(3);
  });

  it('lists transfers outside the EEA only, with the mechanism and the date of the clauses', () => {
    expect(thirdCountryTransfers(facts.recipients)).toEqual([
      { recipient: 'OpenAI', countries: ['US'], safeguard: 'standard contractual clauses of 2021-06-04' },
      { recipient: '=HYPERLINK("http://x")', countries: ['CH'], safeguard: 'NO SAFEGUARD RECORDED' },
    ]);
    expect(safeguardOf(recipient({ name: 'x', transferMechanism: 'adequacy_decision', transferNote: 'UK adequacy' }))).toBe('adequacy decision: UK adequacy');
  });

  it('groups recipients by kind and role with their countries', () => {
    expect(recipientCategories(facts.recipients)).toEqual(['email service (processor): DE', 'model provider (sub-processor): IE, US', 'other (role not recorded): CH']);
  });

  it('says the erasure limit in days, and when a category has no policy', () => {
    expect(erasureTimeLimit('usage_events', facts.policies)).toBe('90 days, then deleted (retention category usage_events)');
    expect(erasureTimeLimit('gone', facts.policies)).toBe('retention category gone: no policy recorded');
  });
});

describe('record of processing: CSV', () => {
  const csv = ropaCsv(facts);
  const lines = csv.trimEnd().split('\n');

  it('has a header and one line per activity, with the controller on each', () => {
    expect(lines[0]).toBe(ROPA_CSV_HEADER.join(','));
    expect(lines).toHaveLength(3);
    expect(lines[1]!.startsWith('2026-12-05,MixRoute GmbH,"Street 1, 10115 Berlin, DE, privacy@mixroute.example",billing,Invoicing customers,')).toBe(true);
    expect(lines[1]).toContain('OpenAI (US): standard contractual clauses of 2021-06-04');
    expect(lines[1]).toContain('docs/security.md');
  });

  it('makes a cell that starts like a formula inert', () => {
    const f: RopaFacts = { ...facts, activities: [{ ...facts.activities[0]!, purpose: '=cmd|calc' }] };
    expect(ropaCsv(f).split('\n')[1]).toContain(",'=cmd|calc,");
  });
});

describe('record of processing: PDF', () => {
  it('is a PDF, identical for identical facts', async () => {
    const a = await renderRopaPdf(facts);
    expect(a.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(a.length).toBeGreaterThan(2000);
    expect((await renderRopaPdf(facts)).equals(a)).toBe(true);
  });

  it('keeps what the standard font shows and transliterates the rest', () => {
    expect(ropaPdfText('Müller – Łódź 北')).toBe('Müller – Lódz ?');
  });
});
