/**
 * The processing register's rules, pure (issue 25; docs/processing-register.md):
 * what a complete recipient entry is, the countries of the EEA, and whether a
 * recipient's processing stays within a set of countries.
 */

export const RECIPIENT_KINDS = ['model_provider', 'payment_processor', 'email_service', 'hosting', 'other'] as const;
export const RECIPIENT_ROLES = ['processor', 'sub_processor', 'independent_controller'] as const;
export const TRANSFER_MECHANISMS = ['not_needed', 'adequacy_decision', 'standard_contractual_clauses', 'binding_corporate_rules', 'other_basis'] as const;
export const LEGAL_BASES = ['contract', 'legal_obligation', 'legitimate_interests', 'consent', 'vital_interests', 'public_task'] as const;

/** The EEA: the 27 EU member states plus Iceland, Liechtenstein and Norway (ISO 3166-1 alpha-2). */
export const EEA_COUNTRIES: readonly string[] = [
  'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE',
  'IS', 'LI', 'NO',
];

/** Named sets an account's region policy may use instead of listing countries. */
export const NAMED_REGIONS: Readonly<Record<string, readonly string[]>> = { EEA: EEA_COUNTRIES };

/** A country code as the register stores it: two capital letters. */
export const isCountryCode = (v: string) => /^[A-Z]{2}$/.test(v);

export interface RecipientFacts {
  role: string | null;
  countries: readonly string[];
  transferMechanism: string | null;
  sccDate: string | null;
  agreementRef: string | null;
}

/**
 * What is missing from a recipient's entry for an access answer or a record of
 * processing to name it with its safeguard; empty when complete. A transfer
 * outside the EEA needs a mechanism other than `not_needed`.
 */
export function missingRecipientFacts(r: RecipientFacts): string[] {
  const missing: string[] = [];
  if (!r.role) missing.push('role');
  if (r.countries.length === 0) missing.push('countries');
  if (!r.transferMechanism) missing.push('transfer_mechanism');
  else if (r.transferMechanism === 'not_needed' && r.countries.some((c) => !EEA_COUNTRIES.includes(c))) missing.push('transfer_mechanism (a country outside the EEA needs one)');
  if (r.transferMechanism === 'standard_contractual_clauses' && !r.sccDate) missing.push('scc_date');
  if (!r.agreementRef) missing.push('agreement_ref');
  return missing;
}

/** Whether every country a recipient processes in lies in `allowed`; a recipient with no countries recorded never does. */
export function withinRegion(countries: readonly string[], allowed: ReadonlySet<string>): boolean {
  return countries.length > 0 && countries.every((c) => allowed.has(c));
}
