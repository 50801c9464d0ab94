import fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { ConfigError, type DatabaseSslSettings } from '../config';

/**
 * NUMERIC (oid 1700) stays a string at the driver edge; repositories turn it
 * into Decimal. A JS number would silently lose cents on large balances.
 * BIGINT (oid 20) becomes a number only while it is exactly representable.
 * DATE (oid 1082) stays its 'YYYY-MM-DD' text.
 */
const NUMERIC_OID = 1700;
const INT8_OID = 20;
const DATE_OID = 1082;
pg.types.setTypeParser(NUMERIC_OID, (value: string) => value);
// A DATE is a calendar day ('2026-11-26'); a JS Date would shift it by the process's time zone.
pg.types.setTypeParser(DATE_OID, (value: string) => value);
pg.types.setTypeParser(INT8_OID, (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`bigint ${value} exceeds the safe integer range`);
  return n;
});

export type Db = Knex;
export type Trx = Knex.Transaction;
/** Every repository function takes an optional transaction so services can compose writes. */
export type DbOrTrx = Knex | Knex.Transaction;

export interface DbOptions {
  databaseUrl: string;
  poolMax?: number;
  applicationName?: string;
  /** Where knex's own warnings go (connection errors during an outage); default: nowhere. */
  onWarning?: (message: string) => void;
  /** TLS to the server (config.databaseSsl); default: plain text. */
  ssl?: DatabaseSslSettings;
}

/**
 * The driver's TLS options for DATABASE_SSL_MODE:
 * - disable: plain text;
 * - require: encrypted, but the server's certificate is not checked, so anyone on the
 *   path who can answer for the server's address can read and change the traffic;
 * - verify-full: the certificate must chain to DATABASE_SSL_CA (or the system's CAs when
 *   unset) and name the host of DATABASE_URL (Node's default host check).
 * Reads the CA file now, so a missing file fails at start with the setting named.
 */
export function pgSslOptions(settings: DatabaseSslSettings | undefined): false | ConnectionOptions {
  if (!settings || settings.mode === 'disable') return false;
  if (settings.mode === 'require') return { rejectUnauthorized: false };
  if (!settings.caFile) return { rejectUnauthorized: true };
  let ca: Buffer;
  try {
    ca = fs.readFileSync(settings.caFile);
  } catch (err) {
    throw new ConfigError([`DATABASE_SSL_CA: cannot read ${settings.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError([`DATABASE_SSL_CA: ${settings.caFile} holds no PEM certificate`]);
  return { rejectUnauthorized: true, ca };
}

export function createDb({ databaseUrl, poolMax = 10, applicationName = 'mixroute', onWarning, ssl }: DbOptions): Db {
  // knex logs warnings to the console by default; they carry only connection errors and stacks.
  const warn = (message: unknown) => onWarning?.(String(message).split('\n')[0]!);
  return knexFactory({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: applicationName, ssl: pgSslOptions(ssl) },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
    // knex puts a failed statement with its bound values into the error's message; those
    // values can be personal data (emails, addresses) and errors end up in logs.
    compileSqlOnError: false,
    log: { warn, error: warn, deprecate: warn, debug: () => undefined },
  });
}

/** The database URL with any password removed, for messages and logs. */
export function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}
