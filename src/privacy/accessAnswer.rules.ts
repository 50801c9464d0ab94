import { EEA_COUNTRIES, missingRecipientFacts, type RecipientFacts } from '../register/register.rules';
import { COMPLAINT_NOTICE } from './rights.rules';

/**
 * The article-15 section of an access or portability package (GDPR art. 15(1)
 * and (2); docs/privacy-requests.md "What an access answer contains"), pure:
 * built only from the register (activities, recipients), the retention
 * policies and facts about the person's own data (which tables hold rows,
 * which providers their requests went to, whether they paid, whether we
 * emailed them). Nothing a person or staff typed into a request goes in, and
 * neither do the register's free-text notes: every sentence here is fixed text
 * or a structured fact.
 */

export interface ActivityFact {
  key: string;
  purpose: string;
  legalBasis: string;
  dataSubjectCategories: readonly string[];
  dataCategories: readonly string[];
  retentionCategory: string | null;
}

export interface RetentionFact {
  category: string;
  period: number;
  unit: string;
  action: string;
}

/** A register entry as the answer needs it: the facts completeness is judged on, named. */
export interface RecipientEntry extends RecipientFacts {
  name: string;
  kind: string;
}

/** A provider the person's requests went to, with its register entry (null when it has none). */
export interface ProviderReceived {
  provider: string;
  entry: RecipientEntry | null;
}

export interface Article15Facts {
  activities: readonly ActivityFact[];
  policies: readonly RetentionFact[];
  /** Register entries of the kinds other than model_provider. */
  otherRecipients: readonly RecipientEntry[];
  providersReceived: readonly ProviderReceived[];
  /** Rows held per category of the package (users, usage_metadata, ...). */
  heldCounts: Readonly<Record<string, number>>;
  hasPayments: boolean;
  emailed: boolean;
}

export const LEGAL_BASIS_LABEL: Record<string, string> = {
  contract: 'performance of a contract with you or your organisation (Art. 6(1)(b) GDPR)',
  legal_obligation: 'compliance with a legal obligation (Art. 6(1)(c) GDPR)',
  legitimate_interests: 'our legitimate interests (Art. 6(1)(f) GDPR)',
  consent: 'your consent (Art. 6(1)(a) GDPR)',
  vital_interests: 'protection of vital interests (Art. 6(1)(d) GDPR)',
  public_task: 'a task in the public interest (Art. 6(1)(e) GDPR)',
};

export const TRANSFER_LABEL: Record<string, string> = {
  not_needed: 'no transfer outside the EEA: no safeguard needed',
  adequacy_decision: 'an adequacy decision of the European Commission (Art. 45 GDPR)',
  standard_contractual_clauses: 'standard contractual clauses (Art. 46(2)(c) GDPR)',
  binding_corporate_rules: 'binding corporate rules (Art. 47 GDPR)',
  other_basis: 'another basis under Chapter V GDPR',
};

export const ROLE_LABEL: Record<string, string> = {
  processor: 'processor acting on our instructions',
  sub_processor: 'sub-processor acting on our instructions',
  independent_controller: 'independent controller',
};

/**
 * Each category of the package: what it is, where it came from (Art. 15(1)(g)),
 * and the retention policy that governs it. `you`: given by the person;
 * `your_account`: set up by their organisation's account; `our_systems`:
 * recorded by us while serving them.
 */
export const HELD_CATEGORIES: Record<string, { label: string; source: 'you' | 'your_account' | 'our_systems'; retention: string | null }> = {
  users: { label: 'identity and contact details (name, email, phone, job title)', source: 'you', retention: 'closed_accounts' },
  accounts: { label: 'account and billing contact details', source: 'your_account', retention: 'closed_accounts' },
  api_keys: { label: 'API key metadata (never the key)', source: 'your_account', retention: null },
  usage_metadata: { label: 'API request metadata (time, model, provider, tokens, cost, IP address, user agent)', source: 'our_systems', retention: 'usage_events' },
  login_records: { label: 'sign-in records', source: 'our_systems', retention: 'login_records' },
  customer_sessions: { label: 'customer console sessions (created, expiry, sign-out, browser, coarse IP address prefix)', source: 'our_systems', retention: 'login_records' },
  two_step_sign_in: { label: 'two-step sign-in: enabled since, and how many unused recovery codes you have (never the secret or the codes)', source: 'you', retention: null },
  customer_login_links: { label: 'one-time sign-in links sent to you by email (created, expiry, used; never the link)', source: 'our_systems', retention: 'login_records' },
  consents: { label: 'consent records', source: 'you', retention: null },
  customer_invitations: { label: 'invitations to join an account in the customer console (address, role, when sent, accepted or revoked)', source: 'your_account', retention: 'notification_outbox' },
  policy_acknowledgements: { label: 'which privacy policy versions you acknowledged reading, and when', source: 'you', retention: null },
  security_events: { label: 'security events (rate limits, refused requests)', source: 'our_systems', retention: 'security_events' },
  payments: { label: 'payments', source: 'our_systems', retention: 'payments' },
  ledger_entries: { label: 'account ledger entries', source: 'our_systems', retention: 'ledger_entries' },
  invoices: { label: 'invoices', source: 'our_systems', retention: 'invoices' },
  rights_requests: { label: 'your earlier privacy requests', source: 'you', retention: 'dsr_requests' },
};

export const SOURCE_LABEL = {
  you: 'you provided it',
  your_account: "your organisation's account provided it (account owner or administrator)",
  our_systems: 'our systems recorded it while providing the service to you',
} as const;

export const RIGHTS: readonly { right: string; article: string; description: string }[] = [
  { right: 'access', article: 'Art. 15 GDPR', description: 'a copy of your personal data and this information' },
  { right: 'rectification', article: 'Art. 16 GDPR', description: 'correction of inaccurate data' },
  { right: 'erasure', article: 'Art. 17 GDPR', description: 'deletion of your data, except what the law makes us keep' },
  { right: 'restriction', article: 'Art. 18 GDPR', description: 'restriction of processing' },
  { right: 'objection', article: 'Art. 21 GDPR', description: 'objection to processing based on our legitimate interests' },
  { right: 'portability', article: 'Art. 20 GDPR', description: 'the data you provided, in a machine-readable format' },
  { right: 'withdraw_consent', article: 'Art. 7(3) GDPR', description: 'withdrawal of consent at any time, without affecting processing before' },
];

const EEA = new Set(EEA_COUNTRIES);

/** "90 days", "8 years after the end of the calendar year". */
export function describePeriod(p: Pick<RetentionFact, 'period' | 'unit'>): string {
  if (p.unit === 'years_after_year_end') return `${p.period} year${p.period === 1 ? '' : 's'} after the end of the calendar year`;
  return `${p.period} day${p.period === 1 ? '' : 's'}`;
}

export interface RecipientAnswer {
  name: string;
  kind: string;
  why: string;
  registerEntry: 'complete' | 'incomplete' | 'missing';
  /** What the entry lacks; ['register_entry'] when there is none. */
  missing: string[];
  role: string | null;
  roleLabel: string | null;
  countries: string[];
  outsideEea: string[];
  transferMechanism: string | null;
  transferLabel: string | null;
  sccDate: string | null;
}

const WHY: Record<string, string> = {
  model_provider: 'your API requests were routed to this model provider',
  payment_processor: 'processes your payments',
  email_service: 'delivers the emails we sent you',
  hosting: 'hosts our systems and so all data we hold',
};

function recipientAnswer(name: string, kind: string, entry: RecipientEntry | null): RecipientAnswer {
  const countries = entry ? [...entry.countries] : [];
  const missing = entry ? missingRecipientFacts(entry) : ['register_entry'];
  const mechanism = entry?.transferMechanism ?? null;
  return {
    name,
    kind,
    why: WHY[kind] ?? 'receives personal data for us',
    registerEntry: !entry ? 'missing' : missing.length ? 'incomplete' : 'complete',
    missing,
    role: entry?.role ?? null,
    roleLabel: entry?.role ? (ROLE_LABEL[entry.role] ?? null) : null,
    countries,
    outsideEea: countries.filter((c) => !EEA.has(c)),
    transferMechanism: mechanism,
    transferLabel: mechanism ? (TRANSFER_LABEL[mechanism] ?? null) : null,
    sccDate: mechanism === 'standard_contractual_clauses' ? (entry?.sccDate ?? null) : null,
  };
}

/**
 * The recipients that actually received the person's data: every provider their
 * requests went to (with or without a complete entry: never dropped), then from
 * the register the payment processor if they paid, the email service if we
 * emailed them, and the hosting.
 */
export function recipientsReceived(f: Pick<Article15Facts, 'providersReceived' | 'otherRecipients' | 'hasPayments' | 'emailed'>): RecipientAnswer[] {
  const out = [...f.providersReceived].sort((a, b) => a.provider.localeCompare(b.provider)).map((p) => recipientAnswer(p.provider, 'model_provider', p.entry));
  const wanted = new Set(['hosting', ...(f.hasPayments ? ['payment_processor'] : []), ...(f.emailed ? ['email_service'] : [])]);
  const others = f.otherRecipients.filter((r) => wanted.has(r.kind)).sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  return [...out, ...others.map((r) => recipientAnswer(r.name, r.kind, r))];
}

export function article15Section(f: Article15Facts) {
  const policyOf = new Map(f.policies.map((p) => [p.category, p]));
  const retention = (category: string | null) => {
    const p = category ? policyOf.get(category) : undefined;
    return p ? { category: p.category, period: p.period, unit: p.unit, description: describePeriod(p) } : null;
  };
  const held = Object.keys(HELD_CATEGORIES).filter((k) => (f.heldCounts[k] ?? 0) > 0);
  const recipients = recipientsReceived(f);
  const retentionCategories = [...new Set([...held.map((k) => HELD_CATEGORIES[k]!.retention), ...f.activities.map((a) => a.retentionCategory)].filter((c): c is string => !!c))].sort();

  return {
    purposes: [...f.activities]
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((a) => ({ activity: a.key, purpose: a.purpose, legalBasis: a.legalBasis, legalBasisLabel: LEGAL_BASIS_LABEL[a.legalBasis] ?? a.legalBasis, retention: retention(a.retentionCategory) })),
    categories: {
      held: held.map((k) => ({ category: k, description: HELD_CATEGORIES[k]!.label, rows: f.heldCounts[k]! })),
      register: [...new Set(f.activities.flatMap((a) => a.dataCategories))].sort(),
    },
    recipients,
    retention: retentionCategories.map((c) => retention(c) ?? { category: c, period: null, unit: null, description: 'no period recorded' }),
    sources: held.map((k) => ({ category: k, source: HELD_CATEGORIES[k]!.source, description: SOURCE_LABEL[HELD_CATEGORIES[k]!.source] })),
    rights: RIGHTS.map((r) => ({ ...r })),
    complaint: { right: 'lodge_complaint', article: 'Art. 77 GDPR', description: COMPLAINT_NOTICE },
    automatedDecisionMaking: { exists: false, description: 'We make no decisions based solely on automated processing, including profiling, that produce legal effects concerning you or similarly significantly affect you (Art. 22 GDPR).' },
    transferSafeguards: recipients.map((r) => ({
      recipient: r.name,
      countries: r.countries,
      outsideEea: r.outsideEea,
      mechanism: r.transferMechanism,
      description: r.transferLabel ?? 'not recorded in our register',
      sccDate: r.sccDate,
      registerEntry: r.registerEntry,
    })),
  };
}

export type Article15Section = ReturnType<typeof article15Section>;
