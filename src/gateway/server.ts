import { providerCredentialEnv, type Config } from '../config';
import { createDb } from '../db/knex';
import { closeServer, listen } from '../http/listen';
import { createMetricsRegistry, startMetricsServer } from '../http/metrics';
import { createLogger } from '../logger';
import { MeteringBatcher } from '../metering/batcher';
import { usageEventStore } from '../metering/metering.service';
import { MeteringJournal } from '../metering/journal';
import { settlementShardSignaler, shardSignalTarget } from '../metering/signaler';
import { checkTemporal, createTemporalClient } from '../temporal/client';
import { createGatewayApp } from './app';
import { Forwarder } from './forwarder';
import { gatewayService } from './gateway.service';
import { KeyCache } from './keyCache';
import { RateLimiter } from './rateLimit';
import { RoutingTable } from './routingTable';
import { SecurityEventSink } from './securityEvents';
import { AuthFailureLimiter } from './authLimiter';
import { upstreamAuthFailures } from './metrics';
import { countTextTokens } from './tokenEstimate';
import { createUpstreamAgent } from './upstream';
import { BalanceGate } from './balanceGate';
import { holdsService } from '../ledger/holds.service';
import { keyHoldsService } from '../accounts/keyHolds.service';
import { Money } from '../shared/money.rules';
import type { Clock } from '../clock';
import { clientApiService } from '../accounts/clientApi.service';
import { subprocessorService } from '../register/subprocessor.service';
import { spendable } from '../ledger/ledger.rules';
import { keysService } from '../accounts/keys.service';
import { webhooksService } from '../webhooks/webhooks.service';
import { systemClock } from '../clock';
import { accountEventsService } from '../notifications/events.service';

/**
 * The gateway process. Start: replay the metering journal left by the last
 * run, load the routing table, listen. Stop (SIGTERM): stop accepting, let
 * in-flight requests and streams finish up to the grace period, then flush
 * the journal to PostgreSQL (what cannot be flushed stays for the next start).
 * `env` is where provider credentials come from; only its PROVIDER_*_API_KEY
 * variables are kept, so nothing else of it can reach a provider.
 */
export async function startGatewayServer(config: Config, env: Record<string, string | undefined> = {}, opts: { clock?: Clock } = {}) {
  const credentials = providerCredentialEnv(env);
  const logger = createLogger(config, 'gateway');
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: config.databasePoolMax, ssl: config.databaseSsl, applicationName: 'mixroute-gateway', onWarning: (m) => logger.warn({ db: m }, 'database warning') });
  const temporal = createTemporalClient(config, logger);
  const registry = createMetricsRegistry('gateway');

  const journal = new MeteringJournal(config.metering.journalDir);
  journal.open();
  const store = gatewayService(db);
  const routing = new RoutingTable(store.routingRows, config.gateway.routingRefreshMs, logger);
  await routing.start();
  const security = new SecurityEventSink(store.writeSecurityEvents, logger, 1_000, 10_000, config.gateway.securityEventWindowMs);
  security.start();
  const agent = createUpstreamAgent(config);
  const gate = new BalanceGate(
    { ...holdsService(db), ...keyHoldsService(db) },
    {
      holder: config.gateway.instanceId,
      slice: new Money(config.billing.holdSlice),
      ttlMs: config.billing.holdTtlMs,
      overdraftAllowance: new Money(config.billing.overdraftAllowance),
      // Only tests pass a clock: it places the gateway in a key's spend-limit window.
      ...(opts.clock ? { clock: opts.clock } : {}),
    },
    logger,
  );
  gate.start();

  const { app, metrics } = createGatewayApp({
    logger,
    registry,
    readyCheckTimeoutMs: config.readyCheckTimeoutMs,
    readiness: {
      postgres: async () => void (await db.raw('SELECT 1')),
      temporal: () => checkTemporal(temporal.connection, config.readyCheckTimeoutMs),
      routing: async () => {
        if (!routing.isLoaded()) throw new Error('routing table not loaded yet');
      },
    },
    forwarding: {
      keys: new KeyCache(store.callerByKeyHash, config.gateway.keyCacheMs, Date.now, config.gateway.keyCacheMaxEntries),
      limiter: new RateLimiter(),
      authLimiter: new AuthFailureLimiter(config.gateway.authFailuresPerMinute, config.gateway.authLimiterMaxAddresses),
      routing,
      forwarder: new Forwarder({
        routing,
        agent,
        logger,
        env: credentials,
        gate,
        defaultMaxOutputTokens: config.billing.defaultMaxOutputTokens,
        maxResponseBytes: config.upstream.maxResponseBytes,
        maxStreamEventBytes: config.upstream.maxStreamEventBytes,
        onUpstreamAuthFailure: upstreamAuthFailures(registry),
        billingContact: config.invoicing.issuer.email,
      }),
      gate,
      security,
      record: (record, onWritten, alone) => {
        journal.append(
          record,
          (err) => {
            if (err) logger.error({ requestId: record.requestId, errCode: (err as NodeJS.ErrnoException).code }, 'metering journal write failed; the answer is withheld');
            onWritten(err);
          },
          alone,
        );
      },
      instanceId: config.gateway.instanceId,
      defaultRpm: config.gateway.defaultRpm,
      maxBodyBytes: config.gateway.maxBodyBytes,
      trustedProxies: config.gateway.trustedProxies,
      accountKeys: keysService({ db, clock: systemClock }),
      accountAlerts: accountEventsService({ db }),
      accountWebhooks: webhooksService({ db, clock: systemClock, config }),
      accountApi: {
        service: clientApiService({
          db,
          // The gateway's clock, so /v1/key's window is the one the spend-limit gate enforces.
          clock: opts.clock ?? systemClock,
          spendable: (i) => spendable({ ...i, overdraftAllowance: new Money(config.billing.overdraftAllowance) }),
        }),
        limiter: new RateLimiter(),
        rpm: config.gateway.accountApiRpm,
        subprocessors: subprocessorService({ db, clock: systemClock }),
      },
    },
  });

  // Metering has a pool of its own: on a burst of first requests from many accounts the
  // balance gate's hold writes queue on the shared pool, and the batcher's insert waited
  // behind them for seconds (the deduction benchmark at 10,000 accounts).
  const meteringDb = createDb({ databaseUrl: config.databaseUrl, poolMax: 2, ssl: config.databaseSsl, applicationName: 'mixroute-gateway-metering', onWarning: (m) => logger.warn({ db: m }, 'database warning') });
  const batcher = new MeteringBatcher({
    journal,
    events: usageEventStore(meteringDb),
    // One wake-up per settlement shard per batch, naming the shard's accounts with new usage.
    signal: settlementShardSignaler(temporal.client, config.temporal.taskQueue, {
      minIntervalMs: config.billing.settleMinIntervalMs,
      sweepMs: config.billing.settleSweepMs,
    }),
    signalTarget: shardSignalTarget(config.billing.settlementShards),
    logger,
    intervalMs: config.metering.batchMs,
    signalThrottleMs: config.metering.signalThrottleMs,
    registry,
    onRecorded: (records) => {
      const now = Date.now();
      for (const r of records) metrics.meteringLag.observe(Math.max(0, now - Date.parse(r.finishedAt)) / 1000);
    },
  });
  // Records left by a previous run (even one killed with SIGKILL) go first.
  batcher.start();
  const journalGauge = setInterval(() => metrics.journalBytes.set(journal.pendingBytes()), 1_000);
  journalGauge.unref();

  // Build the tokenizer now (about half a second) rather than on the first request that needs an estimate.
  countTextTokens('warm up');
  const { server, url } = await listen(app, config.gatewayPort, config.host);
  server.keepAliveTimeout = 65_000;
  const metricsServer = await startMetricsServer(registry, config.metrics.gatewayPort, config.metrics.host);
  logger.info({ url, metricsUrl: metricsServer.url, instance: config.gateway.instanceId }, `gateway listening on ${url}, metrics on ${metricsServer.url}`);
  return {
    url,
    metricsUrl: metricsServer.url,
    logger,
    journal,
    batcher,
    routing,
    async stop() {
      const closing = closeServer(server);
      const grace = new Promise<void>((r) => setTimeout(r, config.gateway.shutdownGraceMs).unref());
      await Promise.race([closing, grace]);
      server.closeAllConnections();
      await metricsServer.close();
      clearInterval(journalGauge);
      routing.stop();
      await batcher.stop();
      journal.close();
      await gate.stop();
      await security.stop();
      await agent.close();
      await temporal.close();
      await meteringDb.destroy();
      await db.destroy();
    },
  };
}
