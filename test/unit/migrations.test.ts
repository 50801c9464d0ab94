import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index';

describe('migration list', () => {
  it('lists every migration file in the folder, in name order, under its file name', () => {
    const dir = fileURLToPath(new URL('../../migrations/', import.meta.url));
    const files = fs
      .readdirSync(dir)
      .filter((f) => /^\d{14}_.+\.ts$/.test(f))
      .sort();
    expect(migrations.map(([name]) => name)).toEqual(files);
  });

  it('gives each migration an up and a down', () => {
    for (const [name, m] of migrations) {
      expect(typeof m.up, name).toBe('function');
      expect(typeof m.down, name).toBe('function');
    }
  });
});
