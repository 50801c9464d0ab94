import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Decimal from 'decimal.js';
import OpenAI from 'openai';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../src/db/database';
import { createDb } from '../../src/db/knex';
import { freePort } from '../../src/util/ports';
import { runCli } from '../helpers/cli';
import { startDev, stopDevRuns, until, waitForOutput } from '../helpers/devProcess';
import { testConfig, testEnv } from '../helpers/env';
import { ownDatabaseUrl } from '../helpers/ownDatabase';

/**
 * The README's first run: `mixroute dev` on a fresh database sets up the demo,
 * prints a key, and a request with that key is answered offline by the local
 * demo provider, metered and deducted. A second run creates nothing twice.
 */
const databaseUrl = ownDatabaseUrl('devdemo');

afterEach(stopDevRuns);
afterAll(() => dropDatabase(databaseUrl));

describe('mixroute dev demo', () => {
  it('on a fresh database prints a key whose requests are answered offline, metered and deducted; a re-run creates nothing twice', async () => {
    const gatewayPort = await freePort();
    const env = testEnv(testConfig(), {
      DATABASE_URL: databaseUrl,
      GATEWAY_PORT: String(gatewayPort),
      ADMIN_PORT: String(await freePort()),
      DEV_DEMO_PROVIDER_PORT: String(await freePort()),
      DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-demo-')),
      // As a person's shell has it: no allowlist naming loopback; dev adds the demo provider's address itself.
      UPSTREAM_ALLOWED_HOSTS: '*',
    });
    delete (env as Record<string, string | undefined>).DEV_DEMO;
    const first = startDev(env);
    await waitForOutput(first, 'Ctrl-C stops everything');
    const out = first.output();
    const key = /API key\s+(mr-\S+)\s+\(shown once/.exec(out)?.[1];
    const accountId = /account\s+Demo Company ([0-9a-f-]{36}), balance 10\.00 USD/.exec(out)?.[1];
    expect(key, out).toBeDefined();
    expect(accountId, out).toBeDefined();
    expect(out).toMatch(/sign in as demo@mixroute\.example \/ \S{12,}\s+\(shown once\)/);
    expect(out).toContain(`curl -s http://127.0.0.1:${gatewayPort}/v1/chat/completions -H "Authorization: Bearer ${key}"`);

    // The README's openai-client snippet, streamed and not, on both demo models.
    const openai = new OpenAI({ baseURL: `http://127.0.0.1:${gatewayPort}/v1`, apiKey: key! });
    const answer = await openai.chat.completions.create({ model: 'demo-gpt', messages: [{ role: 'user', content: 'Hello!' }] });
    expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(20);
    expect(answer.usage!.completion_tokens).toBeGreaterThan(0);
    const stream = await openai.chat.completions.create({ model: 'demo-claude', stream: true, messages: [{ role: 'user', content: 'Stream, please.' }] });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed.length).toBeGreaterThan(20);

    const db = createDb({ databaseUrl, poolMax: 2 });
    try {
      // Metered and settled: two events with a cost, deducted once each, and the balance is the sum of the entries.
      const settled = await until('both requests settled', async () => {
        const rows = await db('usage_events').where({ account_id: accountId }).select('cost', 'settled_at', 'status_code');
        return rows.length === 2 && rows.every((r) => r.settled_at !== null) ? rows : undefined;
      });
      expect(settled.map((r) => r.status_code)).toEqual([200, 200]);
      const cost = await db('usage_events').where({ account_id: accountId }).sum({ s: 'cost' }).first();
      expect(Number(cost!.s)).toBeGreaterThan(0);
      const sums = await db.raw(
        `SELECT b.balance::text AS balance, (SELECT sum(amount) FROM ledger_entries WHERE account_id = b.account_id)::text AS entries,
                (SELECT sum(amount) FROM ledger_entries WHERE account_id = b.account_id AND kind = 'usage')::text AS usage
           FROM account_balances b WHERE b.account_id = ?`,
        [accountId!],
      );
      const row = sums.rows[0];
      expect(row.balance).toBe(row.entries);
      expect(new Decimal(row.usage).neg().equals(new Decimal(cost!.s))).toBe(true);
      expect(new Decimal(row.balance).equals(new Decimal(10).minus(cost!.s))).toBe(true);

      first.child.kill('SIGINT');
      expect(await first.exited).toBe(0);

      // Second run, same database: the demo is found, nothing is created or printed again.
      const second = startDev(env);
      await waitForOutput(second, 'Ctrl-C stops everything');
      expect(second.output()).not.toMatch(/mr-[A-Za-z0-9_-]{20,}/);
      expect(second.output()).toContain('shown on the first run');
      const counts = await db.raw(
        `SELECT (SELECT count(*) FROM accounts)::int AS accounts, (SELECT count(*) FROM api_keys)::int AS keys,
                (SELECT count(*) FROM staff_users)::int AS staff, (SELECT count(*) FROM providers)::int AS providers,
                (SELECT count(*) FROM models)::int AS models, (SELECT count(*) FROM ledger_entries WHERE kind = 'grant')::int AS grants`,
      );
      expect(counts.rows[0]).toEqual({ accounts: 1, keys: 1, staff: 1, providers: 2, models: 2, grants: 1 });

      // `mixroute demo traffic` borrows a key of the demo account, sends a bounded burst, and revokes the key.
      const traffic = await runCli(['demo', 'traffic', '--seconds', '3', '--rps', '5', '--json'], env);
      expect(traffic.code, traffic.stderr).toBe(0);
      const result = JSON.parse(traffic.stdout) as { sent: number; byStatus: Record<string, number> };
      expect(result.sent).toBeGreaterThan(5);
      expect(result.byStatus['200']).toBeGreaterThan(0);
      const keys = await db('api_keys').where({ account_id: accountId }).select('name', 'revoked_at');
      expect(keys.filter((k) => k.revoked_at === null).map((k) => k.name)).toEqual(['demo']);
    } finally {
      await db.destroy();
    }
  });
});
