import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { portInUse } from '../util/ports';
import { devServerSearchAttributeFlags } from './searchAttributes';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GUARD = fileURLToPath(new URL('../dev/guard.mjs', import.meta.url));

/**
 * The Temporal CLI path: the configured one, else whatever
 * scripts/find-temporal-cli.sh finds or builds (the one place with that logic).
 */
export function findTemporalCli(configured: string | undefined): string {
  if (configured) return configured;
  return execFileSync('bash', [path.join(REPO_ROOT, 'scripts/find-temporal-cli.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export interface DevServerOptions {
  cliPath: string;
  ip?: string;
  port: number;
  /** Web UI port; omitted means headless. */
  uiPort?: number;
  /** SQLite file for persistence; omitted means in memory. */
  dbFile?: string;
  namespace?: string;
  /** Where the server's own log goes (appended). Omitted: discarded. */
  logFile?: string;
  startTimeoutMs?: number;
  /** Run it under src/dev/guard.mjs, so that it stops when this process ends, even by SIGKILL. */
  guard?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  child: ChildProcess;
  /** The server's own pid (with `guard`, `child` is the guard). */
  serverPid: number | undefined;
  stop(): Promise<void>;
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  for (const p of [opts.port, opts.uiPort].filter((x): x is number => x !== undefined)) {
    if (await portInUse(p, ip)) {
      throw new Error(
        `port ${p} on ${ip} is in use; a Temporal dev server from an earlier run may still be running ` +
          `(stop it, set TEMPORAL_PORT/TEMPORAL_UI_PORT, or set TEMPORAL_ADDRESS to use it)`,
      );
    }
  }
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(opts.port), '--log-level', 'warn'];
  args.push(...(opts.uiPort === undefined ? ['--headless'] : ['--ui-port', String(opts.uiPort)]));
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  args.push(...devServerSearchAttributeFlags());

  const logFd = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  // Own process group: Ctrl-C reaches the supervisor, which stops the apps before the server.
  const child = opts.guard
    ? // The guard's grace is under stop()'s 10 s, so the guard itself is never killed with the server still up.
      spawn(process.execPath, [GUARD, '--grace-ms', '8000', '--', opts.cliPath, ...args], { stdio: ['ignore', logFd, logFd, 'ipc'], detached: true })
    : spawn(opts.cliPath, args, { stdio: ['ignore', logFd, logFd], detached: true });
  if (typeof logFd === 'number') fs.closeSync(logFd);
  let serverPid = opts.guard ? undefined : child.pid;
  child.on('message', (m: { pid?: number }) => {
    if (typeof m?.pid === 'number') serverPid = m.pid;
  });
  const address = `${ip}:${opts.port}`;

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  child.once('error', () => undefined);

  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exitPromise;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      throw new Error(
        `Temporal dev server exited during start (code ${exited.code}, signal ${exited.signal})` +
          (opts.logFile ? `; see ${opts.logFile}` : ''),
      );
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.withDeadline(Date.now() + 2_000, () =>
          connection.workflowService.describeNamespace({ namespace: opts.namespace ?? 'default' }),
        );
      } finally {
        await connection.close();
      }
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`Temporal dev server did not become ready at ${address} within ${opts.startTimeoutMs ?? 60_000} ms`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    uiUrl: opts.uiPort === undefined ? undefined : `http://${ip}:${opts.uiPort}`,
    child,
    get serverPid() {
      return serverPid;
    },
    stop,
  };
}
