import type { DbOrTrx } from '../db/knex';
import type { ActivityFact, Article15Facts, ProviderReceived, RecipientEntry, RetentionFact } from './accessAnswer.rules';
import type { Subject } from './rights.rules';

/**
 * The facts an article-15 section is built from (accessAnswer.rules.ts): the
 * register, the retention policies, and what concerns the person. Every query
 * is one statement over sets, bounded; none reads free text from requests.
 */

/** More providers than this is not one person's traffic; the answer stays bounded. */
const MAX_PROVIDERS = 500;

interface EntryRow {
  name: string;
  kind: string;
  role: string | null;
  countries: string[] | null;
  transfer_mechanism: string | null;
  scc_date: string | null;
  agreement_ref: string | null;
}

const entry = (r: EntryRow): RecipientEntry => ({
  name: r.name,
  kind: r.kind,
  role: r.role,
  countries: r.countries ?? [],
  transferMechanism: r.transfer_mechanism,
  sccDate: r.scc_date,
  agreementRef: r.agreement_ref,
});

export async function activities(db: DbOrTrx): Promise<ActivityFact[]> {
  const rows = await db('processing_activities').orderBy('key').select('key', 'purpose', 'legal_basis', 'data_subject_categories', 'data_categories', 'retention_category');
  return rows.map((r) => ({
    key: r.key,
    purpose: r.purpose,
    legalBasis: r.legal_basis,
    dataSubjectCategories: r.data_subject_categories,
    dataCategories: r.data_categories,
    retentionCategory: r.retention_category,
  }));
}

export const retentionPolicies = (db: DbOrTrx): Promise<RetentionFact[]> => db('retention_policies').orderBy('category').select('category', 'period', 'unit', 'action');

/** Register entries of the kinds that are not model providers (payment processor, email service, hosting, other). */
export async function otherRecipients(db: DbOrTrx): Promise<RecipientEntry[]> {
  const rows: EntryRow[] = await db('recipients')
    .whereNot({ kind: 'model_provider' })
    .orderBy('name')
    .select('name', 'kind', 'role', 'countries', 'transfer_mechanism', db.raw(`to_char(scc_date, 'YYYY-MM-DD') AS scc_date`), 'agreement_ref');
  return rows.map(entry);
}

/**
 * The distinct providers the person's requests went to, scoped as the package's
 * provider list is (privacy.data.ts providersUsed: their users' events and
 * their member accounts'), each with its register entry or null. A provider
 * name in usage metadata with no providers row, or no recipients row, still
 * comes back (entry null).
 */
export async function providersReceived(db: DbOrTrx, subject: Subject): Promise<ProviderReceived[]> {
  if (!subject.userIds.length && !subject.memberAccountIds.length) return [];
  const { rows } = await db.raw(
    `SELECT u.provider, r.id IS NOT NULL AS has_entry, u.provider AS name, r.kind, r.role, r.countries, r.transfer_mechanism,
            to_char(r.scc_date, 'YYYY-MM-DD') AS scc_date, r.agreement_ref
       FROM (SELECT DISTINCT provider FROM usage_events
              WHERE (user_id = ANY(?::uuid[]) OR account_id = ANY(?::uuid[])) AND provider IS NOT NULL
              ORDER BY provider LIMIT ?) u
       LEFT JOIN providers p ON p.name = u.provider
       LEFT JOIN recipients r ON r.provider_id = p.id
      ORDER BY u.provider`,
    [subject.userIds, subject.memberAccountIds, MAX_PROVIDERS],
  );
  return (rows as (EntryRow & { provider: string; has_entry: boolean })[]).map((r) => ({ provider: r.provider, entry: r.has_entry ? entry(r) : null }));
}

/** Whether any account whose billing contact they are has a payment. */
export async function hasPayments(db: DbOrTrx, subject: Subject): Promise<boolean> {
  if (!subject.billingAccountIds.length) return false;
  return !!(await db('payments').whereIn('account_id', subject.billingAccountIds).first(db.raw('1 AS x')));
}

/** Every fact of the section, for the subject whose package holds these tables. */
export async function article15Facts(db: DbOrTrx, subject: Subject, email: string | null, tables: Record<string, readonly unknown[]>): Promise<Article15Facts> {
  const [acts, policies, others, providers, paid] = await Promise.all([
    activities(db),
    retentionPolicies(db),
    otherRecipients(db),
    providersReceived(db, subject),
    hasPayments(db, subject),
  ]);
  return {
    activities: acts,
    policies,
    otherRecipients: others,
    providersReceived: providers,
    heldCounts: Object.fromEntries(Object.entries(tables).map(([k, v]) => [k, v.length])),
    hasPayments: paid,
    // The answer, with the package link, goes to this address by email (and so
    // did the acknowledgement): the email service receives it whenever there is one.
    emailed: email !== null && email !== '',
  };
}
