/**
 * `node --import tsx scripts/embedded-pg.ts [--reason TEXT] -- COMMAND [ARGS...]`
 *
 * Starts the embedded PostgreSQL (src/db/embeddedPostgres.ts) with its data in
 * DATA_DIR/pg on 127.0.0.1:MIXROUTE_EMBEDDED_PG_PORT (54329), runs COMMAND with
 * DATABASE_URL pointing at it, and stops it once COMMAND has ended, so that the
 * apps under COMMAND drain before their database goes. bootstrap.sh runs
 * itself again under this when DATABASE_URL is unset and nothing answers on
 * 127.0.0.1:5432 (or MIXROUTE_EMBEDDED_PG=1).
 *
 * Ctrl-C is left to COMMAND (it reaches it from the terminal); SIGTERM and
 * SIGHUP are passed on to it. If this process is killed outright, the server's
 * guard stops the server.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EMBEDDED_PG_DEFAULT_PORT, startEmbeddedPostgres } from '../src/db/embeddedPostgres';

const say = (line: string) => process.stderr.write(`[bootstrap] ${line}\n`);

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let reason = '';
  while (argv.length && argv[0] !== '--') {
    const flag = argv.shift();
    if (flag === '--reason') reason = argv.shift() ?? '';
    else throw new Error(`unknown option ${flag}`);
  }
  argv.shift();
  const [command, ...args] = argv;

  const dataDir = path.resolve(process.env.DATA_DIR || '.data');
  const port = Number(process.env.MIXROUTE_EMBEDDED_PG_PORT || EMBEDDED_PG_DEFAULT_PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`MIXROUTE_EMBEDDED_PG_PORT must be a port number, not ${process.env.MIXROUTE_EMBEDDED_PG_PORT}`);
  fs.mkdirSync(dataDir, { recursive: true });
  const rel = path.relative(process.cwd(), path.join(dataDir, 'pg'));
  const shown = rel && !rel.startsWith('..') ? rel : path.join(dataDir, 'pg');

  // Ignore Ctrl-C from the start: during start-up it would otherwise leave a half-started server.
  process.on('SIGINT', () => undefined);
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port, logFile: path.join(dataDir, 'pg.log'), note: say, env: process.env });
  say(
    pg.shared
      ? `${reason ? `${reason}: ` : ''}using the embedded PostgreSQL ${pg.version} on 127.0.0.1:${pg.port} that another command started (data in ${shown}); it stays up for that command`
      : `${reason ? `${reason}: ` : ''}using an embedded PostgreSQL ${pg.version} on 127.0.0.1:${port} ` +
          `(data in ${shown}${pg.initialised ? ', new' : ''}, log in ${path.join(shown, '..', 'pg.log')}); it stops when this command ends`,
  );
  let serverGone = false;
  void pg.exited.then(() => {
    serverGone = true;
  });
  if (!command) {
    await pg.stop();
    return 0;
  }

  const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, DATABASE_URL: pg.databaseUrl } });
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  void pg.exited.then(() => {
    if (child.exitCode === null && child.signalCode === null) say(`the embedded PostgreSQL stopped unexpectedly; see ${path.join(shown, '..', 'pg.log')}`);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('error', (err) => {
      say(`cannot run ${command}: ${err.message}`);
      resolve([127, null]);
    });
    child.once('exit', (c, s) => resolve([c, s]));
  });
  if (!serverGone) await pg.stop();
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  return code ?? 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
