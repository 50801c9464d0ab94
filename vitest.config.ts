import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` (pure modules, no services) and `integration`
 * (real PostgreSQL and a real Temporal dev server, both prepared once per run
 * by test/global-setup.ts). The JSON report feeds .ci/run's closing line.
 */
export default defineConfig({
  test: {
    pool: 'forks',
    // Two cores: two files at a time keeps the dev server and PostgreSQL responsive.
    maxWorkers: 2,
    reporters: ['default', ['json', { outputFile: '.data/test-report.json' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'src/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/security/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
