import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkerOptions } from '@temporalio/worker';
import { AppError } from '../errors';

/** The workflow entry the worker bundles; workflows/ holds deterministic code only. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

/**
 * Where `npm run build` writes the workflow bundle (scripts/build.ts): dist/workflow-bundle.js,
 * which is ../../workflow-bundle.js from this module compiled to dist/src/worker/.
 */
export const PREBUILT_BUNDLE_PATH = fileURLToPath(new URL('../../workflow-bundle.js', import.meta.url));

/** Compiled code without the workflow bundle the build writes beside it. */
export class MissingWorkflowBundleError extends AppError {
  constructor(readonly codePath: string) {
    super(`the prebuilt workflow bundle ${codePath} is missing: run \`npm run build\``);
  }
}

/**
 * The worker's workflow code. Compiled (running from dist/, which bin/mixroute.js does with
 * NODE_ENV=production) it is the bundle the build made ahead of time: no webpack at start-up,
 * and every worker of a release runs byte-for-byte the same workflow code. From the sources
 * (tsx, vitest) it is bundled at start-up, as `Worker.create` does with `workflowsPath`.
 */
export function workflowCodeOptions(compiled = import.meta.url.endsWith('.js')): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (!compiled) return { workflowsPath: WORKFLOWS_PATH };
  if (!fs.existsSync(PREBUILT_BUNDLE_PATH)) throw new MissingWorkflowBundleError(PREBUILT_BUNDLE_PATH);
  // The bundle carries its source map inline (SDK 1.24), so stack traces point into workflows/*.ts.
  return { workflowBundle: { codePath: PREBUILT_BUNDLE_PATH } };
}
