import { DEFAULT_DUNNING_SCHEDULE, parseDunningSchedule, type DunningStep } from './shared/dunning.rules';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { loadClientConfigProfile, type ClientConfigProfile } from '@temporalio/envconfig';
import { allowedHostEntryProblem } from './shared/upstreamAddressPolicy';

/** A comma-separated host allow-list (src/shared/upstreamAddressPolicy.ts): `*` is any public address; private and loopback ones only when named. */
const allowedHosts = z
  .string()
  .default('*')
  .transform((v, ctx) => {
    const list = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const entry of list) {
      const problem = allowedHostEntryProblem(entry);
      if (problem) ctx.addIssue({ code: 'custom', message: `${problem}; expected comma-separated host names, *.domain, addresses, CIDR ranges or *` });
    }
    return list;
  });

/**
 * Usage expiry's pause after each dropped day, as a multiple of the day's time: on disks
 * that discard freed blocks synchronously a drop stalls every fsync, and 0.3 kept the
 * batcher's insert p99 within its target in the retention benchmark (docs/benchmarks.md).
 */
export const DEFAULT_RETENTION_PAUSE_FACTOR = 0.3;
import { z } from 'zod';

/**
 * The one place that reads the environment. Everything else receives a Config.
 * Parsing reports every invalid variable at once so a bad deployment fails at
 * start with the whole list, not later with an `undefined`.
 */

const port = z.coerce.number().int().min(0).max(65535);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

export const configSchema = z.object({
  DATABASE_URL: z
    .string()
    .default('postgres://postgres@127.0.0.1:5432/mixroute')
    .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  // disable: plain text; require: encrypted, server not verified; verify-full: CA and host name checked.
  DATABASE_SSL_MODE: z.enum(['disable', 'require', 'verify-full']).default('disable'),
  DATABASE_SSL_CA: optionalString,
  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('mixroute'),
  // Temporal's environment configuration (@temporalio/envconfig); resolved by temporalConnectionSettings below.
  TEMPORAL_TLS: z.enum(['true', 'false', '1', '0']).optional(),
  TEMPORAL_CONFIG_FILE: optionalString,
  TEMPORAL_PROFILE: optionalString,
  TEMPORAL_CLI: optionalString,
  TEMPORAL_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  WORKER_MAX_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(2_000).default(100),
  WORKER_MAX_WORKFLOW_TASK_POLLS: z.coerce.number().int().min(2).max(200).default(20),
  WORKER_WORKFLOW_THREADS: z.coerce.number().int().min(1).max(16).default(1),
  HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: port.default(8080),
  ADMIN_PORT: port.default(8081),
  DATA_DIR: z.string().min(1).default('.data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // `mixroute dev` in a terminal sets pretty for its parts; JSON lines everywhere else.
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  NODE_ENV: optionalString,
  // `mixroute dev` on a fresh database: a local demo provider, priced models, an account with credit, a key.
  DEV_DEMO: z.enum(['0', '1']).default('1'),
  DEV_DEMO_PROVIDER_PORT: port.default(8090),
  READY_CHECK_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2_000),
  GATEWAY_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, ".", "_" or "-"')
    .default('gateway'),
  GATEWAY_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(10 * 1024 * 1024),
  // Revocation must reach every instance within 5 s, so a cached key lives at most that long.
  GATEWAY_KEY_CACHE_MS: z.coerce.number().int().min(0).max(5_000).default(2_000),
  GATEWAY_ROUTING_REFRESH_MS: z.coerce.number().int().min(100).max(300_000).default(5_000),
  GATEWAY_DEFAULT_RPM: z.coerce.number().int().min(0).default(0),
  // Account read API (GET /v1/key, /v1/credits, /v1/generation, /v1/activity) per key and minute, per instance; 0: off.
  GATEWAY_ACCOUNT_API_RPM: z.coerce.number().int().min(0).max(100_000).default(120),
  GATEWAY_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  // Failed authentications per source address (IPv6: per /64) and minute, refused before any key lookup; 0 turns the limit off.
  GATEWAY_AUTH_FAILURES_PER_MIN: z.coerce.number().int().min(0).max(100_000).default(30),
  GATEWAY_AUTH_LIMITER_MAX_ADDRESSES: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
  GATEWAY_KEY_CACHE_MAX_ENTRIES: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
  GATEWAY_SECURITY_EVENT_WINDOW_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
  UPSTREAM_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(10).default(5_000),
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS: z.coerce.number().int().min(10).default(60_000),
  UPSTREAM_IDLE_TIMEOUT_MS: z.coerce.number().int().min(10).default(60_000),
  UPSTREAM_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(256),
  UPSTREAM_MAX_RESPONSE_BYTES: z.coerce.number().int().min(1024).default(32 * 1024 * 1024),
  UPSTREAM_MAX_STREAM_EVENT_BYTES: z.coerce.number().int().min(1024).default(16 * 1024 * 1024),
  // See src/gateway/upstreamAddress.ts: `*` is any public address; private and loopback ones only when named.
  UPSTREAM_ALLOWED_HOSTS: allowedHosts,
  // /metrics is served on its own listener, on loopback unless the operator says otherwise.
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_METRICS_PORT: port.default(9464),
  ADMIN_METRICS_PORT: port.default(9465),
  METERING_BATCH_MS: z.coerce.number().int().min(10).max(60_000).default(200),
  // Per settlement shard: at most SETTLEMENT_SHARDS × 4 wake-ups a second per gateway (see the deduction benchmark).
  METERING_SIGNAL_THROTTLE_MS: z.coerce.number().int().min(0).max(60_000).default(250),
  PREPAID_OVERDRAFT_ALLOWANCE: z.string().refine((v) => /^\d+(\.\d+)?$/.test(v), 'a non-negative decimal such as "0.50"').default('0'),
  GATEWAY_HOLD_SLICE: z.string().refine((v) => /^\d+(\.\d+)?$/.test(v) && Number(v) > 0, 'a positive decimal such as "1.00"').default('1.00'),
  GATEWAY_HOLD_TTL_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS: z.coerce.number().int().min(1).default(4_096),
  PAYMENT_WEBHOOK_SECRET: optionalString,
  PAYMENT_WEBHOOK_TOLERANCE_S: z.coerce.number().int().min(1).max(3_600).default(300),
  SETTLE_MIN_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  SETTLE_SWEEP_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(60_000),
  SETTLEMENT_SHARDS: z.coerce.number().int().min(1).max(1_024).default(16),
  SETTLEMENT_BATCH_EVENTS: z.coerce.number().int().min(10).max(100_000).default(5_000),
  DEV_WORKERS: z.coerce.number().int().min(1).max(8).default(1),
  INVOICE_ISSUER_NAME: z.string().min(1).default('MixRoute GmbH'),
  INVOICE_ISSUER_ADDRESS: z.string().min(1).default('Musterstraße 1, 10115 Berlin, Germany'),
  INVOICE_ISSUER_COUNTRY: z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as DE').default('DE'),
  INVOICE_ISSUER_VAT_ID: z.string().min(1).default('DE000000000'),
  INVOICE_ISSUER_EMAIL: z.string().min(3).default('billing@mixroute.example'),
  INVOICE_SERIES_PREFIX: z.string().regex(/^[A-Z]{1,8}$/, 'upper-case letters').default('MR'),
  INVOICE_PAYMENT_TERMS_DAYS: z.coerce.number().int().min(0).max(365).default(14),
  DUNNING_SCHEDULE: z
    .string()
    .max(400)
    .default(DEFAULT_DUNNING_SCHEDULE)
    .transform((v, ctx) => {
      try {
        return parseDunningSchedule(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  // Sub-processor changes (docs/processing-register.md#sub-processor-changes): the notice period, 30 days unless set.
  SUBPROCESSOR_NOTICE_S: z.coerce.number().int().min(0).max(365 * 86_400).default(30 * 86_400),
  DUNNING_PAUSE_RECHECK_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(3_600_000),
  STRIPE_SECRET_KEY: optionalString,
  // Top-ups through hosted checkout (docs/ledger.md#hosted-checkout): bounds in the account's currency.
  CHECKOUT_MIN_AMOUNT: z.string().regex(/^\d{1,9}(\.\d{1,2})?$/, 'a decimal amount, e.g. 5 or 5.00').default('5'),
  CHECKOUT_MAX_AMOUNT: z.string().regex(/^\d{1,9}(\.\d{1,2})?$/, 'a decimal amount, e.g. 10000').default('10000'),
  // The payment provider's API; only for a local stand-in in tests and development (the official client's default otherwise).
  STRIPE_API_URL: z
    .string()
    .url()
    .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL')
    .optional(),
  // Where the provider's hosted checkout pages are: the console lets its forms lead there (CSP form-action) and nowhere else.
  // Unset: the stand-in's own address when STRIPE_API_URL is set, else Stripe's checkout.
  STRIPE_CHECKOUT_ORIGIN: z
    .string()
    .url()
    .refine((v) => /^https?:\/\/[^/]+\/?$/.test(v), 'an origin: scheme, host and port only, such as https://checkout.stripe.com')
    .optional(),
  INVOICE_GRACE_HOURS: z.coerce.number().min(0).max(24 * 31).default(6),
  INVOICE_RUN_CONCURRENCY: z.coerce.number().int().min(1).max(500).default(8),
  INVOICE_RUN_PAGE_SIZE: z.coerce.number().int().min(1).max(5_000).default(500),
  RECONCILE_SETTLEMENT_LAG_S: z.coerce.number().int().min(0).max(86_400).default(900),
  RECONCILE_PAYMENT_GRACE_S: z.coerce.number().int().min(0).max(86_400).default(900),
  RECONCILE_DAILY_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (UTC)')
    .default('02:30'),
  DSR_PACKAGE_KEY: optionalString,
  DSR_VERIFICATION_WAIT_S: z.coerce.number().int().min(1).default(14 * 86_400),
  // A 6-digit code is guessable in a million tries: it lives an hour and its hash is keyed.
  DSR_CODE_TTL_S: z.coerce.number().int().min(1).default(3_600),
  DSR_CODE_KEY: optionalString,
  DSR_REMINDER_BEFORE_S: z
    .string()
    .default('604800,172800')
    .transform((v, ctx) => {
      const list = v.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
      if (list.some((n) => !Number.isInteger(n) || n <= 0)) ctx.addIssue({ code: 'custom', message: 'comma-separated positive whole seconds, e.g. 604800,172800' });
      return list;
    }),
  DSR_DEADLINE_OVERRIDE_S: z.coerce.number().int().min(1).optional(),
  DSR_PACKAGE_TTL_S: z.coerce.number().int().min(60).default(7 * 86_400),
  DSR_PACKAGE_MAX_DOWNLOADS: z.coerce.number().int().min(1).max(100).default(3),
  DSR_COMPLIANCE_EMAIL: z.string().min(3).default('privacy@mixroute.example'),
  DSR_INTAKE_RPM: z.coerce.number().int().min(1).default(10),
  DSR_INTAKE_GLOBAL_RPM: z.coerce.number().int().min(1).default(30),
  // Per email and type over all its requests: filing again must not buy fresh guesses at a code.
  DSR_CODE_FAILURES_PER_DAY: z.coerce.number().int().min(1).max(1_000).default(10),
  PUBLIC_BASE_URL: optionalString,
  RETENTION_DAILY_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (UTC)')
    .default('03:30'),
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(100).max(100_000).default(5_000),
  RETENTION_PAUSE_FACTOR: z.coerce.number().min(0).max(100).default(DEFAULT_RETENTION_PAUSE_FACTOR),
  SMTP_URL: optionalString,
  MAIL_FROM: z.string().min(3).default('MixRoute Privacy <privacy@mixroute.example>'),
  // Webhook endpoints (docs/webhooks.md): same grammar as UPSTREAM_ALLOWED_HOSTS, checked where deliveries connect.
  WEBHOOK_ALLOWED_HOSTS: allowedHosts,
  WEBHOOK_SECRET_KEY: optionalString,
  // Seals customer console TOTP secrets (base64, 32 bytes); unset, a key file under DATA_DIR/secrets/.
  CONSOLE_TOTP_KEY: optionalString,
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  WEBHOOK_RETRY_INITIAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(5_000),
  WEBHOOK_RETRY_MAX_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(6 * 3_600_000),
  // The issue's bound: a delivery is retried for at most three days.
  WEBHOOK_RETRY_WINDOW_S: z.coerce.number().int().min(1).max(3 * 86_400).default(3 * 86_400),
  WEBHOOK_DISABLE_AFTER_FAILURES: z.coerce.number().int().min(1).max(10_000).default(20),
  WEBHOOK_DISABLE_MIN_FAILING_S: z.coerce.number().int().min(0).max(30 * 86_400).default(86_400),
  WEBHOOK_DISPATCH_POLL_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
});

export type Env = Record<string, string | undefined>;

export interface Config {
  readonly databaseUrl: string;
  readonly databasePoolMax: number;
  /** TLS to PostgreSQL (DATABASE_SSL_MODE, DATABASE_SSL_CA); src/db/knex.ts turns it into the driver's options. */
  readonly databaseSsl: DatabaseSslSettings;
  readonly temporal: {
    /**
     * Set (TEMPORAL_ADDRESS or the profile's address): use that server and start none.
     * Unset: `mixroute dev` starts a local dev server.
     */
    readonly address: string | undefined;
    /** TEMPORAL_NAMESPACE, else the profile's namespace, else `default`. */
    readonly namespace: string;
    /** TLS, API key and the rest of the connection (src/temporal/connection.ts turns it into connect options). */
    readonly connection: TemporalConnectionSettings;
    readonly taskQueue: string;
    readonly cliPath: string | undefined;
    readonly devServerPort: number;
    /** `mixroute dev` starts this many worker processes on the task queue. */
    readonly devWorkers: number;
    readonly uiPort: number;
    /**
     * Workflow task slots and pollers on each worker. Settlement runs as a local
     * activity inside a workflow task, so a slot is held for the settlement's
     * transaction; the SDK's defaults (40 and 10) queued metering workflow tasks
     * for seconds at 500 requests/s over 100 accounts.
     */
    readonly maxWorkflowTasks: number;
    readonly maxWorkflowTaskPolls: number;
    readonly workflowThreads: number;
  };
  readonly host: string;
  readonly gatewayPort: number;
  readonly adminPort: number;
  /** Where /metrics listens (its own port per server; 0: any free port). */
  readonly metrics: { readonly host: string; readonly gatewayPort: number; readonly adminPort: number };
  readonly dataDir: string;
  /** CONSOLE_TOTP_KEY: seals customer console TOTP secrets (base64, 32 bytes); unset, a key under DATA_DIR/secrets/. */
  readonly consoleTotpKey: string | undefined;
  readonly logLevel: z.infer<typeof configSchema>['LOG_LEVEL'];
  /** Unset: JSON lines, except `mixroute dev` at a terminal (src/dev/logFormat.ts). */
  readonly logFormat: 'json' | 'pretty' | undefined;
  /** `mixroute dev` only. With NODE_ENV=production (`production`), no demo and no pretty logs. */
  readonly dev: { readonly demo: boolean; readonly demoProviderPort: number; readonly production: boolean };
  readonly readyCheckTimeoutMs: number;
  readonly gateway: {
    readonly instanceId: string;
    readonly maxBodyBytes: number;
    readonly keyCacheMs: number;
    readonly routingRefreshMs: number;
    readonly defaultRpm: number;
    /** Account read API requests per key and minute (0: no bound of its own). */
    readonly accountApiRpm: number;
    readonly shutdownGraceMs: number;
    readonly trustedProxies: readonly string[];
    /** Failed authentications per source address and minute (0: no limit). */
    readonly authFailuresPerMinute: number;
    readonly authLimiterMaxAddresses: number;
    readonly keyCacheMaxEntries: number;
    /** Security events are counted per address and window of this length. */
    readonly securityEventWindowMs: number;
  };
  readonly upstream: {
    readonly connectTimeoutMs: number;
    readonly firstByteTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly maxConnections: number;
    /** A provider's non-streamed answer larger than this is refused (502). */
    readonly maxResponseBytes: number;
    /** One SSE event of a provider's stream larger than this cuts the stream. */
    readonly maxStreamEventBytes: number;
    /** UPSTREAM_ALLOWED_HOSTS entries, checked against the address connected to. */
    readonly allowedHosts: readonly string[];
  };
  readonly billing: {
    /** How far below zero a prepaid account may go (decimal string, USD). */
    readonly overdraftAllowance: string;
    /** How much spendable balance a gateway instance reserves at a time per account. */
    readonly holdSlice: string;
    readonly holdTtlMs: number;
    /** Output tokens assumed for the balance hold when a request sets no max_tokens. */
    readonly defaultMaxOutputTokens: number;
    readonly webhookSecret: string | undefined;
    readonly webhookToleranceS: number;
    /** accountMetering: least time between two settlements, and the idle sweep period. */
    readonly settleMinIntervalMs: number;
    readonly settleSweepMs: number;
    /** Settlement shards (`settlement:{shard}` workflows); an account's shard is a stable hash of its id. Gateways and workers must agree. */
    readonly settlementShards: number;
    /** Most usage events one settlement pass takes (one transaction); a shard loops while more are pending. */
    readonly settlementBatchEvents: number;
  };
  readonly invoicing: {
    readonly issuer: { readonly name: string; readonly address: string; readonly country: string; readonly vatId: string; readonly email: string };
    readonly seriesPrefix: string;
    readonly paymentTermsDays: number;
    /** The dunning schedule of every finalized postpaid invoice (DUNNING_SCHEDULE, docs/collections.md). */
    readonly dunningSchedule: readonly DunningStep[];
    readonly dunningPauseRecheckMs: number;
    /** Payment requests for postpaid invoices (a Stripe PaymentIntent each); absent key: none are created. */
    readonly stripe: { readonly secretKey: string | undefined; readonly apiUrl: string | undefined };
    /** A period may be invoiced this long after it ends (late events), unless forced. */
    readonly graceHours: number;
    readonly runConcurrency: number;
    readonly runPageSize: number;
  };
  readonly reconcile: {
    /** Unsettled usage older than this (by finish time) is overdue: reconciliation settles it. */
    readonly settlementLagS: number;
    /** Payments younger than this may still be crediting: not yet a discrepancy. */
    readonly paymentGraceS: number;
    /** When the daily run over the previous UTC day starts (UTC). */
    readonly dailyAt: { readonly hour: number; readonly minute: number };
  };
  /** Hosted checkout (top-ups, invoices): amount bounds, and the console's public base URL its return addresses are built on. */
  readonly checkout: { readonly minAmount: string; readonly maxAmount: string; readonly publicBaseUrl: string; readonly providerOrigin: string };
  readonly dsr: {
    readonly packageKey: string | undefined;
    readonly verificationWaitS: number;
    readonly codeTtlS: number;
    /** HMAC key for stored one-time codes; unset, derived from the package key. */
    readonly codeKey: string | undefined;
    readonly reminderBeforeS: readonly number[];
    /** Tests and demos: every answer deadline is this many seconds after receipt. */
    readonly deadlineOverrideS: number | undefined;
    readonly packageTtlS: number;
    readonly packageMaxDownloads: number;
    readonly complianceEmail: string;
    readonly intakeRpm: number;
    /** New public requests per minute over all admin instances (each one sends an email). */
    readonly intakeGlobalRpm: number;
    /** Wrong codes per subject email and type in 24 h, over all its requests; then the public form files nothing for it. */
    readonly codeFailuresPerDay: number;
    /** Where subjects reach the admin server's public /privacy routes (links in emails). */
    readonly publicBaseUrl: string;
  };
  readonly register: {
    /** How long a new sub-processor is held back from accounts with a data-processing agreement (SUBPROCESSOR_NOTICE_S). */
    readonly subprocessorNoticeS: number;
  };
  readonly retention: {
    readonly dailyAt: { readonly hour: number; readonly minute: number };
    /** Rows per statement in row-by-row expiry (one heartbeat each). */
    readonly batchSize: number;
    /** After each day partition it drops, usage expiry pauses this many times as long as the day took. */
    readonly pauseFactor: number;
  };
  readonly mail: {
    /** SMTP in production; unset, messages go to files under DATA_DIR/mailbox. */
    readonly smtpUrl: string | undefined;
    readonly from: string;
    readonly mailboxDir: string;
  };
  /** Webhook delivery (docs/webhooks.md). */
  readonly webhooks: {
    /** WEBHOOK_ALLOWED_HOSTS entries, checked against the address a delivery connects to. */
    readonly allowedHosts: readonly string[];
    /** Seals endpoint secrets (base64, 32 bytes); unset, a key under DATA_DIR/secrets/. */
    readonly secretKey: string | undefined;
    /** One attempt's bound: connect, headers and body together. */
    readonly timeoutMs: number;
    readonly retry: { readonly initialMs: number; readonly maxIntervalMs: number; readonly windowMs: number };
    /** An endpoint is disabled after this many failed attempts in a row ... */
    readonly disableAfterFailures: number;
    /** ... spanning at least this long (a short outage during a burst does not disable it). */
    readonly disableMinFailingS: number;
    /** How often the dispatcher looks for deliveries to start. */
    readonly dispatchPollMs: number;
  };
  readonly metering: {
    readonly batchMs: number;
    readonly signalThrottleMs: number;
    /** The gateway instance's journal directory. */
    readonly journalDir: string;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: Env = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  // NODE_ENV=Production is production too.
  const production = e.NODE_ENV?.toLowerCase() === 'production';
  const problems = databaseSslProblems(e.DATABASE_URL, e.DATABASE_SSL_MODE, e.DATABASE_SSL_CA);
  let temporalConnection: TemporalConnectionSettings | undefined;
  try {
    temporalConnection = temporalConnectionSettings(env);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length || !temporalConnection) throw new ConfigError(problems);
  return Object.freeze({
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    databaseSsl: Object.freeze({ mode: e.DATABASE_SSL_MODE, caFile: e.DATABASE_SSL_CA }),
    temporal: Object.freeze({
      address: temporalConnection.address,
      namespace: temporalConnection.namespace ?? e.TEMPORAL_NAMESPACE,
      connection: temporalConnection,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      cliPath: e.TEMPORAL_CLI,
      devServerPort: e.TEMPORAL_PORT,
      devWorkers: e.DEV_WORKERS,
      uiPort: e.TEMPORAL_UI_PORT,
      maxWorkflowTasks: e.WORKER_MAX_WORKFLOW_TASKS,
      maxWorkflowTaskPolls: Math.min(e.WORKER_MAX_WORKFLOW_TASK_POLLS, e.WORKER_MAX_WORKFLOW_TASKS),
      workflowThreads: e.WORKER_WORKFLOW_THREADS,
    }),
    host: e.HOST,
    gatewayPort: e.GATEWAY_PORT,
    adminPort: e.ADMIN_PORT,
    metrics: Object.freeze({ host: e.METRICS_HOST, gatewayPort: e.GATEWAY_METRICS_PORT, adminPort: e.ADMIN_METRICS_PORT }),
    dataDir: path.resolve(e.DATA_DIR),
    consoleTotpKey: e.CONSOLE_TOTP_KEY,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    dev: Object.freeze({ demo: e.DEV_DEMO === '1' && !production, demoProviderPort: e.DEV_DEMO_PROVIDER_PORT, production }),
    readyCheckTimeoutMs: e.READY_CHECK_TIMEOUT_MS,
    gateway: Object.freeze({
      instanceId: e.GATEWAY_INSTANCE_ID,
      maxBodyBytes: e.GATEWAY_MAX_BODY_BYTES,
      keyCacheMs: e.GATEWAY_KEY_CACHE_MS,
      routingRefreshMs: e.GATEWAY_ROUTING_REFRESH_MS,
      defaultRpm: e.GATEWAY_DEFAULT_RPM,
      accountApiRpm: e.GATEWAY_ACCOUNT_API_RPM,
      shutdownGraceMs: e.GATEWAY_SHUTDOWN_GRACE_MS,
      trustedProxies: Object.freeze([...e.TRUSTED_PROXIES]),
      authFailuresPerMinute: e.GATEWAY_AUTH_FAILURES_PER_MIN,
      authLimiterMaxAddresses: e.GATEWAY_AUTH_LIMITER_MAX_ADDRESSES,
      keyCacheMaxEntries: e.GATEWAY_KEY_CACHE_MAX_ENTRIES,
      securityEventWindowMs: e.GATEWAY_SECURITY_EVENT_WINDOW_MS,
    }),
    upstream: Object.freeze({
      connectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
      firstByteTimeoutMs: e.UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
      idleTimeoutMs: e.UPSTREAM_IDLE_TIMEOUT_MS,
      maxConnections: e.UPSTREAM_MAX_CONNECTIONS,
      maxResponseBytes: e.UPSTREAM_MAX_RESPONSE_BYTES,
      maxStreamEventBytes: e.UPSTREAM_MAX_STREAM_EVENT_BYTES,
      allowedHosts: Object.freeze([...e.UPSTREAM_ALLOWED_HOSTS]),
    }),
    billing: Object.freeze({
      overdraftAllowance: e.PREPAID_OVERDRAFT_ALLOWANCE,
      holdSlice: e.GATEWAY_HOLD_SLICE,
      holdTtlMs: e.GATEWAY_HOLD_TTL_MS,
      defaultMaxOutputTokens: e.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS,
      webhookSecret: e.PAYMENT_WEBHOOK_SECRET,
      webhookToleranceS: e.PAYMENT_WEBHOOK_TOLERANCE_S,
      settleMinIntervalMs: e.SETTLE_MIN_INTERVAL_MS,
      settleSweepMs: e.SETTLE_SWEEP_MS,
      settlementShards: e.SETTLEMENT_SHARDS,
      settlementBatchEvents: e.SETTLEMENT_BATCH_EVENTS,
    }),
    invoicing: Object.freeze({
      issuer: Object.freeze({
        name: e.INVOICE_ISSUER_NAME,
        address: e.INVOICE_ISSUER_ADDRESS,
        country: e.INVOICE_ISSUER_COUNTRY,
        vatId: e.INVOICE_ISSUER_VAT_ID,
        email: e.INVOICE_ISSUER_EMAIL,
      }),
      seriesPrefix: e.INVOICE_SERIES_PREFIX,
      paymentTermsDays: e.INVOICE_PAYMENT_TERMS_DAYS,
      dunningSchedule: Object.freeze(e.DUNNING_SCHEDULE.map((x) => Object.freeze(x))),
      dunningPauseRecheckMs: e.DUNNING_PAUSE_RECHECK_MS,
      stripe: Object.freeze({ secretKey: e.STRIPE_SECRET_KEY, apiUrl: e.STRIPE_API_URL }),
      graceHours: e.INVOICE_GRACE_HOURS,
      runConcurrency: e.INVOICE_RUN_CONCURRENCY,
      runPageSize: e.INVOICE_RUN_PAGE_SIZE,
    }),
    reconcile: Object.freeze({
      settlementLagS: e.RECONCILE_SETTLEMENT_LAG_S,
      paymentGraceS: e.RECONCILE_PAYMENT_GRACE_S,
      dailyAt: Object.freeze({ hour: Number(e.RECONCILE_DAILY_AT.slice(0, 2)), minute: Number(e.RECONCILE_DAILY_AT.slice(3)) }),
    }),
    checkout: Object.freeze({ minAmount: e.CHECKOUT_MIN_AMOUNT, maxAmount: e.CHECKOUT_MAX_AMOUNT, publicBaseUrl: (e.PUBLIC_BASE_URL ?? `http://${e.HOST}:${e.ADMIN_PORT}`).replace(/\/$/, ''),
      providerOrigin: new URL(e.STRIPE_CHECKOUT_ORIGIN ?? e.STRIPE_API_URL ?? 'https://checkout.stripe.com').origin,
    }),
    dsr: Object.freeze({
      packageKey: e.DSR_PACKAGE_KEY,
      verificationWaitS: e.DSR_VERIFICATION_WAIT_S,
      codeTtlS: e.DSR_CODE_TTL_S,
      codeKey: e.DSR_CODE_KEY,
      reminderBeforeS: Object.freeze([...e.DSR_REMINDER_BEFORE_S]),
      deadlineOverrideS: e.DSR_DEADLINE_OVERRIDE_S,
      packageTtlS: e.DSR_PACKAGE_TTL_S,
      packageMaxDownloads: e.DSR_PACKAGE_MAX_DOWNLOADS,
      complianceEmail: e.DSR_COMPLIANCE_EMAIL,
      intakeRpm: e.DSR_INTAKE_RPM,
      intakeGlobalRpm: e.DSR_INTAKE_GLOBAL_RPM,
      codeFailuresPerDay: e.DSR_CODE_FAILURES_PER_DAY,
      publicBaseUrl: (e.PUBLIC_BASE_URL ?? `http://${e.HOST}:${e.ADMIN_PORT}`).replace(/\/$/, ''),
    }),
    retention: Object.freeze({
      dailyAt: Object.freeze({ hour: Number(e.RETENTION_DAILY_AT.slice(0, 2)), minute: Number(e.RETENTION_DAILY_AT.slice(3)) }),
      batchSize: e.RETENTION_BATCH_SIZE,
      pauseFactor: e.RETENTION_PAUSE_FACTOR,
    }),
    register: Object.freeze({ subprocessorNoticeS: e.SUBPROCESSOR_NOTICE_S }),
    mail: Object.freeze({
      smtpUrl: e.SMTP_URL,
      from: e.MAIL_FROM,
      mailboxDir: path.join(path.resolve(e.DATA_DIR), 'mailbox'),
    }),
    webhooks: Object.freeze({
      allowedHosts: Object.freeze([...e.WEBHOOK_ALLOWED_HOSTS]),
      secretKey: e.WEBHOOK_SECRET_KEY,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retry: Object.freeze({ initialMs: e.WEBHOOK_RETRY_INITIAL_MS, maxIntervalMs: e.WEBHOOK_RETRY_MAX_INTERVAL_MS, windowMs: e.WEBHOOK_RETRY_WINDOW_S * 1000 }),
      disableAfterFailures: e.WEBHOOK_DISABLE_AFTER_FAILURES,
      disableMinFailingS: e.WEBHOOK_DISABLE_MIN_FAILING_S,
      dispatchPollMs: e.WEBHOOK_DISPATCH_POLL_MS,
    }),
    metering: Object.freeze({
      batchMs: e.METERING_BATCH_MS,
      signalThrottleMs: e.METERING_SIGNAL_THROTTLE_MS,
      journalDir: path.join(path.resolve(e.DATA_DIR), 'metering', e.GATEWAY_INSTANCE_ID),
    }),
  });
}

export interface DatabaseSslSettings {
  readonly mode: 'disable' | 'require' | 'verify-full';
  /** PEM file of the CA that signed the server's certificate (verify-full); unset: the system's CAs. */
  readonly caFile: string | undefined;
}

function databaseSslProblems(databaseUrl: string, mode: DatabaseSslSettings['mode'], caFile: string | undefined): string[] {
  const problems: string[] = [];
  if (caFile && mode !== 'verify-full') problems.push('DATABASE_SSL_CA: only used with DATABASE_SSL_MODE=verify-full');
  // The driver lets TLS parameters in the URL override ours (and reads sslrootcert files named there): one place only.
  let keys: string[] = [];
  try {
    keys = [...new URL(databaseUrl).searchParams.keys()];
  } catch {
    problems.push('DATABASE_URL: not a valid URL');
  }
  const params = keys.filter((k) => /^(ssl|sslmode|sslrootcert|sslcert|sslkey|sslcrl)$/i.test(k));
  if (params.length) problems.push(`DATABASE_URL: set TLS with DATABASE_SSL_MODE and DATABASE_SSL_CA, not with URL parameters (${params.join(', ')})`);
  return problems;
}

/**
 * The variables @temporalio/envconfig may see: Temporal's own names and nothing else,
 * so no setting (not even a profile file) can make a process read another variable.
 * TEMPORAL_GRPC_META_* and the codec variables are left out (unused here); a profile's
 * grpc_meta still applies. The user's default config file (~/.config/temporalio/temporal.toml)
 * is not read: a server's connection comes from its own environment, or from a file
 * it names with TEMPORAL_CONFIG_FILE.
 */
export const TEMPORAL_ENVCONFIG_VARIABLES = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
] as const;

/**
 * The Temporal connection as Temporal's environment configuration resolves it: the
 * profile (TEMPORAL_PROFILE, default `default`) of TEMPORAL_CONFIG_FILE if set, with
 * the TEMPORAL_* variables above on top. Certificate files are read later, when a
 * process connects (src/temporal/connection.ts). The API key and inline key data live
 * in a private field: JSON, pino and util.inspect show only describe().
 */
export class TemporalConnectionSettings {
  readonly #profile: ClientConfigProfile;
  constructor(
    profile: ClientConfigProfile,
    /** Where the settings came from, for messages. */
    readonly source: { readonly configFile: string | undefined; readonly profile: string | undefined },
  ) {
    this.#profile = profile;
  }

  get address(): string | undefined {
    return this.#profile.address || undefined;
  }

  get namespace(): string | undefined {
    return this.#profile.namespace || undefined;
  }

  /** The resolved profile, secrets included: only for building connect options. */
  profile(): ClientConfigProfile {
    return this.#profile;
  }

  /** What may be logged or printed: no key, no certificate contents. */
  describe(): { configFile?: string; profile?: string; tls: boolean; serverName?: string; serverCa?: string; clientCert?: string; apiKey: 'set' | 'unset' } {
    const tls = this.#profile.tls;
    const where = (s: { path: string } | { data: unknown } | undefined) => (s ? ('path' in s ? s.path : '(inline)') : undefined);
    const enabled = tls ? tls.disabled !== true : this.#profile.apiKey !== undefined;
    const shown = {
      configFile: this.source.configFile,
      profile: this.source.profile,
      tls: enabled,
      serverName: enabled ? tls?.serverName : undefined,
      serverCa: enabled ? where(tls?.serverCACert) : undefined,
      clientCert: enabled ? where(tls?.clientCert) : undefined,
      apiKey: this.#profile.apiKey ? ('set' as const) : ('unset' as const),
    };
    // Only what is set, so a log line stays short.
    return Object.fromEntries(Object.entries(shown).filter(([, v]) => v !== undefined)) as typeof shown;
  }

  toJSON() {
    return this.describe();
  }

  [inspect.custom]() {
    return this.describe();
  }
}

export function temporalConnectionSettings(env: Env): TemporalConnectionSettings {
  const vars: Record<string, string> = {};
  for (const name of TEMPORAL_ENVCONFIG_VARIABLES) {
    const value = env[name];
    // Inline PEM data is passed as given; names, paths and keys lose stray blanks.
    if (value?.trim()) vars[name] = name.endsWith('_DATA') ? value : value.trim();
  }
  const configFile = env.TEMPORAL_CONFIG_FILE?.trim() || undefined;
  const profileName = env.TEMPORAL_PROFILE?.trim() || undefined;
  if (profileName && !configFile) throw new Error('TEMPORAL_PROFILE: names a profile of TEMPORAL_CONFIG_FILE, which is not set');
  let data: string | undefined;
  if (configFile) {
    try {
      data = fs.readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new Error(`TEMPORAL_CONFIG_FILE: cannot read ${configFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  try {
    const profile = loadClientConfigProfile({
      ...(data === undefined ? { disableFile: true } : { configSource: { data }, configFileStrict: true }),
      ...(profileName ? { profile: profileName } : {}),
      overrideEnvVars: vars,
    });
    return new TemporalConnectionSettings(profile, { configFile, profile: data === undefined ? undefined : (profileName ?? 'default') });
  } catch (err) {
    // A TOML syntax error's message quotes the offending lines, which may hold an API key: position only.
    const e = err as { line?: unknown; column?: unknown; message?: string };
    const reason = typeof e.line === 'number' ? `not valid TOML (line ${e.line}, column ${String(e.column)})` : (e.message ?? 'unreadable');
    throw new Error(`TEMPORAL_CONFIG_FILE: ${configFile ?? '(none)'}: ${reason}`);
  }
}

/** The address clients connect to: the configured one, or the local dev server's. */
export function temporalAddress(config: Config): string {
  return config.temporal.address ?? `127.0.0.1:${config.temporal.devServerPort}`;
}

/** This process's environment with overrides: what `mixroute dev` hands its child processes. */
export function childProcessEnv(overrides: Env): Env {
  return { ...process.env, ...overrides };
}

/**
 * The only environment variables that may hold a provider credential. A
 * provider row names its variable (`api_key_env`), and the row is staff input,
 * so the name is confined to this form: no row can make the gateway send
 * DATABASE_URL or PAYMENT_WEBHOOK_SECRET to a provider.
 */
export const PROVIDER_KEY_ENV = /^PROVIDER_[A-Z0-9_]+_API_KEY$/;

/** The conventional variable for a provider: PROVIDER_<NAME>_API_KEY, NAME upper-cased with other characters as `_`. */
export function providerKeyEnvName(providerName: string): string {
  return `PROVIDER_${providerName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_API_KEY`;
}

/**
 * The provider credentials of an environment: the PROVIDER_*_API_KEY variables
 * and nothing else, taken once (a process's environment does not change under
 * it; a rotated key takes a rolling restart). They never enter the Config
 * object, which may be logged.
 */
export function providerCredentialEnv(env: Env = process.env): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value && PROVIDER_KEY_ENV.test(name)) out[name] = value;
  return Object.freeze(out);
}
