import type { Db, Trx } from '../db/knex';
import { noNul, safeErrorMessage, sqlState } from './dataErrors.rules';
import { usageEventRow, type UsageRecord } from './record';

/**
 * The metering batcher's statements (src/metering/batcher.ts): usage_events
 * inserts, committed asynchronously (synchronous_commit = off; the batcher's
 * journal makes that safe), the WAL positions that tell when they are
 * durable, day partitions, and metering_quarantine for refused records.
 */

const INSERT_CHUNK = 500;
const EVENT_COLUMNS = Object.keys(usageEventRow({} as UsageRecord)).join(', ');
const INSERT_EVENTS_SQL = `INSERT INTO usage_events (${EVENT_COLUMNS})
  SELECT ${EVENT_COLUMNS} FROM jsonb_populate_recordset(NULL::usage_events, ?::jsonb)
  ON CONFLICT (request_id, occurred_at) DO NOTHING`;

async function insertChunk(trx: Trx, records: UsageRecord[]): Promise<void> {
  await trx.raw(INSERT_EVENTS_SQL, [JSON.stringify(records.map(usageEventRow))]);
}

/** Inserts records in one transaction committed asynchronously; a record refused refuses them all. */
export async function insertUsageEvents(db: Db, records: UsageRecord[]): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw(`SET LOCAL synchronous_commit = off`);
    // One JSON parameter per chunk, expanded by PostgreSQL: building a multi-row
    // INSERT with ~28 bindings per row was a visible share of the gateway's own
    // CPU under load, on the same event loop that serves requests.
    for (let i = 0; i < records.length; i += INSERT_CHUNK) {
      await insertChunk(trx, records.slice(i, i + INSERT_CHUNK));
    }
  });
}

/**
 * The metadata of a refused record as it is kept: the record without its
 * network facts and user id (personal data that retention and deletion would
 * otherwise have to find here too), and nothing else: a record never holds
 * request or response content.
 */
function quarantineRow(r: UsageRecord, err: unknown) {
  const kept: Partial<UsageRecord> = { ...r };
  delete kept.sourceIp;
  delete kept.userAgent;
  delete kept.userId;
  return {
    request_id: noNul(r.requestId).slice(0, 200),
    occurred_at: noNul(r.occurredAt).slice(0, 64),
    account_id: r.accountId == null ? null : noNul(r.accountId).slice(0, 64),
    gateway_instance: r.gatewayInstance == null ? null : noNul(r.gatewayInstance).slice(0, 200),
    record: JSON.stringify(Object.fromEntries(Object.entries(kept).map(([k, v]) => [k, typeof v === 'string' ? noNul(v) : v]))),
    error_code: sqlState(err) ?? 'unknown',
    error_message: safeErrorMessage(err),
  };
}

/**
 * Inserts records with each chunk under a savepoint, a chunk refused for a data
 * reason (`isRefused`) halved until the refused records stand alone; those go to
 * metering_quarantine in the same transaction as the rest, so the records are
 * done in one commit. Returns the refused records with their errors.
 */
export async function insertUsageEventsSettingAside(
  db: Db,
  records: UsageRecord[],
  isRefused: (err: unknown) => boolean,
): Promise<{ record: UsageRecord; err: unknown }[]> {
  const refused: { record: UsageRecord; err: unknown }[] = [];
  await db.transaction(async (trx) => {
    await trx.raw(`SET LOCAL synchronous_commit = off`);
    const attempt = async (rows: UsageRecord[]): Promise<void> => {
      try {
        await trx.transaction((sp) => insertChunk(sp, rows));
      } catch (err) {
        if (!isRefused(err)) throw err;
        if (rows.length === 1) {
          refused.push({ record: rows[0]!, err });
          return;
        }
        const half = Math.ceil(rows.length / 2);
        await attempt(rows.slice(0, half));
        await attempt(rows.slice(half));
      }
    };
    for (let i = 0; i < records.length; i += INSERT_CHUNK) await attempt(records.slice(i, i + INSERT_CHUNK));
    if (refused.length > 0) {
      await trx('metering_quarantine')
        .insert(refused.map(({ record, err }) => quarantineRow(record, err)))
        .onConflict(['request_id', 'occurred_at'])
        .ignore();
    }
  });
  return refused;
}

/** The server's WAL insert or flush position ('16/B374D848'), and which run of the server it is (pg_postmaster_start_time). */
export async function walPosition(db: Db, position: 'insert' | 'flush'): Promise<{ lsn: string; server: string }> {
  return (await db.raw(`SELECT pg_current_wal_${position}_lsn()::text AS lsn, pg_postmaster_start_time()::text AS server`)).rows[0];
}

export async function ensureUsageEventsPartition(db: Db, day: string): Promise<void> {
  await db.raw('SELECT ensure_usage_events_partition(?::date)', [day]);
}
