import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../src/db/database';
import { createDb } from '../../src/db/knex';
import { migrationStatus } from '../../src/db/migrate';
import { testConfig, testEnv } from '../helpers/env';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const created: string[] = [];
afterAll(async () => {
  for (const url of created) await dropDatabase(url);
});

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bootstrap', () => {
  it('creates and migrates the DATABASE_URL database, then runs the command; a second run changes nothing', async () => {
    const url = new URL(config.databaseUrl);
    url.pathname = `/mixroute_bootstrap_${Date.now()}`;
    created.push(url.toString());
    const env = testEnv(config, { DATABASE_URL: url.toString() });

    const first = await run('bash', ['scripts/bootstrap.sh', '--db', '--', 'echo', 'command ran'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('command ran');
    expect(first.stderr).toContain('created database');

    const second = await run('bash', ['scripts/bootstrap.sh', '--db', '--', 'true'], env);
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain('created database');
    expect(second.stderr).not.toContain('applied migrations');

    const db = createDb({ databaseUrl: url.toString(), poolMax: 1 });
    try {
      expect((await migrationStatus(db)).pending).toEqual([]);
    } finally {
      await db.destroy();
    }
  });

  it('fails with one line naming the URL when PostgreSQL is unreachable', async () => {
    const env = testEnv(config, { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/mixroute' });
    const r = await run('bash', ['scripts/bootstrap.sh', '--', 'echo', 'should not run'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('should not run');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/PostgreSQL is unreachable at postgres:\/\/postgres@127\.0\.0\.1:1\/mixroute .*start it/);
  });

  it('uses TEMPORAL_CLI when set and says so when it is not executable', async () => {
    const good = await run('bash', ['scripts/find-temporal-cli.sh'], testEnv(config));
    expect(good.stdout.trim()).toBe(config.temporal.cliPath);
    const bad = await run('bash', ['scripts/find-temporal-cli.sh'], testEnv(config, { TEMPORAL_CLI: '/nonexistent/temporal' }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('TEMPORAL_CLI=/nonexistent/temporal is not an executable file');
  });

  it('tells how to install the CLI when none is found and Go is missing', async () => {
    const nodeDir = path.dirname(process.execPath);
    const emptyCache = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-cache-'));
    const env = { PATH: `${nodeDir}:/usr/bin:/bin`, HOME: os.tmpdir(), MIXROUTE_CACHE_DIR: emptyCache };
    const r = await run('bash', ['scripts/find-temporal-cli.sh'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Go is not installed');
    expect(r.stderr).toContain('TEMPORAL_CLI=');
  });
});
