/**
 * Custom search attributes, declared once. The dev server registers them with
 * `--search-attribute`; on another cluster `mixroute temporal setup`
 * (`ensureSearchAttributes`) adds the missing ones. They hold ids, periods and statuses only, never personal
 * data: search attributes are stored unencrypted and cannot be erased.
 */
export type SearchAttributeKind = 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

export const SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; kind: SearchAttributeKind }> = [
  { name: 'MixrouteKind', kind: 'Keyword' }, // which business process: metering, invoice-run, dsr, ...
  { name: 'BillingPeriod', kind: 'Keyword' }, // YYYY-MM of invoice runs and invoices
  { name: 'ProcessStatus', kind: 'Keyword' }, // the process's own status (running, done, failed, ...)
  { name: 'DsrType', kind: 'Keyword' },
  { name: 'DsrDeadline', kind: 'Datetime' },
  { name: 'DsrOverdue', kind: 'Bool' }, // one filter for compliance staff: DsrOverdue = true
];

/** The CLI flags that register them on a dev server. */
export function devServerSearchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${a.kind}`]);
}
