/**
 * The console's register forms as the register service's input (pure). A
 * form posts text; the service validates (zod) and its message is shown on
 * the page. Only the fields the service knows are passed on, so a posted
 * extra field is ignored rather than stored. A value that is not plain text
 * (a repeated field) is passed as it came, for the service to refuse.
 *
 * Adding: an empty optional field is left out, an empty required one is
 * passed empty (the service says what it needs). Changing: an empty field
 * stays as it is, and "-" clears a field that may be empty (as in the CLI).
 */

type Form = Record<string, unknown>;

const CLEAR = '-';

/** Drops the fields that are undefined (not given). */
function given(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Required text: as typed (trimmed by the service), '' when absent. */
const required = (v: unknown) => v ?? '';
/** Optional text: undefined when empty. */
const optional = (v: unknown) => (typeof v === 'string' ? (v.trim() === '' ? undefined : v) : v);
/** A field a change may clear: empty is unchanged, "-" is null. */
const clearable = (v: unknown) => (typeof v === 'string' && v.trim() === CLEAR ? null : optional(v));

/** "a, b" -> ['a', 'b']; an empty field is an empty list. */
function csv(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  return v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}
/** A list for a change: empty is unchanged. */
const csvChange = (v: unknown) => (optional(v) === undefined ? undefined : csv(v));
/** Ticked checkboxes: one value is a string, several an array, none absent. */
const ticked = (v: unknown): unknown => (v === undefined ? undefined : typeof v === 'string' ? [v] : v);

export function activityCreateInput(b: Form) {
  return given({
    key: required(b.key),
    purpose: required(b.purpose),
    legalBasis: required(b.legalBasis),
    dataSubjectCategories: csv(required(b.dataSubjectCategories)),
    dataCategories: csv(required(b.dataCategories)),
    systems: csv(required(b.systems)),
    retentionCategory: optional(b.retentionCategory),
    // None ticked: not stated (the record of processing then names every recipient).
    recipientKinds: ticked(b.recipientKinds),
    reason: required(b.reason),
  });
}

export function activityUpdateInput(b: Form) {
  return given({
    purpose: optional(b.purpose),
    legalBasis: optional(b.legalBasis),
    dataSubjectCategories: csvChange(b.dataSubjectCategories),
    dataCategories: csvChange(b.dataCategories),
    systems: csvChange(b.systems),
    retentionCategory: clearable(b.retentionCategory),
    recipientKinds: b.recipientKindsNotStated !== undefined ? null : ticked(b.recipientKinds),
    reason: required(b.reason),
  });
}

const recipientFacts = (b: Form, change: boolean) => {
  const f = change ? clearable : optional;
  return {
    role: f(b.role),
    countries: change && typeof b.countries === 'string' && b.countries.trim() === CLEAR ? [] : csvChange(b.countries),
    transferMechanism: f(b.transferMechanism),
    sccDate: f(b.sccDate),
    transferNote: f(b.transferNote),
    agreementRef: f(b.agreementRef),
    agreementSignedOn: f(b.agreementSignedOn),
    reason: required(b.reason),
  };
};

/** A model provider is named by its provider, any other kind by its name: whichever is filled is passed (both or neither: the service says which it needs). */
export function recipientCreateInput(b: Form) {
  return given({ kind: required(b.kind), provider: optional(b.provider), name: optional(b.name), ...recipientFacts(b, false) });
}

export function recipientUpdateInput(b: Form) {
  return given({ name: optional(b.name), ...recipientFacts(b, true) });
}

export function noticeDecisionInput(b: Form) {
  return { decision: required(b.decision), reason: required(b.reason) };
}

/** An id field: text or ''. */
export const idOf = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
