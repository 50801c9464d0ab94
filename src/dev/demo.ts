import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { providerKeyEnvName, type Config, type Env } from '../config';
import { createDb } from '../db/knex';
import { startDemoProvider, type DemoProvider } from '../demo/provider';
import { DEMO_MODELS, DEMO_PROVIDERS, demoState, ensureDemoAccount, ensureDemoRouting } from '../demo/demo.service';
import type { Logger } from '../logger';

/**
 * The demo part of `mixroute dev` (DEV_DEMO=1, the default; never with
 * NODE_ENV=production): before the apps start, the local demo provider and
 * the routing rows to it, plus what the gateway needs to reach it (its
 * credential in PROVIDER_<NAME>_API_KEY, and 127.0.0.1 in
 * UPSTREAM_ALLOWED_HOSTS); once the worker is up, the account with its credit,
 * key and console sign-in, printed as a ready-to-run curl.
 */
export interface DevDemo {
  /** Environment for the gateway (and the other apps). */
  env: Env;
  /** After the worker answered: account, grant, key; prints the demo block. */
  finish(client: Client): Promise<void>;
  stop(): Promise<void>;
}

export async function prepareDevDemo(config: Config, logger: Logger, print: (line: string) => void): Promise<DevDemo | undefined> {
  if (!config.dev.demo) return undefined;
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: 3, ssl: config.databaseSsl, applicationName: 'mixroute-dev-demo' });
  let provider: DemoProvider | undefined;
  try {
    const state = await demoState(db);
    if (state === 'foreign') {
      print('demo: not set up (this database already has its own accounts or providers; DEV_DEMO=0 silences this line)');
      await db.destroy();
      return undefined;
    }
    // One random credential per run: the gateway must really pass the provider's key along.
    const apiKey = `demo-${randomBytes(16).toString('hex')}`;
    provider = await startDemoProvider({ port: config.dev.demoProviderPort, apiKey, models: DEMO_MODELS.map((m) => m.upstreamModel) }).catch((err: Error & { code?: string }) => {
      throw new Error(
        err.code === 'EADDRINUSE' ? `the demo provider's port ${config.dev.demoProviderPort} is in use; set DEV_DEMO_PROVIDER_PORT, or DEV_DEMO=0` : `the demo provider did not start: ${err.message}`,
      );
    });
    const allowed = config.upstream.allowedHosts.includes('127.0.0.1') ? config.upstream.allowedHosts : [...config.upstream.allowedHosts, '127.0.0.1'];
    const env: Env = { UPSTREAM_ALLOWED_HOSTS: allowed.join(',') };
    for (const p of DEMO_PROVIDERS) env[providerKeyEnvName(p.name)] = apiKey;
    // The staff services check provider addresses against the same allowlist the gateway gets.
    const demoConfig: Config = { ...config, upstream: { ...config.upstream, allowedHosts: allowed } };
    await ensureDemoRouting(db, demoConfig, provider.url);
    const running = provider;

    return {
      env,
      async finish(client: Client) {
        const a = await ensureDemoAccount(db, demoConfig, client);
        const gateway = `http://${config.host}:${config.gatewayPort}`;
        const key = a.apiKey ?? '<your key>';
        print('');
        print(`Demo (DEV_DEMO=0 turns it off): a local provider at ${running.url} answers offline`);
        print(`  models       ${DEMO_MODELS.map((m) => `${m.name} (in ${m.inputPerMtok}, out ${m.outputPerMtok} USD per Mtok)`).join(', ')}`);
        print(`  account      ${a.accountName} ${a.accountId}, balance ${a.balance} ${a.currency}`);
        if (a.apiKey) print(`  API key      ${a.apiKey}   (shown once: store it)`);
        else print(`  API key      ${a.keyPrefix}… (shown on the first run; another: npm run -s mixroute -- keys create --account ${a.accountId})`);
        const consoleUrl = `http://${config.host}:${config.adminPort}/console`;
        if (a.staffPassword) print(`  console      ${consoleUrl}   sign in as ${a.staffEmail} / ${a.staffPassword}   (shown once)`);
        else print(`  console      ${consoleUrl}   sign in as ${a.staffEmail} (password shown on the first run)`);
        const appUrl = `http://${config.host}:${config.adminPort}/app`;
        if (a.customerPassword) print(`  customer app ${appUrl}   sign in as ${a.staffEmail} / ${a.customerPassword}   (shown once)`);
        else print(`  customer app ${appUrl}   sign in as ${a.staffEmail} (password shown on the first run)`);
        print('  try it:');
        print(`    curl -s ${gateway}/v1/chat/completions -H "Authorization: Bearer ${key}" \\`);
        print(`      -H 'Content-Type: application/json' -d '{"model":"demo-gpt","messages":[{"role":"user","content":"Hello!"}]}'`);
        // npm run mixroute goes through bootstrap, so it finds the embedded PostgreSQL too.
        print(`    npm run -s mixroute -- balance --account ${a.accountId}   # the cost, deducted within seconds`);
        print('    npm run -s mixroute -- demo traffic   # a minute of mixed traffic for the console and the Temporal UI');
      },
      async stop() {
        await running.close();
        await db.destroy();
      },
    };
  } catch (err) {
    logger.debug({ err }, 'demo set-up failed');
    await provider?.close();
    await db.destroy();
    throw err;
  }
}
