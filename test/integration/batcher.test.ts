import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lsnValue, MeteringBatcher, settleAwaiting, type WalMark } from '../../src/metering/batcher';
import { MeteringJournal } from '../../src/metering/journal';
import { usageEventStore } from '../../src/metering/metering.service';
import { usageRecord, type UsageRecord } from '../../src/metering/record';
import { silentLogger, testConfig, testDb } from '../helpers/env';

/**
 * The batcher commits its inserts asynchronously (no wait for the WAL flush,
 * which a busy disk can stall) and keeps each journal segment until
 * PostgreSQL has flushed the segment's commit: a crash of the database before
 * that finds the segment still there.
 */
const db = testDb(testConfig());
afterAll(() => db.destroy());

const accountId = randomUUID();
const record = (requestId: string): UsageRecord =>
  usageRecord({
    requestId, occurredAt: new Date().toISOString(), finishedAt: new Date().toISOString(), accountId, apiKeyId: randomUUID(), userId: null,
    endpoint: 'chat.completions', model: 'm', provider: 'p', upstreamModel: 'u', priceId: null, statusCode: 200, errorType: null, stream: false,
    inputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 2, reasoningTokens: 0, usageEstimated: false, cost: '0.1', currency: 'USD',
    latencyMs: 5, upstreamLatencyMs: 4, sourceIp: '127.0.0.1', userAgent: 'test', gatewayInstance: 'batcher-test',
  });
const append = (journal: MeteringJournal, id: string) => new Promise<void>((resolve, reject) => journal.append(record(id), (err) => (err ? reject(err) : resolve())));
const stored = async () => (await db('usage_events').where({ account_id: accountId }).orderBy('request_id').pluck('request_id')) as string[];

describe('metering batcher', () => {
  it('orders WAL positions as PostgreSQL does, not as strings', () => {
    expect(lsnValue('0/FFFFFFFF') < lsnValue('1/0')).toBe(true);
    expect(lsnValue('9/FFFFFFFF') < lsnValue('16/B374D848')).toBe(true);
    expect(lsnValue('16/B374D848')).toBe(lsnValue('16/b374d848'));
    expect(() => lsnValue('16-B3')).toThrow(/WAL position/);
  });

  it('deletes a waiting segment once flushed past, and inserts it again if the server restarted meanwhile', () => {
    const run1 = '2026-11-27 05:00:00+00';
    const awaiting = new Map<string, WalMark>([
      ['flushed', { lsn: lsnValue('1/100'), server: run1 }],
      ['exactly', { lsn: lsnValue('1/200'), server: run1 }],
      ['pending', { lsn: lsnValue('1/300'), server: run1 }],
    ]);
    expect(settleAwaiting(awaiting, { lsn: lsnValue('1/200'), server: run1 })).toEqual({ durable: ['flushed', 'exactly'], again: [] });
    // After a restart the new run's WAL passes positions whose commits the crash lost: nothing counts as durable.
    expect(settleAwaiting(awaiting, { lsn: lsnValue('9/0'), server: '2026-11-27 06:00:00+00' })).toEqual({ durable: [], again: ['flushed', 'exactly', 'pending'] });
  });

  it('inserts segments with rows visible at once, and at stop deletes them only once their commits are flushed', async () => {
    const journal = new MeteringJournal(fs.mkdtempSync(path.join(os.tmpdir(), 'batcher-')));
    journal.open();
    const batcher = new MeteringBatcher({ journal, events: usageEventStore(db), signal: async () => undefined, logger: silentLogger, intervalMs: 60_000 });

    for (const id of ['r1', 'r2', 'r3']) await append(journal, `${accountId}-${id}`);
    await batcher.flush();
    // Visible at once (an asynchronous commit is a commit); the segment may still wait for the flush.
    expect(await stored()).toEqual(['r1', 'r2', 'r3'].map((id) => `${accountId}-${id}`));
    const walAfterInsert = lsnValue((await db.raw(`SELECT pg_current_wal_insert_lsn()::text AS lsn`)).rows[0].lsn);

    for (const id of ['r4', 'r5']) await append(journal, `${accountId}-${id}`);
    await batcher.stop();
    expect(journal.closedSegments()).toEqual([]);
    expect(journal.pendingBytes()).toBe(0);
    // Deleted because the rows are durable: the WAL is flushed past their commits.
    expect(lsnValue((await db.raw(`SELECT pg_current_wal_flush_lsn()::text AS lsn`)).rows[0].lsn) >= walAfterInsert).toBe(true);
    expect(await stored()).toHaveLength(5);
    journal.close();
  });
});
