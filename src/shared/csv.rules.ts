/**
 * CSV for people who open it in a spreadsheet (the receivables aging report,
 * the accountants' export). Pure.
 */

/**
 * One CSV cell, quoted when it holds a comma, a quote or a line break. A
 * spreadsheet runs a cell that starts with = + - @ (or a tab or carriage
 * return) as a formula, and names come from outside: such cells get a leading
 * single quote (OWASP "CSV injection"). Plain numbers such as -12.50 stay
 * numbers: they cannot be a formula, and amounts must stay readable as amounts.
 */
export function csvCell(v: string | number | null | undefined): string {
  const s = v === null || v === undefined ? '' : String(v);
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV line (cells by csvCell), ending in a newline. */
export function csvLine(cells: readonly (string | number | null | undefined)[]): string {
  return cells.map(csvCell).join(',') + '\n';
}
