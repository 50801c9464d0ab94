import { describe, expect, it } from 'vitest';
import { article15Section, describePeriod, recipientsReceived, type Article15Facts, type RecipientEntry } from '../../src/privacy/accessAnswer.rules';

const entry = (over: Partial<RecipientEntry>): RecipientEntry => ({
  name: 'x', kind: 'model_provider', role: 'sub_processor', countries: ['DE'], transferMechanism: 'not_needed', sccDate: null, agreementRef: 'DPA-1', ...over,
});

const facts = (over: Partial<Article15Facts> = {}): Article15Facts => ({
  activities: [
    { key: 'gateway_forwarding', purpose: 'Forwarding API requests', legalBasis: 'contract', dataSubjectCategories: ['customer users'], dataCategories: ['request metadata', 'prompts in transit'], retentionCategory: 'usage_events' },
    { key: 'billing', purpose: 'Invoicing', legalBasis: 'legal_obligation', dataSubjectCategories: ['billing contacts'], dataCategories: ['billing contact'], retentionCategory: 'invoices' },
  ],
  policies: [
    { category: 'usage_events', period: 90, unit: 'days', action: 'delete' },
    { category: 'invoices', period: 8, unit: 'years_after_year_end', action: 'delete' },
    { category: 'closed_accounts', period: 90, unit: 'days', action: 'erase_contact' },
  ],
  otherRecipients: [
    entry({ name: 'Host', kind: 'hosting', role: 'processor' }),
    entry({ name: 'Pay', kind: 'payment_processor', role: 'independent_controller', countries: ['IE', 'US'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04' }),
    entry({ name: 'Mail', kind: 'email_service', role: 'processor' }),
    entry({ name: 'Lawyer', kind: 'other', role: 'independent_controller' }),
  ],
  providersReceived: [
    { provider: 'us-llm', entry: entry({ name: 'us-llm', countries: ['US'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04' }) },
    { provider: 'de-llm', entry: entry({ name: 'de-llm' }) },
  ],
  heldCounts: { users: 1, accounts: 1, usage_metadata: 3, login_records: 0 },
  hasPayments: false,
  emailed: false,
  ...over,
});

describe('article-15 section (rules)', () => {
  it('purposes with legal basis and retention, categories, sources, rights, complaint and no automated decisions', () => {
    const s = article15Section(facts());
    expect(s.purposes.map((p) => [p.activity, p.legalBasis, p.retention?.description])).toEqual([
      ['billing', 'legal_obligation', '8 years after the end of the calendar year'],
      ['gateway_forwarding', 'contract', '90 days'],
    ]);
    expect(s.purposes[1]!.legalBasisLabel).toContain('Art. 6(1)(b)');
    expect(s.categories.held.map((c) => c.category)).toEqual(['users', 'accounts', 'usage_metadata']);
    expect(s.categories.register).toEqual(['billing contact', 'prompts in transit', 'request metadata']);
    expect(s.sources).toEqual([
      expect.objectContaining({ category: 'users', source: 'you' }),
      expect.objectContaining({ category: 'accounts', source: 'your_account' }),
      expect.objectContaining({ category: 'usage_metadata', source: 'our_systems' }),
    ]);
    expect(s.retention.map((r) => r.category)).toEqual(['closed_accounts', 'invoices', 'usage_events']);
    expect(s.rights.map((r) => r.right)).toEqual(['access', 'rectification', 'erasure', 'restriction', 'objection', 'portability', 'withdraw_consent']);
    expect(s.complaint).toMatchObject({ right: 'lodge_complaint', article: 'Art. 77 GDPR' });
    expect(s.complaint.description).toContain('supervisory authority');
    expect(s.automatedDecisionMaking.exists).toBe(false);
  });

  it('a retention category with no policy says so instead of inventing a period', () => {
    const s = article15Section(facts({ policies: [] }));
    expect(s.retention).toContainEqual({ category: 'usage_events', period: null, unit: null, description: 'no period recorded' });
    expect(s.purposes[0]!.retention).toBeNull();
  });

  it('providers their requests went to, sorted, with role, countries, safeguard and SCC date', () => {
    const s = article15Section(facts());
    expect(s.recipients.filter((r) => r.kind === 'model_provider')).toEqual([
      expect.objectContaining({ name: 'de-llm', registerEntry: 'complete', countries: ['DE'], outsideEea: [], transferMechanism: 'not_needed', sccDate: null }),
      expect.objectContaining({ name: 'us-llm', registerEntry: 'complete', countries: ['US'], outsideEea: ['US'], transferMechanism: 'standard_contractual_clauses', sccDate: '2021-06-04' }),
    ]);
    expect(s.transferSafeguards.find((t) => t.recipient === 'us-llm')).toMatchObject({ mechanism: 'standard_contractual_clauses', sccDate: '2021-06-04', description: expect.stringContaining('Art. 46(2)(c)') });
  });

  it('a provider with no register entry, or an incomplete one, is listed and marked, never dropped', () => {
    const s = article15Section(
      facts({ providersReceived: [{ provider: 'ghost', entry: null }, { provider: 'half', entry: entry({ name: 'half', countries: ['US'], transferMechanism: 'not_needed', agreementRef: null }) }] }),
    );
    expect(s.recipients.filter((r) => r.kind === 'model_provider')).toEqual([
      expect.objectContaining({ name: 'ghost', registerEntry: 'missing', missing: ['register_entry'], countries: [], transferMechanism: null }),
      expect.objectContaining({ name: 'half', registerEntry: 'incomplete', missing: expect.arrayContaining(['agreement_ref']) }),
    ]);
    expect(s.transferSafeguards.find((t) => t.recipient === 'ghost')).toMatchObject({ registerEntry: 'missing', description: 'not recorded in our register' });
  });

  it('other recipients by kind: hosting always, payment processor only if they paid, email service only if emailed, never "other"', () => {
    const kinds = (over: Partial<Article15Facts>) => recipientsReceived(facts({ providersReceived: [], ...over })).map((r) => r.name);
    expect(kinds({})).toEqual(['Host']);
    expect(kinds({ hasPayments: true, emailed: true })).toEqual(['Mail', 'Host', 'Pay']);
  });

  it('periods read as people say them', () => {
    expect(describePeriod({ period: 1, unit: 'days' })).toBe('1 day');
    expect(describePeriod({ period: 10, unit: 'years_after_year_end' })).toBe('10 years after the end of the calendar year');
  });
});
