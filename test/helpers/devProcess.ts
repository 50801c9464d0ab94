import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli';
import { eventually, StopWaiting } from './eventually';

/** `mixroute dev` run as a child process by the e2e tests, its stdout and stderr collected. */
export interface DevRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const started: DevRun[] = [];

/** Starts `mixroute dev` with this environment; stopDevRuns stops it. */
export function startDev(env: Record<string, string>): DevRun {
  const child = spawn(process.execPath, [BIN, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const run = { child, output: () => out, exited };
  started.push(run);
  return run;
}

/**
 * For afterEach: a test that fails half-way must not leave `mixroute dev` (and its
 * Temporal server) running. Ctrl-C each run still going as a user would, then kill
 * it if it does not stop.
 */
export async function stopDevRuns(): Promise<void> {
  for (const run of started.splice(0)) {
    if (run.child.exitCode !== null || run.child.signalCode !== null) continue;
    run.child.kill('SIGINT');
    const stopped = await Promise.race([run.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
    if (!stopped) run.child.kill('SIGKILL');
  }
}

/**
 * Resolves once the run's output includes text; throws at once if it exits first. The default
 * deadline covers a start that launches its own Temporal dev server and PostgreSQL on a busy machine.
 */
export async function waitForOutput(run: DevRun, text: string, timeoutMs = 90_000): Promise<void> {
  await eventually(
    () => {
      if (run.output().includes(text)) return;
      if (run.child.exitCode !== null) throw new StopWaiting(`mixroute dev exited early:\n${run.output()}`);
      throw new Error(`not in the output yet: ${JSON.stringify(text)}`);
    },
    { timeoutMs, intervalMs: 200, message: `mixroute dev to print ${JSON.stringify(text)}` },
  );
}

/** The value probe gives once it is not undefined; throws after timeoutMs (eventually, undefined meaning not yet). */
export function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  return eventually(
    async () => {
      const v = await probe();
      if (v === undefined) throw new Error('not yet');
      return v;
    },
    { timeoutMs, intervalMs: 250, message: what },
  );
}

/** Whether a process with this pid exists. */
export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
