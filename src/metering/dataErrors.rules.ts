/**
 * PostgreSQL errors that are the data's fault: metering sets the record aside
 * (src/metering/batcher.ts), settlement settles around the account
 * (settlementDataErrorCode in settlement.data.ts). Pure: they read the
 * error's SQLSTATE and message only.
 */

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Refused because of what a record holds: retrying the same record cannot succeed. */
export function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * PostgreSQL's own message without knex's prefix (the statement with its
 * bindings, which would be every record of the chunk) and without quoted
 * values other than plain identifiers and numbers: what is kept and logged
 * says which rule refused the record, not what it held.
 */
export function safeErrorMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const own = message.includes(' - ') ? message.slice(message.lastIndexOf(' - ') + 3) : message;
  return own.replace(/"[^"]*"/g, (q) => (/^"[A-Za-z0-9_.+-]{0,64}"$/.test(q) ? q : '"…"')).slice(0, 300);
}

/** PostgreSQL text and jsonb refuse NUL; a quarantined record must still go in. */
export const noNul = (v: unknown) => String(v ?? '').split('\u0000').join('');
