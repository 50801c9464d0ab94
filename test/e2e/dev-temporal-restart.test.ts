import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Decimal from 'decimal.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../src/db/database';
import { createDb } from '../../src/db/knex';
import { freePort, portInUse } from '../../src/util/ports';
import { alive, startDev, stopDevRuns, until as untilWithin } from '../helpers/devProcess';
import { testConfig, testEnv } from '../helpers/env';
import { ownDatabaseUrl } from '../helpers/ownDatabase';

/**
 * `mixroute dev` supervises its Temporal dev server: a SIGKILL of the server
 * (the gateway keeps serving and metering meanwhile) is followed by a restart
 * on the same state file, and settlement catches up with every usage event
 * deducted exactly once. Killing `mixroute dev` itself takes the server along.
 */
const databaseUrl = ownDatabaseUrl('devrestart');

afterEach(stopDevRuns);
afterAll(() => dropDatabase(databaseUrl));

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000) => untilWithin(what, probe, timeoutMs);

/** `count` requests, five at a time, every third one streamed; returns their status codes. */
async function send(gateway: string, key: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 5) {
    const batch = Array.from({ length: Math.min(5, count - i) }, async (_, j) => {
      const stream = (i + j) % 3 === 0;
      const res = await fetch(`${gateway}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: (i + j) % 2 ? 'demo-gpt' : 'demo-claude', stream, messages: [{ role: 'user', content: `request ${i + j}` }] }),
      });
      await res.arrayBuffer();
      return res.status;
    });
    statuses.push(...(await Promise.all(batch)));
  }
  return statuses;
}

describe('mixroute dev supervises its Temporal dev server', () => {
  it('restarts it after a SIGKILL on the same state, settles everything exactly once, and takes it along when dev itself is killed', { timeout: 360_000 }, async () => {
    const gatewayPort = await freePort();
    const adminPort = await freePort();
    const temporalPort = await freePort();
    const uiPort = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-restart-'));
    const env = testEnv(testConfig(), {
      DATABASE_URL: databaseUrl,
      GATEWAY_PORT: String(gatewayPort),
      ADMIN_PORT: String(adminPort),
      TEMPORAL_ADDRESS: '',
      TEMPORAL_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      DEV_DEMO: '1',
      DEV_DEMO_PROVIDER_PORT: String(await freePort()),
      DATA_DIR: dataDir,
    });
    const run = startDev(env);
    await until('mixroute dev to be up', () => {
      if (run.child.exitCode !== null) throw new Error(`mixroute dev exited early:\n${run.output()}`);
      return run.output().includes('Ctrl-C stops everything') || undefined;
    });
    const key = /API key\s+(mr-\S+)/.exec(run.output())?.[1];
    const accountId = /Demo Company ([0-9a-f-]{36})/.exec(run.output())?.[1];
    expect(key, run.output()).toBeDefined();
    const gateway = `http://127.0.0.1:${gatewayPort}`;
    const pidFile = path.join(dataDir, 'temporal.pid');

    const statuses = await send(gateway, key!, 20);
    const firstPid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(alive(firstPid)).toBe(true);
    process.kill(firstPid, 'SIGKILL');
    // While Temporal is down or coming back, the gateway keeps answering and metering.
    statuses.push(...(await send(gateway, key!, 20)));
    await until('the restart', () => (run.output().includes('Temporal dev server is back') ? true : undefined));
    expect(run.output()).toContain(`Temporal dev server exited (SIGKILL); restarting it on ${path.join(dataDir, 'temporal.db')}`);
    const secondPid = await until('the new pid file', () => {
      const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : 0;
      return pid && pid !== firstPid ? pid : undefined;
    });
    expect(alive(secondPid)).toBe(true);
    statuses.push(...(await send(gateway, key!, 10)));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    const db = createDb({ databaseUrl, poolMax: 2 });
    try {
      // Every request metered once and settled once: the usage entries add up to the events' cost, no more.
      let last: unknown;
      await until('settlement to catch up', async () => {
        const r = await db('usage_events').where({ account_id: accountId }).select(db.raw('count(*)::int AS n'), db.raw('count(settled_at)::int AS settled')).first();
        last = r;
        return r.n === statuses.length && r.settled === r.n ? true : undefined;
      }, 180_000).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(last)} of ${statuses.length}\n${run.output().slice(-4000)}`);
      });
      const r = (
        await db.raw(
          `SELECT (SELECT sum(cost) FROM usage_events WHERE account_id = :a)::text AS cost,
                  (SELECT count(DISTINCT request_id) FROM usage_events WHERE account_id = :a)::int AS requests,
                  (SELECT sum(amount) FROM ledger_entries WHERE account_id = :a AND kind = 'usage')::text AS usage,
                  (SELECT sum(amount) FROM ledger_entries WHERE account_id = :a)::text AS entries,
                  (SELECT balance FROM account_balances WHERE account_id = :a)::text AS balance`,
          { a: accountId },
        )
      ).rows[0];
      expect(r.requests).toBe(statuses.length);
      expect(new Decimal(r.usage).neg().equals(new Decimal(r.cost))).toBe(true);
      expect(new Decimal(r.balance).equals(new Decimal(r.entries))).toBe(true);
      expect(new Decimal(r.balance).equals(new Decimal(10).minus(r.cost))).toBe(true);
    } finally {
      await db.destroy();
    }

    // `mixroute dev` killed outright: its guard takes the Temporal server along, so the port is free for the next start.
    run.child.kill('SIGKILL');
    await until('the Temporal server to go with dev', () => (!alive(secondPid) ? true : undefined), 30_000);
    await until('the Temporal and app ports to be free', async () => {
      for (const port of [temporalPort, uiPort, gatewayPort, adminPort]) if (await portInUse(port)) return undefined;
      return true;
    }, 30_000);
  });
});
