import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { accountsService } from '../../src/accounts/accounts.service';
import { silentLogger, testConfig, testDb } from '../helpers/env';
import { serve } from '../helpers/servers';
import { staffService } from '../../src/staff/staff.service';

/**
 * Cache-write prices by lifetime (issue 21) on the admin API: set with a model and
 * with a new price version, kept in the price history, and part of "the same price".
 */
const config = testConfig();
const db = testDb(config);
const ops = accountsService({ db, clock: systemClock });
let base: string;
let close: () => Promise<void>;
let admin: string;
let billing: string;

beforeAll(async () => {
  const app = createAdminApp({ db, billing: config.billing, config, clock: systemClock, logger: silentLogger, readiness: {}, readyCheckTimeoutMs: 1000 });
  ({ url: base, close } = await serve(app));
  admin = (await staffService({ db }).createStaffToken({ role: 'admin' })).token;
  billing = (await staffService({ db }).createStaffToken({ role: 'billing' })).token;
});
afterAll(async () => {
  await close();
  await db.destroy();
});

const post = async (path: string, token: string, body: unknown) => {
  const res = await fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { price?: Record<string, unknown> } };
};

describe('cache-write prices', () => {
  it('are set on POST /billing/models and /billing/models/prices, and kept per version', async () => {
    const tag = randomUUID().slice(0, 8);
    await ops.addProvider({ name: `anthropic-${tag}`, baseUrl: 'https://api.anthropic.com/v1', kind: 'anthropic' });
    const name = `claude-${tag}`;
    const created = await post('/billing/models', admin, {
      name, provider: `anthropic-${tag}`, upstreamModel: 'claude-x', inputPerMtok: '3', cachedInputPerMtok: '0.3', cacheWritePerMtok: '3.75', cacheWrite1hPerMtok: '6', outputPerMtok: '15', effectiveFrom: '2026-01-01T00:00:00Z',
    });
    expect(created.status).toBe(201);
    expect(created.body.price).toMatchObject({ cacheWritePerMtok: '3.75', cacheWrite1hPerMtok: '6' });

    const next = await post('/billing/models/prices', billing, { name, inputPerMtok: '3', outputPerMtok: '15', cacheWritePerMtok: '4', effectiveFrom: '2026-06-01T00:00:00Z' });
    expect(next.status).toBe(201);
    expect(next.body.price).toMatchObject({ cacheWritePerMtok: '4', cacheWrite1hPerMtok: null });

    // The same time with another cache-write price is another price: refused.
    const conflict = await post('/billing/models/prices', billing, { name, inputPerMtok: '3', outputPerMtok: '15', cacheWritePerMtok: '5', effectiveFrom: '2026-06-01T00:00:00Z' });
    expect(conflict.status).toBe(409);

    const bad = await post('/billing/models/prices', billing, { name, inputPerMtok: '3', outputPerMtok: '15', cacheWrite1hPerMtok: '-1' });
    expect(bad.status).toBe(400);

    const history = await db('prices').join('models', 'models.id', 'prices.model_id').where('models.public_name', name).orderBy('effective_from').select('cache_write_per_mtok', 'cache_write_1h_per_mtok');
    expect(history.map((p) => [Number(p.cache_write_per_mtok), p.cache_write_1h_per_mtok === null ? null : Number(p.cache_write_1h_per_mtok)])).toEqual([
      [3.75, 6],
      [4, null],
    ]);
  });
});
