import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/mixroute.js', import.meta.url));
/** The CLI's sources, run through tsx whatever NODE_ENV says (bin/mixroute.js runs dist/ in production). */
const SOURCES = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
/** Node's arguments that run `mixroute` from the sources: for production behaviour without a build. */
export const FROM_SOURCES = ['--import', 'tsx', SOURCES];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `mixroute ...args` as a real child process. `fromSources` runs the
 * TypeScript sources with NODE_ENV=production too, to test what the code does
 * in production without a build.
 */
export function runCli(args: string[], env: Record<string, string>, opts: { fromSources?: boolean } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const entry = opts.fromSources ? FROM_SOURCES : [BIN];
    const child = spawn(process.execPath, [...entry, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a --json verb and parses its output; fails loudly with stderr when it did not succeed. */
export async function runCliJson<T = any>(args: string[], env: Record<string, string>): Promise<T> {
  const r = await runCli([...args, '--json'], env);
  if (r.code !== 0) throw new Error(`mixroute ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
