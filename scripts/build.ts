/**
 * `npm run build` (node --import tsx scripts/build.ts [--out-dir DIR]): the production build.
 *
 *   1. tsc -p tsconfig.build.json: src/, activities/, workflows/ and migrations/ to DIR (dist/),
 *      keeping the repository's layout, type-checked (nothing is written on a type error);
 *   2. tsc-alias: adds the file extensions to relative imports (`./x` becomes `./x.js`), which
 *      Node's ES modules require and the sources leave out (tsx and vitest resolve them);
 *   3. copies what is not TypeScript beside the code that reads it by its own URL
 *      (src/console/assets/, src/dev/guard.mjs);
 *   4. writes DIR/bin/mixroute.js, the entry of the build (`mixroute dev` run from the build
 *      starts its children through it), and DIR/workflow-bundle.js: the workflow code bundled
 *      ahead of time with the SDK's bundleWorkflowCode, which the compiled worker loads.
 *
 * It builds into a sibling folder and swaps it in at the end, so a process started meanwhile
 * sees the old build or the new one, never half of one; a failed build leaves the old in place.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { replaceTscAliasPaths } from 'tsc-alias';
import { WORKFLOWS_PATH } from '../src/worker/workflowBundle';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSCONFIG = path.join(ROOT, 'tsconfig.build.json');
/** The folders tsconfig.build.json compiles; their other files are copied as they are. */
const SOURCE_DIRS = ['src', 'activities', 'workflows', 'migrations'];
const say = (line: string) => process.stderr.write(`[build] ${line}\n`);

function outDirFromArgs(argv: string[]): string {
  const i = argv.indexOf('--out-dir');
  if (i === -1) return path.join(ROOT, 'dist');
  const dir = argv[i + 1];
  if (!dir) throw new Error('--out-dir needs a folder');
  return path.resolve(dir);
}

/** Files that are neither TypeScript nor tests: read at run time next to the code. */
function isAsset(file: string): boolean {
  return !/\.(ts|tsx|mts|cts)$/.test(file) && !/\.test\./.test(file);
}

/**
 * Replaces outDir with staging by two renames, so that the build is never half there. Another
 * build of the same checkout may swap its own in between (the cluster tests build when dist/ is
 * stale, two files at a time): then ours is renamed in on the next try, and the last one wins.
 */
function swapIn(staging: string, outDir: string): void {
  for (let attempt = 0; ; attempt++) {
    const previous = `${outDir}.previous-${process.pid}-${attempt}`;
    try {
      fs.renameSync(outDir, previous);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      fs.renameSync(staging, outDir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= 5 || (code !== 'ENOTEMPTY' && code !== 'EEXIST')) throw err;
    } finally {
      fs.rmSync(previous, { recursive: true, force: true });
    }
  }
}

async function main(): Promise<void> {
  const outDir = outDirFromArgs(process.argv.slice(2));
  const staging = `${outDir}.building-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  const started = Date.now();
  try {
    say(`compiling TypeScript (tsc -p tsconfig.build.json) into ${path.relative(ROOT, outDir) || outDir}...`);
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', TSCONFIG, '--outDir', staging], { cwd: ROOT, stdio: 'inherit' });
    await replaceTscAliasPaths({ configFile: TSCONFIG, outDir: staging, resolveFullPaths: true });
    const compiled = Date.now();

    for (const dir of SOURCE_DIRS) {
      fs.cpSync(path.join(ROOT, dir), path.join(staging, dir), {
        recursive: true,
        filter: (src) => fs.statSync(src).isDirectory() || isAsset(src),
      });
    }
    fs.mkdirSync(path.join(staging, 'bin'), { recursive: true });
    fs.writeFileSync(
      path.join(staging, 'bin', 'mixroute.js'),
      '#!/usr/bin/env node\n// The entry of the build (scripts/build.ts): the compiled CLI, no TypeScript loader.\nawait import(\'../src/cli.js\');\n',
      { mode: 0o755 },
    );

    say('bundling the workflow code (bundleWorkflowCode)...');
    // The SDK's bundler logs every module at INFO; only its warnings and errors matter here.
    const { code } = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: { trace: () => {}, debug: () => {}, info: () => {}, log: () => {}, warn: (m) => say(`bundler: ${m}`), error: (m) => say(`bundler: ${m}`) },
    });
    fs.writeFileSync(path.join(staging, 'workflow-bundle.js'), code);

    swapIn(staging, outDir);
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s (tsc ${((compiled - started) / 1000).toFixed(1)} s, workflow bundle ${(code.length / 1024).toFixed(0)} KiB)`);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  // tsc has already printed its diagnostics; this is the one line saying the build failed.
  say(`failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  process.exit(1);
});
