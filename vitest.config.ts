import { defineConfig } from 'vitest/config';

/**
 * Three projects: `unit` (pure modules, no services), `integration` (real
 * PostgreSQL and a real Temporal dev server, both prepared once per run by
 * test/global-setup.ts), run together; then `cluster` (a two-node Temporal
 * cluster over TLS, scripts/cluster). The JSON report feeds .ci/run's closing line.
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
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/security/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          sequence: { groupOrder: 0 },
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        // A two-node Temporal cluster over TLS with MixRoute on it (scripts/cluster): no dev
        // server, each file starts its own cluster. `npx vitest run --project cluster`.
        extends: true,
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          // One cluster at a time: each is two Temporal servers and five Node processes.
          fileParallelism: false,
          // After the other projects have finished: a cluster beside them would starve both on two cores.
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          // A first start may build the Temporal server (minutes, once) and `npm run build`.
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
