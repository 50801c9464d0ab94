import { afterAll, describe, expect, it } from 'vitest';
import { migrateLatest, migrationStatus } from '../../src/db/migrate';
import { testConfig, testDb } from '../helpers/env';

const config = testConfig();
const db = testDb(config);
afterAll(() => db.destroy());

describe('database', () => {
  it('is fully migrated, and migrating again applies nothing', async () => {
    expect(await migrateLatest(db)).toEqual([]);
    const status = await migrationStatus(db);
    expect(status.pending).toEqual([]);
    expect(status.applied.length).toBeGreaterThanOrEqual(4);
  });

  it('returns NUMERIC as an exact string, never a float', async () => {
    const { rows } = await db.raw<{ rows: { v: unknown }[] }>(`SELECT '123456789012.123456789012'::numeric(24,12) AS v`);
    expect(rows[0]!.v).toBe('123456789012.123456789012');
  });

  it('refuses a credit limit below zero and an unknown plan at the database level too', async () => {
    await expect(db('accounts').insert({ name: 'x', credit_limit: '-1' })).rejects.toThrow(/accounts_credit_limit_check/);
    await expect(db('accounts').insert({ name: 'x', plan: 'free' })).rejects.toThrow(/accounts_plan_check/);
  });

  it('keeps only one user per email in an account, case-insensitively', async () => {
    const [acc] = await db('accounts').insert({ name: 'Case Co' }).returning('id');
    await db('users').insert({ account_id: acc.id, name: 'A', email: 'Ann@Example.com' });
    await expect(db('users').insert({ account_id: acc.id, name: 'B', email: 'ann@example.com' })).rejects.toThrow(/users_account_email_unique/);
  });
});
