import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Workflow code is replayed and must be deterministic: it may import only the
 * workflow SDK, types, other workflow modules and pure domain modules.
 */
const ALLOWED = [/^@temporalio\/workflow$/, /^@temporalio\/common$/, /^\.\/[\w./-]+$/, /^\.\.\/src\/(billing|privacy)\/[\w/-]+$/, /^decimal\.js$/];
const TYPE_ONLY_ALLOWED = [/^\.\.\/activities(\/[\w-]+)?$/];

describe('workflow imports', () => {
  const dir = fileURLToPath(new URL('../../workflows/', import.meta.url));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));

  it('finds workflow files', () => {
    expect(files).toContain('index.ts');
  });

  for (const file of files) {
    it(`${file} imports only deterministic modules`, () => {
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const typeOnly = Boolean(m[2]);
        const spec = m[3]!;
        const ok = ALLOWED.some((re) => re.test(spec)) || (typeOnly && TYPE_ONLY_ALLOWED.some((re) => re.test(spec)));
        expect(ok, `${file} imports ${typeOnly ? 'type ' : ''}${spec}`).toBe(true);
      }
    });
  }
});
