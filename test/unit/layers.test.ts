import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLayers, folderOf, type LayerCheck } from '../../scripts/layers';

/**
 * The layer check (.dependency-cruiser.cjs + scripts/layers.ts) run on a small planted
 * tree in a temporary directory laid out like the repository, with the repository's
 * own config: a clean workflow passes, and each kind of planted import is reported
 * under its rule.
 */
const repo = fileURLToPath(new URL('../../', import.meta.url));

const files: Record<string, string> = {
  'activities/index.ts': 'export interface Activities { ping(): Promise<void> }\n',
  'workflows/messages.ts': "import { defineSignal } from '@temporalio/workflow';\nexport const wake = defineSignal('wake');\n",
  'src/shared/money.rules.ts': "import Decimal from 'decimal.js';\nexport const zero = new Decimal(0);\n",
  'src/metering/shards.rules.ts': "import { zero } from '../shared/money.rules';\nexport const first = zero;\n",
  'workflows/good.ts': [
    "import { proxyActivities } from '@temporalio/workflow';",
    "import type { Activities } from '../activities';",
    "import { zero } from '../src/shared/money.rules';",
    "import { first } from '../src/metering/shards.rules';",
    "import { wake } from './messages';",
    "export const a = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });",
    'export const all = [zero, first, wake];',
    '',
  ].join('\n'),
  'src/db/knex.ts': "import knexFactory from 'knex';\nexport const db = knexFactory({ client: 'pg' });\n",
  // Planted violations.
  'workflows/bad.ts': "import { db } from '../src/db/knex';\nexport const d = db;\n",
  'src/metering/bad.rules.ts': "import knexFactory from 'knex';\nimport fs from 'node:fs';\nexport const k = [knexFactory, fs];\n",
  'src/admin/a.ts': "import { b } from '../console/b';\nexport const a = b;\n",
  'src/console/b.ts': "import type { a } from '../admin/a';\nexport const b = 1;\nexport type A = typeof a;\n",
  'src/gateway/route.ts': "import { a } from '../admin/a';\nexport const r = a;\n",
  'activities/http.ts': "import type { Request } from 'express';\nexport type R = Request;\n",
};

let dir: string;
let check: LayerCheck;
const found = () => check.newViolations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-layers-'));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  check = await checkLayers({
    baseDir: dir,
    roots: ['src', 'activities', 'workflows'],
    configFile: path.join(repo, '.dependency-cruiser.cjs'),
  });
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('layer check', () => {
  it('lets a workflow import the SDK, messages, rules files, pure modules and its activities as a type', () => {
    expect(found().filter((v) => v.includes('workflows/good.ts'))).toEqual([]);
    expect(found().filter((v) => v.includes('shards.rules.ts'))).toEqual([]);
  });

  it('reports a workflow importing data access', () => {
    expect(found()).toContain('workflow-imports-only-sdk-messages-rules: workflows/bad.ts -> src/db/knex.ts');
  });

  it('reports a rules file importing knex or a Node I/O built-in', () => {
    const rulesFile = found().filter((v) => v.startsWith('rules-import-no-io: src/metering/bad.rules.ts -> '));
    expect(rulesFile.some((v) => /node_modules\/knex\//.test(v))).toBe(true);
    expect(rulesFile.some((v) => /-> (node:)?fs$/.test(v))).toBe(true);
    expect(found().some((v) => v.startsWith('knex-only-in-data-access: src/metering/bad.rules.ts -> '))).toBe(true);
  });

  it('reports folders that import each other, type-only imports included', () => {
    expect(found()).toContain('no-cycles-between-folders: src/admin -> src/console');
    expect(found()).toContain('no-cycles-between-folders: src/console -> src/admin');
    expect(check.report).toMatch(/no-cycles-between-folders: src\/admin -> src\/console -> src\/admin/);
  });

  it('reports the gateway importing the admin API, and activities importing express', () => {
    expect(found()).toContain('gateway-imports-no-admin-or-console: src/gateway/route.ts -> src/admin/a.ts');
    expect(found().some((v) => v.startsWith('activities-import-no-express: activities/http.ts -> '))).toBe(true);
  });

  it('explains each violation with the rule and its reason', () => {
    expect(check.report).toContain('error workflow-imports-only-sdk-messages-rules: workflows/bad.ts -> src/db/knex.ts');
    expect(check.report).toContain('Workflow code is replayed and must be deterministic');
  });

  it('skips known violations and fails only on new ones', async () => {
    const known = check.newViolations.filter((v) => v.rule.name === 'no-cycles-between-folders');
    const again = await checkLayers({
      baseDir: dir,
      roots: ['src', 'activities', 'workflows'],
      configFile: path.join(repo, '.dependency-cruiser.cjs'),
      baseline: known,
    });
    expect(again.knownCount).toBe(known.length);
    expect(again.newViolations.some((v) => v.rule.name === 'no-cycles-between-folders')).toBe(false);
    expect(again.newViolations.some((v) => v.from === 'workflows/bad.ts')).toBe(true);
  });
});

describe('folderOf', () => {
  it('groups by top-level folder; root files and the message contract stand alone', () => {
    expect(folderOf('src/gateway/anthropic/handler.ts')).toBe('src/gateway');
    expect(folderOf('src/config.ts')).toBe('src/config.ts');
    expect(folderOf('workflows/messages.ts')).toBe('workflows/messages.ts');
    expect(folderOf('workflows/topUp.ts')).toBe('workflows');
    expect(folderOf('node_modules/knex/types/index.d.ts')).toBeNull();
    expect(folderOf('fs')).toBeNull();
  });
});
