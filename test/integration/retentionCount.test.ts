import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import type { Db } from '../../src/db/knex';
import { migrateLatest } from '../../src/db/migrate';
import { expireUsageEvents } from '../../src/retention/expiry.service';
import { testConfig, testDb } from '../helpers/env';
import { ownDatabaseUrl } from '../helpers/ownDatabase';

/**
 * Usage expiry counts a day's rows in slices of its heap (TID ranges) with
 * pauses between, so the scan never holds a core for long: the slices must
 * add up to exactly the day, whatever the slice size, including the last,
 * partial slice. A database of its own: expiry drops partitions.
 */
const config = testConfig({ DATABASE_URL: ownDatabaseUrl('retention_count') });
let db: Db;
const held = randomUUID();
const others = Array.from({ length: 5 }, () => randomUUID());
const ROWS = 3_001;

beforeAll(async () => {
  await ensureDatabase(config.databaseUrl);
  db = testDb(config);
  await migrateLatest(db);
  await db('accounts').insert({ id: held, name: 'Held', country: 'DE', plan: 'postpaid' });
  await db('legal_holds').insert({ account_id: held, reason: 'test hold', created_by: 'test' });
  await db('reconciliation_reports').insert({
    id: randomUUID(), workflow_id: 'test:2026-01', scope: 'period', label: '2026-01', window_start: new Date(), window_end: new Date(),
    trigger: 'staff', requested_by: 'test', status: 'finished', verdict: 'clean',
  });
  await db.raw(`SELECT ensure_usage_events_partition('2026-01-10'::date)`);
  // Every seventh event is the held account's; all settled.
  await db.raw(
    `INSERT INTO usage_events (request_id, occurred_at, finished_at, settled_at, account_id, api_key_id, endpoint, status_code, stream, latency_ms, gateway_instance, user_agent)
     SELECT 'req-count-' || g, t, t, t + interval '1 minute', CASE WHEN g % 7 = 0 THEN ?::uuid ELSE (?::uuid[])[g % 5 + 1] END, gen_random_uuid(), 'chat.completions', 200, false, 1, 'test', repeat('x', 120)
       FROM generate_series(1, ?) g, LATERAL (SELECT '2026-01-10T00:00:00Z'::timestamptz + g * interval '1 second' AS t) s`,
    [held, others, ROWS],
  );
}, 60_000);

afterAll(async () => {
  await db?.destroy();
  await dropDatabase(config.databaseUrl);
});

describe('usage expiry counting a day in slices', () => {
  it('adds the slices up to exactly the day, pausing between them', async () => {
    const pages = Number((await db.raw(`SELECT pg_relation_size('usage_events_20260110') / 8192 AS p`)).rows[0].p);
    // Several slices, the last one partial: the slice size is picked so that it does not
    // divide the table, whose size in pages follows the row layout (it changed with bigint tokens).
    const slicePages = [7, 6, 5, 8, 9, 11].find((n) => pages % n !== 0 && pages > 3 * n);
    expect(slicePages).toBeDefined();
    const pauses: string[] = [];
    const out = await expireUsageEvents(
      { db, now: new Date(), batchSize: 100, pauseFactor: 0.5, countSlicePages: slicePages!, onPause: (_ms, after) => pauses.push(after) },
      new Date('2026-01-11T00:00:00Z'),
    );
    const heldRows = Math.floor(ROWS / 7);
    expect(out).toMatchObject({ expiredPartitions: 1, expiredRows: ROWS - heldRows, keptHold: heldRows });
    expect(await db('usage_events_retained').count('* as n').first()).toEqual({ n: heldRows });
    // A pause after every slice but the last.
    expect(pauses.filter((p) => p === 'count')).toHaveLength(Math.ceil(pages / slicePages!) - 1);
  });
});
