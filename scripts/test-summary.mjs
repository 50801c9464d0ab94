// Prints "N passed, N failed" from vitest's JSON reports (one or more runs,
// summed). Exits non-zero when a report is missing or no test ran, so an empty
// or unfinished run cannot look green.
import fs from 'node:fs';

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.data/test-report.json'];
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = false;
const failures = [];
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
  for (const f of report.testResults ?? []) {
    const name = String(f.name ?? '').replace(process.cwd() + '/', '');
    const failedTests = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
    if (f.status === 'failed' && failedTests.length === 0) failures.push(`${name}: ${firstLine(f.message)}`);
    for (const a of failedTests) failures.push(`${name} > ${a.fullName ?? a.title}: ${firstLine(a.failureMessages?.[0])}`);
  }
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
// CI shows only the tail of its output: name each failure just above the summary.
for (const line of failures) console.log(`[ci] FAILED ${line}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(passed === 0 || missing ? 1 : 0);

function firstLine(text) {
  return String(text ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? '';
}
