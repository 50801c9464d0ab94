#!/usr/bin/env node
// With NODE_ENV=production (any case, as src/config.ts reads it) this runs the build
// in dist/ (`npm run build`): plain JavaScript, no TypeScript loader, the workflow
// code bundled ahead of time. Otherwise it runs the TypeScript sources through tsx,
// with no build step to forget while developing.
import fs from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

// eslint-disable-next-line no-restricted-properties -- the launcher chooses which code to load, before src/config.ts is loaded
if (process.env.NODE_ENV?.trim().toLowerCase() === 'production') {
  const entry = new URL('../dist/src/cli.js', import.meta.url);
  if (!fs.existsSync(fileURLToPath(entry))) {
    // Exit code 2 like any other set-up mistake (a bad setting): nothing ran.
    process.stderr.write('error: NODE_ENV=production runs the build in dist/, which is missing: run `npm run build` first\n');
    process.exit(2);
  }
  await import(entry.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
