import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from '../logger';
import { portInUse } from '../util/ports';
import { startDevServer, type DevServer, type DevServerOptions } from './devServer';

/**
 * `mixroute dev`'s Temporal dev server, supervised like the apps: when it dies
 * (a crash, the OOM killer, a stray `kill -9`), it is started again on the
 * same SQLite state file, with backoff, for as long as dev runs. Workflows,
 * schedules and pending signals live in that file, and the gateway keeps
 * metering into PostgreSQL meanwhile and signals again, so settlement catches
 * up once the server is back.
 *
 * The server runs under src/dev/guard.mjs, so it goes when dev goes, even on
 * SIGKILL. If both were killed at once, the pid file lets the next start stop
 * the orphan instead of failing on its port.
 */

const BACKOFF_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000];
/** A server that ran this long before it died was not crash-looping. */
const STABLE_MS = 30_000;

export interface SupervisedDevServerOptions extends DevServerOptions {
  dbFile: string;
  /** Where the server's pid is kept while it runs. */
  pidFile: string;
}

/** `print`: the supervisor's own lines for the person at the terminal (whatever LOG_LEVEL hides). */
export async function superviseDevServer(opts: SupervisedDevServerOptions, logger: Logger, print: (line: string) => void = () => undefined): Promise<DevServer> {
  await stopOrphan(opts, logger);
  let current = await startDevServer({ ...opts, guard: true });
  let stopping = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;

  const writePid = (server: DevServer) => {
    // The guard reports the server's pid once it has spawned it.
    const write = () => server.serverPid && fs.writeFileSync(opts.pidFile, `${server.serverPid}\n`);
    if (server.serverPid) write();
    else server.child.once('message', write);
  };

  const watch = (server: DevServer) => {
    writePid(server);
    const startedAt = Date.now();
    server.child.once('exit', (code, signal) => {
      if (stopping) return;
      fs.rmSync(opts.pidFile, { force: true });
      // One that dies soon after each start is crash-looping: back off as for a failed start.
      failures = Date.now() - startedAt < STABLE_MS ? failures + 1 : 0;
      const delay = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]!;
      logger.warn({ code, signal, restartInMs: delay }, 'Temporal dev server exited; restarting it on the same state file');
      print(`Temporal dev server exited (${signal ?? `code ${code}`}); restarting it on ${opts.dbFile}...`);
      schedule(delay);
    });
  };

  const schedule = (delay: number) => {
    timer = setTimeout(() => void restart(), delay);
  };

  const restart = async () => {
    if (stopping) return;
    try {
      const next = await startDevServer({ ...opts, guard: true });
      if (stopping) return void (await next.stop());
      current = next;
      logger.info({ address: next.address }, 'Temporal dev server is back');
      print(`Temporal dev server is back at ${next.address}`);
      watch(next);
    } catch (err) {
      const delay = BACKOFF_MS[Math.min(++failures, BACKOFF_MS.length - 1)]!;
      logger.error({ err, attempt: failures, restartInMs: delay }, 'Temporal dev server did not start again; retrying');
      schedule(delay);
    }
  };

  watch(current);
  return {
    address: current.address,
    uiUrl: current.uiUrl,
    get child() {
      return current.child;
    },
    get serverPid() {
      return current.serverPid;
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await current.stop();
      fs.rmSync(opts.pidFile, { force: true });
    },
  };
}

/** A dev server on our state file whose supervisor and guard were both killed: stop it, then wait for its ports. */
async function stopOrphan(opts: SupervisedDevServerOptions, logger: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(opts.pidFile, 'utf8').trim());
  } catch {
    return;
  }
  fs.rmSync(opts.pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  let args = '';
  try {
    args = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
  } catch {
    return;
  }
  if (!args.includes('start-dev') || !args.includes(opts.dbFile)) return;
  logger.warn({ pid }, 'stopping a Temporal dev server left running by an earlier mixroute dev');
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const port of [opts.port, opts.uiPort].filter((p): p is number => p !== undefined)) {
    while ((await portInUse(port, opts.ip)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
