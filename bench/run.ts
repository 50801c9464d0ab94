/**
 * `npm run bench [-- NAME...]`: runs bench/<NAME>.bench.ts (all of them when no
 * name is given). Each benchmark prints its figures and writes
 * .data/bench/<NAME>.json (BENCH_RESULTS_DIR) itself, never into the repository. Benchmarks never run under `npm test`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const available = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ') || '(none)'}`);
  process.exit(2);
}
const toRun = wanted.length ? wanted : available;
if (toRun.length === 0) {
  console.log('no benchmarks yet (bench/*.bench.ts)');
  process.exit(0);
}
let failed = 0;
for (const name of toRun) {
  console.log(`== ${name}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(dir, `${name}.bench.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
