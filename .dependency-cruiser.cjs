/**
 * The layer check (issue 19; docs/architecture.md "Layers"): the arrows of the target
 * layout as dependency-cruiser rules. `npm run lint:layers` (scripts/layers.ts, also run
 * by `npm test`) applies them, and adds the one rule dependency-cruiser cannot baseline
 * itself: no cycles between top-level folders.
 *
 * Today's code breaks some of these rules. Those dependencies are listed in
 * .dependency-cruiser-known-violations.json and are skipped, so only a NEW violation
 * fails. The reorganisation removes entries from that file; nothing is added to it.
 *
 * Paths are relative to the repository root. Type-only imports stay in the graph,
 * labelled 'type-only', so a rule can tell `import type` from a runtime import.
 */

/** Anchored alternation of exact paths, for a rule's path / pathNot. */
const exactly = (paths) => `^(${paths.map((p) => p.replace(/[.]/g, '\\.')).join('|')})$`;

/** A rules file: pure (no I/O, no clock, no randomness), so workflows may import it. */
const RULES = ['\\.rules\\.ts$'];

/** Data access: the only files that may import knex or pg. Migrations are schema code. */
const DATA_ACCESS = ['^src/db/', '\\.data\\.ts$', '^migrations/'];

/**
 * Process entry points and composition roots: they open the database pool (createDb from
 * src/db/knex.ts), or receive it, and build the services they hand on, so they may import
 * src/db/knex.ts and nothing else from data access. A composition root is where one
 * interface (the activities, the admin API, the console, the gateway) is wired to its
 * services; the handlers behind it see services only.
 */
const ENTRY_POINTS = [
  'src/cli.ts',
  'src/cli/shared.ts', // withDb opens the pool for the command groups
  'src/cli/system.ts', // migrate and doctor open their own pool
  'src/dev.ts',
  'src/admin/server.ts',
  'src/gateway/server.ts',
  'src/worker/runWorker.ts',
  'src/worker/worker.ts',
  'src/dev/demo.ts',
  'src/demo/traffic.ts',
  // composition roots
  'activities/index.ts',
  'src/admin/app.ts',
  'src/console/app.ts',
  'src/gateway/app.ts',
];

/** Node built-ins that do I/O or reach outside the process. */
const NODE_IO = [
  'fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'tls', 'dgram', 'dns', 'dns/promises',
  'child_process', 'cluster', 'worker_threads', 'readline', 'os', 'inspector', 'v8', 'vm',
];
const NODE_IO_PATH = `^(node:)?(${NODE_IO.join('|')})$`;

/** npm packages that do I/O: the database, Temporal's client side, HTTP, mail, logs. */
const IO_PACKAGES = ['knex', 'pg', 'pg-[^/]+', '@temporalio/(client|worker|activity)', 'express', 'undici', 'nodemailer', 'stripe', 'pino'];
const IO_PACKAGES_PATH = `(^|/)node_modules/(${IO_PACKAGES.join('|')})/`;

/** npm packages a rules file may use: deterministic computation only. */
const PURE_PACKAGES_PATH = '(^|/)node_modules/(decimal\\.js|csv-parse)/';

module.exports = {
  forbidden: [
    {
      name: 'workflow-imports-only-sdk-messages-rules',
      severity: 'error',
      comment:
        'Workflow code is replayed and must be deterministic: a workflow imports only @temporalio/workflow, other ' +
        'workflow modules (message types from workflows/messages.ts) and rules files (*.rules.ts). Move the logic into a rules file, or do the I/O in an activity.',
      from: { path: '^workflows/' },
      to: {
        pathNot: ['^workflows/', '(^|/)node_modules/@temporalio/workflow/', '^activities/index\\.ts$', ...RULES],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'workflow-imports-activities-as-types-only',
      severity: 'error',
      comment:
        'A workflow names its activities only as a type (import type { Activities } from "../activities") for ' +
        'proxyActivities; a runtime import would bundle the activities and their I/O into the workflow sandbox.',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'rules-import-no-io',
      severity: 'error',
      comment:
        'Rules files (*.rules.ts) are pure: no knex, pg, Temporal ' +
        'client, express, undici or other I/O package, and no Node I/O built-in (fs, net, http, child_process, ...). ' +
        'Take the data as arguments; the I/O belongs in a *.data.ts file or a service.',
      from: { path: RULES },
      to: { path: [IO_PACKAGES_PATH, NODE_IO_PATH] },
    },
    {
      name: 'rules-import-only-rules',
      severity: 'error',
      comment:
        'Workflows import rules files, so whatever a rules file imports lands in the workflow sandbox: a rules file ' +
        'imports (other than as a type) only other rules files and deterministic packages (decimal.js, csv-parse).',
      from: { path: RULES },
      to: { pathNot: [...RULES, PURE_PACKAGES_PATH], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'knex-only-in-data-access',
      severity: 'error',
      comment:
        'Only data-access files (*.data.ts in a domain folder; src/db/** until the reorganisation empties it) ' +
        'import knex or pg. Put the query in the domain\'s *.data.ts and call it from the service.',
      from: { pathNot: DATA_ACCESS },
      to: { path: '(^|/)node_modules/(knex|pg|pg-[^/]+)/' },
    },
    {
      name: 'data-access-only-from-services',
      severity: 'error',
      comment:
        'The database handle (Db, DbOrTrx from src/db/knex.ts) and data-access functions are used only by ' +
        'data-access files and services (*.service.ts): routes, console pages, CLI commands and activities call a ' +
        'service, and a query elsewhere belongs in a *.data.ts file.',
      from: { pathNot: [...DATA_ACCESS, '\\.service\\.ts$', exactly(ENTRY_POINTS)] },
      to: { path: DATA_ACCESS },
    },
    {
      name: 'entry-points-open-the-pool-only',
      severity: 'error',
      comment:
        'A process entry point opens the pool with createDb (src/db/knex.ts), prepares the database (src/db/database.ts, ' +
        'src/db/migrate.ts, src/db/embeddedPostgres.ts) and passes the pool to services; any other use of data access ' +
        'goes through a service.',
      from: { path: exactly(ENTRY_POINTS) },
      to: { path: DATA_ACCESS, pathNot: '^src/db/(knex|database|migrate|embeddedPostgres)\\.ts$' },
    },
    {
      name: 'activities-import-no-express',
      severity: 'error',
      comment: 'Activities are called by Temporal, not over HTTP: they call services and know nothing of express.',
      from: { path: '^activities/' },
      to: { path: '(^|/)node_modules/(express|@types/express)/' },
    },
    {
      name: 'gateway-imports-no-admin-or-console',
      severity: 'error',
      comment:
        'The gateway is the hot path and its own process: it does not pull in the admin API or the console. ' +
        'Move what both need into a domain folder.',
      from: { path: '^src/gateway/' },
      to: { path: '^src/(admin|console)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['^src/console/assets/', '\\.test\\.ts$'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
