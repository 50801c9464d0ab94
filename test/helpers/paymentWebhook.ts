import Stripe from 'stripe';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll } from 'vitest';
import { createAdminApp } from '../../src/admin/app';
import { systemClock } from '../../src/clock';
import { accountsService } from '../../src/accounts/accounts.service';
import { silentLogger, testConfig, testDb } from './env';
import { serve } from './servers';

/**
 * The admin server with the payment webhook on `secret`, for a test file: set
 * up in beforeAll (with a Temporal client), closed with its db in afterAll.
 * `url` is there once beforeAll has run; `sign` signs a payload as Stripe does.
 */
export function paymentWebhookStack(secret: string) {
  const config = testConfig({ PAYMENT_WEBHOOK_SECRET: secret, PAYMENT_WEBHOOK_TOLERANCE_S: '300' });
  const db = testDb(config);
  const stripe = new Stripe('sk_test_unused');
  let connection: Connection;
  let close: () => Promise<void>;
  const stack = {
    config,
    db,
    ops: accountsService({ db, clock: systemClock }),
    url: '',
    sign: (payload: string, opts: { secret?: string; timestamp?: number } = {}) =>
      stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? secret, ...(opts.timestamp ? { timestamp: opts.timestamp } : {}) }),
  };
  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address! });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const app = createAdminApp({
      db,
      billing: config.billing,
      config,
      temporal: { client, taskQueue: config.temporal.taskQueue },
      clock: systemClock,
      logger: silentLogger,
      readiness: {},
      readyCheckTimeoutMs: 1000,
    });
    ({ url: stack.url, close } = await serve(app));
  });
  afterAll(async () => {
    await close();
    await connection.close();
    await db.destroy();
  });
  return stack;
}
