import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index';
import { dropDatabase, ensureDatabase } from '../../src/db/database';
import { createDb } from '../../src/db/knex';
import { runHealthProbe } from '../../src/temporal/healthProbe';
import type { CliResult } from '../helpers/cli';
import { testConfig, testEnv } from '../helpers/env';
import { eventually, StopWaiting } from '../helpers/eventually';
import { ownDatabaseUrl } from '../helpers/ownDatabase';

/**
 * The production build as a deployment uses it: `npm run build` (here with --out-dir, into a
 * tree of this test's own, so that it never swaps dist/ under a cluster test running from it),
 * then the real launcher, bin/mixroute.js, copied beside that build, with NODE_ENV=production:
 * it runs the build with no TypeScript loader. Checked: the one-line error without a build,
 * the migrate step (two instances at once), a server refusing to start on a database that is
 * not migrated, and a worker running a workflow from the prebuilt bundle.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TREE = path.join(ROOT, '.data', `production-build-${randomUUID().slice(0, 8)}`);
const DIST = path.join(TREE, 'dist');
const LAUNCHER = path.join(TREE, 'bin', 'mixroute.js');
const ALL = migrations.map(([name]) => name);

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `mixroute ...args` through the launcher beside the test's build. */
const mixroute = (args: string[], env: Record<string, string>) => run(process.execPath, [LAUNCHER, ...args], env);

describe('the production build', () => {
  const config = testConfig();
  const databaseUrl = ownDatabaseUrl('production_build');
  const env = testEnv(config, { DATABASE_URL: databaseUrl, NODE_ENV: 'production', LOG_LEVEL: 'info' });
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    fs.mkdirSync(path.dirname(LAUNCHER), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'bin', 'mixroute.js'), LAUNCHER);
    await ensureDatabase(databaseUrl);
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await dropDatabase(databaseUrl);
    fs.rmSync(TREE, { recursive: true, force: true });
  });

  it('says in one line to run the build when there is none, then builds one', async () => {
    const missing = await mixroute(['--help'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toEqual(['error: NODE_ENV=production runs the build in dist/, which is missing: run `npm run build` first']);

    const build = await run('npm', ['run', '-s', 'build', '--', '--out-dir', DIST]);
    expect(build.code, build.stderr).toBe(0);
  });

  it('writes the compiled code, its assets and the workflow bundle', () => {
    for (const file of ['bin/mixroute.js', 'src/cli.js', 'src/worker/worker.js', 'migrations/index.js', 'src/console/assets/console.css', 'src/dev/guard.mjs', 'workflow-bundle.js']) {
      expect(fs.existsSync(path.join(DIST, file)), file).toBe(true);
    }
    // No TypeScript and no tests in the build: a worker from dist/ cannot bundle workflows/*.ts at start-up.
    const files = fs.readdirSync(DIST, { recursive: true, encoding: 'utf8' });
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
  });

  it('runs `mixroute` from the build: servers refuse an unmigrated database; two migrate steps at once apply everything once', async () => {
    const help = await mixroute(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: mixroute');

    const status = await mixroute(['migrate', '--status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ appliedNow: [], applied: [], pending: ALL });

    const gateway = await mixroute(['gateway'], { ...env, GATEWAY_PORT: '0' });
    expect(gateway.code).toBe(1);
    expect(gateway.stderr.trim().split('\n')).toEqual([`error: ${ALL.length} migration(s) pending (${ALL[0]}, ...): run \`mixroute migrate\` before starting the gateway`]);

    const [a, b] = await Promise.all([mixroute(['migrate', '--json'], env), mixroute(['migrate', '--json'], env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const applied = [JSON.parse(a.stdout).appliedNow, JSON.parse(b.stdout).appliedNow].sort((x, y) => y.length - x.length);
    expect(applied).toEqual([ALL, []]);
    const db = createDb({ databaseUrl, poolMax: 1 });
    try {
      const { rows } = await db.raw<{ rows: { name: string; n: number }[] }>('SELECT name, count(*) AS n FROM knex_migrations GROUP BY name ORDER BY name');
      expect(rows.map((r) => [r.name, Number(r.n)])).toEqual([...ALL].sort().map((name) => [name, 1]));
    } finally {
      await db.destroy();
    }
  });

  it('runs a worker from the build that executes workflows from the prebuilt bundle', async () => {
    const worker = spawn(process.execPath, [LAUNCHER, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(worker);
    let output = '';
    worker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    await eventually(
      () => {
        if (worker.exitCode !== null) throw new StopWaiting(`the worker exited early:\n${output}`);
        expect(output).toContain(`polling task queue ${config.temporal.taskQueue}`);
      },
      { timeoutMs: 60_000, message: 'the worker from the build to poll' },
    );

    const connection = await Connection.connect({ address: config.temporal.address! });
    try {
      const probe = await runHealthProbe(new Client({ connection, namespace: config.temporal.namespace }), config.temporal.taskQueue, 60_000);
      expect(probe.migrationsApplied).toBe(ALL.length);
      expect(probe.migrationsPending).toBe(0);
      expect(Date.parse(probe.databaseTime)).not.toBeNaN();
    } finally {
      await connection.close();
    }

    worker.kill('SIGTERM');
    expect(await exited, output).toBe(0);
  });
});
