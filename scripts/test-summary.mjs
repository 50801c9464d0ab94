// Prints "N passed, N failed" from vitest's JSON reports (one or more runs,
// summed). Exits non-zero when a report is missing or no test ran, so an empty
// or unfinished run cannot look green.
import fs from 'node:fs';

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.data/test-report.json'];
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = false;
for (const file of files) {
  let report;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    console.error(`[ci] no test report at ${file}: the test run did not finish`);
    missing = true;
    continue;
  }
  passed += report.numPassedTests ?? 0;
  // A file that failed to load has no failed tests but is a failure all the same.
  const brokenFiles = (report.testResults ?? []).filter(
    (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
  ).length;
  failed += (report.numFailedTests ?? 0) + brokenFiles;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(passed === 0 || missing ? 1 : 0);
