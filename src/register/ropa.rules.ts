/**
 * The record of processing activities (GDPR article 30(1); issue 25, part 3;
 * docs/processing-register.md), pure: the facts of the register and the
 * retention policies in, one row per processing activity and the CSV out.
 * ropa.render.ts lays the same rows out as a PDF.
 *
 * Everything comes from the register and retention_policies, never from a
 * request. An activity names the recipients of the kinds it states
 * (recipientKinds); one that states none names every recipient of the
 * register (a superset, never an omission). The PDF also lists the
 * recipients once.
 */
import { csvLine } from '../shared/csv.rules';
import { EEA_COUNTRIES, missingRecipientFacts, type RecipientFacts } from './register.rules';

export interface RopaController {
  name: string;
  address: string;
  country: string;
  vatId: string;
  email: string;
}

export interface RopaActivity {
  key: string;
  purpose: string;
  legalBasis: string;
  dataSubjectCategories: readonly string[];
  dataCategories: readonly string[];
  systems: readonly string[];
  retentionCategory: string | null;
  /** The kinds of recipient it discloses data to; null: not stated (every recipient is named). */
  recipientKinds?: readonly string[] | null;
}

export interface RopaRecipient extends RecipientFacts {
  name: string;
  kind: string;
  transferNote: string | null;
}

export interface RopaPolicy {
  category: string;
  period: number;
  unit: string;
  action: string;
}

export interface RopaFacts {
  controller: RopaController;
  /** 'YYYY-MM-DD' (UTC): the day the record was generated. */
  generatedOn: string;
  activities: readonly RopaActivity[];
  recipients: readonly RopaRecipient[];
  policies: readonly RopaPolicy[];
}

export interface RopaTransfer {
  recipient: string;
  /** The recipient's countries outside the EEA. */
  countries: string[];
  safeguard: string;
}

export interface RopaRow {
  activity: string;
  purpose: string;
  legalBasis: string;
  dataSubjectCategories: string[];
  dataCategories: string[];
  recipientCategories: string[];
  recipients: string[];
  transfers: RopaTransfer[];
  erasureTimeLimit: string;
  systems: string[];
}

/** Where the general description of the security measures (art. 30(1)(g)) is kept. */
export const SECURITY_MEASURES =
  'General description of the technical and organisational security measures: docs/security.md (who reaches what, what stops them, and the setting behind each limit).';

const LEGAL_BASIS_LABELS: Record<string, string> = {
  consent: 'consent (art. 6(1)(a))',
  contract: 'performance of a contract (art. 6(1)(b))',
  legal_obligation: 'legal obligation (art. 6(1)(c))',
  vital_interests: 'vital interests (art. 6(1)(d))',
  public_task: 'public task (art. 6(1)(e))',
  legitimate_interests: 'legitimate interests (art. 6(1)(f))',
};
const KIND_LABELS: Record<string, string> = {
  model_provider: 'model provider',
  payment_processor: 'payment processor',
  email_service: 'email service',
  hosting: 'hosting',
  other: 'other',
};
const ROLE_LABELS: Record<string, string> = { processor: 'processor', sub_processor: 'sub-processor', independent_controller: 'independent controller' };
const ACTION_LABELS: Record<string, string> = { delete: 'then deleted', minimise: 'then minimised', erase_contact: 'then contact details erased' };

const labelOr = (labels: Record<string, string>, v: string | null, none: string) => (v === null ? none : (labels[v] ?? v));

export const legalBasisLabel = (v: string) => labelOr(LEGAL_BASIS_LABELS, v, v);
const kindLabel = (v: string) => labelOr(KIND_LABELS, v, v);
const roleLabel = (v: string | null) => labelOr(ROLE_LABELS, v, 'role not recorded');
const countriesText = (cs: readonly string[]) => (cs.length ? cs.join(', ') : 'countries not recorded');

/** The time limit for erasure of a retention category: its period and what happens at its end. */
export function erasureTimeLimit(category: string | null, policies: readonly RopaPolicy[]): string {
  if (category === null) return 'no retention policy recorded';
  const p = policies.find((x) => x.category === category);
  if (!p) return `retention category ${category}: no policy recorded`;
  const period = p.unit === 'years_after_year_end' ? `${p.period} years after the end of the calendar year` : p.unit === 'days' ? `${p.period} days` : `${p.period} ${p.unit}`;
  return `${period}, ${ACTION_LABELS[p.action] ?? `then ${p.action}`} (retention category ${p.category})`;
}

/** The safeguard of a transfer as the register records it; a missing one is said plainly. */
export function safeguardOf(r: RopaRecipient): string {
  const note = r.transferNote ? `: ${r.transferNote}` : '';
  switch (r.transferMechanism) {
    case 'standard_contractual_clauses':
      return `standard contractual clauses of ${r.sccDate ?? 'an unrecorded date'}${note}`;
    case 'adequacy_decision':
      return `adequacy decision${note}`;
    case 'binding_corporate_rules':
      return `binding corporate rules${note}`;
    case 'other_basis':
      return `another basis${note}`;
    default:
      return 'NO SAFEGUARD RECORDED';
  }
}

/** Recipients that process outside the EEA, with those countries and the safeguard. */
export function thirdCountryTransfers(recipients: readonly RopaRecipient[]): RopaTransfer[] {
  return recipients
    .map((r) => ({ r, third: r.countries.filter((c) => !EEA_COUNTRIES.includes(c)) }))
    .filter(({ third }) => third.length > 0)
    .map(({ r, third }) => ({ recipient: r.name, countries: third, safeguard: safeguardOf(r) }));
}

/** The categories of recipients: kind and role, with the countries of all recipients in it. */
export function recipientCategories(recipients: readonly RopaRecipient[]): string[] {
  const groups = new Map<string, Set<string>>();
  for (const r of recipients) {
    const key = `${kindLabel(r.kind)} (${roleLabel(r.role)})`;
    const set = groups.get(key) ?? new Set<string>();
    for (const c of r.countries) set.add(c);
    groups.set(key, set);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, cs]) => `${k}: ${countriesText([...cs].sort())}`);
}

/** One recipient on one line: name, kind, role, countries, and what its entry lacks. */
export function recipientLine(r: RopaRecipient): string {
  const missing = missingRecipientFacts(r);
  return `${r.name} (${kindLabel(r.kind)}, ${roleLabel(r.role)}; ${countriesText(r.countries)})${missing.length ? ` [entry incomplete: ${missing.join(', ')}]` : ''}`;
}

/** One row per processing activity, in the order given (the data reads them by key). */
export function ropaRows(facts: RopaFacts): RopaRow[] {
  return facts.activities.map((a) => {
    const kinds = a.recipientKinds ?? null;
    const own = kinds ? facts.recipients.filter((r) => kinds.includes(r.kind)) : facts.recipients;
    return {
      activity: a.key,
      purpose: a.purpose,
      legalBasis: legalBasisLabel(a.legalBasis),
      dataSubjectCategories: [...a.dataSubjectCategories],
      dataCategories: [...a.dataCategories],
      recipientCategories: recipientCategories(own),
      recipients: own.map(recipientLine),
      transfers: thirdCountryTransfers(own),
      erasureTimeLimit: erasureTimeLimit(a.retentionCategory, facts.policies),
      systems: [...a.systems],
    };
  });
}

/** The controller's contact on one line. */
export const controllerContact = (c: RopaController) => [...c.address.split(/\r?\n/).map((l) => l.trim()).filter(Boolean), c.country, c.email].join(', ');

export const transferText = (t: RopaTransfer) => `${t.recipient} (${t.countries.join(', ')}): ${t.safeguard}`;

export const ROPA_CSV_HEADER = [
  'generated_on',
  'controller',
  'controller_contact',
  'activity',
  'purpose',
  'legal_basis',
  'data_subject_categories',
  'personal_data_categories',
  'recipient_categories',
  'recipients',
  'third_country_transfers',
  'erasure_time_limit',
  'systems',
  'security_measures',
] as const;

/** A list in one cell: "; " between entries (entries are single lines; the register refuses line breaks). */
const joined = (xs: readonly string[]) => xs.join('; ');

/**
 * The record as CSV: a header, then one row per activity, lists joined with
 * "; " in their cell. Every cell goes through csvCell, so a value that starts
 * like a formula cannot run in a spreadsheet.
 */
export function ropaCsv(facts: RopaFacts): string {
  const c = facts.controller;
  const lines = [csvLine(ROPA_CSV_HEADER)];
  for (const r of ropaRows(facts)) {
    lines.push(
      csvLine([
        facts.generatedOn,
        c.name,
        controllerContact(c),
        r.activity,
        r.purpose,
        r.legalBasis,
        joined(r.dataSubjectCategories),
        joined(r.dataCategories),
        joined(r.recipientCategories),
        joined(r.recipients),
        r.transfers.length ? joined(r.transfers.map(transferText)) : 'none',
        r.erasureTimeLimit,
        joined(r.systems),
        SECURITY_MEASURES,
      ]),
    );
  }
  return lines.join('');
}
