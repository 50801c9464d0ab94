/**
 * The rights of the privacy policy (section 5 of its promise), the grounds on
 * which a request may be refused or limited, and what the law makes us keep.
 * Pure data: workflows import it.
 */

export const DSR_TYPES = ['access', 'portability', 'correction', 'deletion', 'restriction', 'objection', 'consent_withdrawal', 'payload'] as const;
export type DsrType = (typeof DSR_TYPES)[number];

export const DSR_TYPE_LABEL: Record<DsrType, string> = {
  access: 'access, review and copy of your data',
  portability: 'a portable copy of the data you provided and your usage metadata',
  correction: 'correction of your data',
  deletion: 'deletion of your data',
  restriction: 'restriction of processing',
  objection: 'objection to processing',
  consent_withdrawal: 'withdrawal of consent',
  payload: 'the content of your prompts and completions',
};

/** The only grounds on which a request may be refused or limited (privacy policy, right 5). */
export const REFUSAL_GROUNDS = [
  'identity_not_verified',
  'security',
  'trade_secrets',
  'third_party_rights',
  'technical_feasibility',
  'law',
  'manifestly_unfounded_or_excessive',
] as const;
export type RefusalGround = (typeof REFUSAL_GROUNDS)[number];

export const REFUSAL_GROUND_LABEL: Record<RefusalGround, string> = {
  identity_not_verified: 'we could not verify your identity',
  security: 'answering would endanger the security of our systems or of other people',
  trade_secrets: 'answering would disclose trade secrets',
  third_party_rights: "answering would affect other people's rights and freedoms",
  technical_feasibility: 'it is not technically feasible',
  law: 'the law requires or allows us to keep or withhold it',
  manifestly_unfounded_or_excessive: 'the request is manifestly unfounded or excessive',
};

export const DSR_STATUSES = ['received', 'verifying', 'in_progress', 'awaiting_approval', 'completed', 'partially_completed', 'refused', 'withdrawn', 'failed'] as const;
export type DsrStatus = (typeof DSR_STATUSES)[number];
/** The workflow has ended: nothing can change the request any more. */
export const FINAL_STATUSES: readonly DsrStatus[] = ['completed', 'partially_completed', 'refused', 'withdrawn', 'failed'];
/**
 * The subject has had an answer. A `failed` request (its fulfilment could not
 * succeed on the data) has not: it stays on the open list and its legal clock
 * keeps running until compliance staff answer another way.
 */
export const ANSWERED_STATUSES: readonly DsrStatus[] = ['completed', 'partially_completed', 'refused', 'withdrawn'];

/**
 * Why a fulfilment failed on its data (the ApplicationFailure type its activity
 * throws, non-retryable): the workflow records these as the `failed` state.
 */
export const FULFILMENT_FAILURE_REASONS = ['invalid_correction', 'correction_conflict', 'correction_data_error'] as const;
export type FulfilmentFailureReason = (typeof FULFILMENT_FAILURE_REASONS)[number];

/** Records that a deletion keeps, restricted, because the law requires them; erased when the period ends. */
export const RETAINED_BY_LAW = [
  { category: 'invoices', basis: 'German Commercial Code § 257 and Fiscal Code § 147 (accounting vouchers)', years: 8 },
  { category: 'payments', basis: 'German Fiscal Code § 147 (records of business transactions)', years: 8 },
  { category: 'ledger_entries', basis: 'German Commercial Code § 257 (books of account)', years: 10 },
  { category: 'tax_data', basis: 'German Fiscal Code § 147; VAT Act § 14b (VAT records, customer VAT id; kept with the invoices)', years: 8 },
] as const;

/** Fields a correction may change, per record. Anything else is refused as invalid input. */
export const CORRECTABLE_FIELDS = {
  user: ['name', 'email', 'phone', 'job_title'],
  account: ['name', 'billing_email', 'country', 'vat_id'],
} as const;

export const COMPLAINT_NOTICE =
  'You have the right to lodge a complaint with a supervisory authority, in particular in the EU member state of your habitual residence, place of work or of the alleged infringement (Art. 77 GDPR); in the UK with the Information Commissioner’s Office; in California with the California Privacy Protection Agency.';

export const PAYLOAD_NOTICE =
  'We do not retain the content of prompts, completions, images, audio or any other payload: it is processed in memory only and forwarded to the model provider. We cannot give you, correct or delete it because we do not have it. The providers your requests were routed to are listed below; you can ask them directly.';

export interface Refusal {
  /** What part of the request: '*' for all of it, or a category / field. */
  item: string;
  ground: RefusalGround;
}

/** The closing status from what was refused: nothing -> completed, all -> refused, some -> partially completed. */
export function outcomeStatus(refusals: readonly Refusal[]): 'completed' | 'partially_completed' | 'refused' {
  if (refusals.some((r) => r.item === '*')) return 'refused';
  return refusals.length ? 'partially_completed' : 'completed';
}

/** Whom a request concerns, as found by its email (see findSubject in privacy.data.ts). */
export interface Subject {
  userIds: string[];
  /** Accounts the subject belongs to as a user. */
  memberAccountIds: string[];
  /** Accounts whose billing contact the subject is (their invoices and payments concern them). */
  billingAccountIds: string[];
  /** Customer console invitations to the subject's address (or accepted by their users). */
  invitationIds?: string[];
}

export interface Correction {
  user?: Partial<Record<(typeof CORRECTABLE_FIELDS.user)[number], string | null>>;
  account?: Partial<Record<(typeof CORRECTABLE_FIELDS.account)[number], string | null>>;
}

/**
 * The accounts whose own fields a subject's correction may change: an
 * account's record belongs to the organisation, and its billing contact is
 * the one person who speaks for it here. Being a user of the account, or
 * naming it in the request, is not enough. Billing contact of several
 * accounts and none named: none (which one is meant is not ours to guess).
 */
export function correctableAccounts(subject: Subject, accountId: string | null): string[] {
  const own = subject.billingAccountIds.filter((id) => accountId === null || id === accountId);
  return own.length === 1 ? own : [];
}

/** Wrong codes a request may take before it needs filing again. */
export const MAX_CODE_ATTEMPTS = 5;
/** How far back an address's wrong codes (over all its requests of a type) count against it. */
export const FAILURE_WINDOW_MS = 86_400_000;
