import { afterAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/auth/secrets';
import { runCli, runCliJson } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';

const config = testConfig();
const env = testEnv(config);
const db = testDb(config);
afterAll(() => db.destroy());

const unique = () => Math.random().toString(36).slice(2, 10);

/** An error is one line on stderr, names the problem, and shows no stack. */
function expectOneLineError(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('mixroute staff verbs', () => {
  it('sets up a customer by hand: account, user, key (shown once, stored as a hash), revoke', async () => {
    const account = await runCliJson(['accounts', 'create', '--name', 'Acme GmbH', '--country', 'de', '--vat-id', 'DE811907980', '--plan', 'postpaid', '--credit-limit', '250.50'], env);
    expect(account).toMatchObject({ name: 'Acme GmbH', country: 'DE', plan: 'postpaid', creditLimit: '250.5', currency: 'USD' });
    const stored = await db('accounts').where({ id: account.id }).first();
    expect(stored.credit_limit).toBe('250.500000000000');

    const user = await runCliJson(['users', 'create', '--account', account.id, '--name', 'Ann Example', '--email', 'ann@example.com', '--job-title', 'CTO'], env);
    expect(user).toMatchObject({ accountId: account.id, email: 'ann@example.com', jobTitle: 'CTO' });

    const key = await runCliJson(['keys', 'create', '--account', account.id, '--user', user.id, '--name', 'ci'], env);
    expect(key.key).toMatch(/^mr-/);
    const row = await db('api_keys').where({ id: key.id }).first();
    expect(row.key_hash).toBe(hashSecret(key.key));
    expect(row.prefix).toBe(key.key.slice(0, row.prefix.length));
    // The key itself is nowhere in the table.
    const dump = JSON.stringify(await db('api_keys').select());
    expect(dump).not.toContain(key.key);

    const listed = await runCliJson(['keys', 'list', '--account', account.id], env);
    expect(listed).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(key.key);

    const revoked = await runCliJson(['keys', 'revoke', key.id], env);
    expect(revoked.revokedAt).not.toBeNull();
    const again = await runCliJson(['keys', 'revoke', key.id], env);
    expect(again.revokedAt).toBe(revoked.revokedAt);
  });

  it('adds a provider and a model, keeps price history, and treats a repeated price as a no-op', async () => {
    const name = `prov-${unique()}`;
    const provider = await runCliJson(['providers', 'add', '--name', name, '--base-url', 'http://127.0.0.1:9/v1/', '--api-key-env', 'PROVIDER_UPSTREAM_API_KEY'], env);
    expect(provider).toMatchObject({ name, baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'PROVIDER_UPSTREAM_API_KEY' });

    const model = `gpt-test-${unique()}`;
    const base = ['models', 'add', '--name', model, '--provider', name, '--upstream-model', 'gpt-4o-mini'];
    const v1 = await runCliJson([...base, '--input-per-mtok', '0.15', '--output-per-mtok', '0.60', '--cached-input-per-mtok', '0.075', '--effective-from', '2026-01-01T00:00:00Z'], env);
    expect(v1.price).toMatchObject({ inputPerMtok: '0.15', outputPerMtok: '0.6', cachedInputPerMtok: '0.075', effectiveFrom: '2026-01-01T00:00:00.000Z' });
    const repeat = await runCliJson([...base, '--input-per-mtok', '0.150', '--output-per-mtok', '0.6', '--cached-input-per-mtok', '0.075', '--effective-from', '2026-01-01T00:00:00Z'], env);
    expect(repeat.price.id).toBe(v1.price.id);
    await runCliJson([...base, '--input-per-mtok', '0.10', '--output-per-mtok', '0.40', '--effective-from', '2026-06-01T00:00:00Z'], env);

    const models = await runCliJson<any[]>(['models', 'list'], env);
    const listed = models.find((m) => m.name === model);
    expect(listed.priceHistory.map((p: any) => p.inputPerMtok)).toEqual(['0.15', '0.1']);
    expect(listed.price.inputPerMtok).toBe('0.1');

    const conflicting = await runCli([...base, '--input-per-mtok', '0.99', '--output-per-mtok', '0.40', '--effective-from', '2026-06-01T00:00:00Z', '--json'], env);
    expect(conflicting.code).toBe(1);
    expectOneLineError(conflicting.stderr, /already has a different price/);
  });

  it('creates staff tokens of each role and stores only their hash', async () => {
    for (const role of ['billing', 'compliance', 'admin']) {
      const t = await runCliJson(['staff-tokens', 'create', '--role', role], env);
      expect(t.role).toBe(role);
      const row = await db('staff_tokens').where({ id: t.id }).first();
      expect(row.token_hash).toBe(hashSecret(t.token));
    }
  });

  it('answers bad input and missing records with one clear line and a non-zero exit', async () => {
    const badRole = await runCli(['staff-tokens', 'create', '--role', 'janitor'], env);
    expect(badRole.code).toBe(2);
    expectOneLineError(badRole.stderr, /role/);

    const missing = await runCli(['users', 'create', '--account', '00000000-0000-4000-8000-000000000000', '--name', 'X', '--email', 'x@example.com'], env);
    expect(missing.code).toBe(1);
    expectOneLineError(missing.stderr, /account 00000000-0000-4000-8000-000000000000 does not exist/);

    const unreachable = await runCli(['accounts', 'list'], { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    expect(unreachable.code).toBe(1);
    expectOneLineError(unreachable.stderr, /PostgreSQL is unreachable at postgres:\/\/postgres@127\.0\.0\.1:1\/nowhere/);

    const badEnv = await runCli(['accounts', 'list'], { ...env, ADMIN_PORT: 'many' });
    expect(badEnv.code).toBe(2);
    expectOneLineError(badEnv.stderr, /ADMIN_PORT/);

    // The demo's traffic is never sent in production (NODE_ENV in any case), before anything is touched.
    const demo = await runCli(['demo', 'traffic', '--seconds', '1'], { ...env, NODE_ENV: 'Production' }, { fromSources: true });
    expect(demo.code).toBe(2);
    expectOneLineError(demo.stderr, /demo traffic does not run with NODE_ENV=production/);
  });

  it('prints --help for every verb', async () => {
    for (const verb of [['dev'], ['gateway'], ['worker'], ['admin'], ['migrate'], ['doctor'], ['accounts', 'create'], ['keys', 'revoke'], ['models', 'add'], ['staff-tokens', 'create']]) {
      const r = await runCli([...verb, '--help'], env);
      expect(r.code, verb.join(' ')).toBe(0);
      expect(r.stdout).toContain(`Usage: mixroute ${verb.join(' ')}`);
    }
  });
});

describe('model fallbacks', () => {
  it('sets, lists and clears the ordered fallback routes', async () => {
    const a = `prov-${unique()}`;
    const b = `prov-${unique()}`;
    await runCliJson(['providers', 'add', '--name', a, '--base-url', 'http://127.0.0.1:9/v1'], env);
    await runCliJson(['providers', 'add', '--name', b, '--base-url', 'http://127.0.0.1:10/v1'], env);
    const model = `fb-${unique()}`;
    await runCliJson(['models', 'add', '--name', model, '--provider', a, '--upstream-model', 'm1', '--input-per-mtok', '1', '--output-per-mtok', '2'], env);
    await runCliJson(['models', 'fallbacks', '--name', model, '--route', `${b}:m2`, '--route', `${a}:m3`], env);
    let listed = (await runCliJson<any[]>(['models', 'list'], env)).find((m) => m.name === model);
    expect(listed.fallbacks).toEqual([{ provider: b, upstreamModel: 'm2' }, { provider: a, upstreamModel: 'm3' }]);
    await runCliJson(['models', 'fallbacks', '--name', model], env);
    listed = (await runCliJson<any[]>(['models', 'list'], env)).find((m) => m.name === model);
    expect(listed.fallbacks).toEqual([]);

    const bad = await runCli(['models', 'fallbacks', '--name', model, '--route', 'nocolon'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('error: --route nocolon: expected provider:upstream-model');
  });
});
