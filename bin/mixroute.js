#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx: one loader for the CLI,
// the servers, the worker and the migrations, with no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
