import { strToU8, zipSync } from 'fflate';

/**
 * The archive of an access or portability package: data.json with
 * everything, plus one CSV per table.
 */

/**
 * One CSV cell. A spreadsheet runs a cell that starts with = + - @ (or a tab or
 * carriage return before one) as a formula, and the subject's own values (a
 * name, a user agent) can be anything: such cells get a leading single quote
 * (OWASP "CSV injection"). Plain numbers such as -1.50 stay numbers: they cannot
 * be a formula, and amounts must stay readable as amounts.
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !/^-\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: Record<string, unknown>[]): string {
  if (!rows.length) return '';
  const cols = Object.keys(rows[0]!);
  return [cols.map(csvCell).join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

/** One archive: data.json with everything, plus one CSV per table. */
export function packageArchive(document: Record<string, unknown>, tables: Record<string, Record<string, unknown>[]>): Uint8Array {
  const files: Record<string, Uint8Array> = { 'data.json': strToU8(JSON.stringify(document, null, 2)) };
  for (const [name, rows] of Object.entries(tables)) files[`${name}.csv`] = strToU8(toCsv(rows));
  return zipSync(files, { level: 6 });
}
