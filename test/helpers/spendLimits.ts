import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock, type Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Db } from '../../src/db/knex';
import { startGatewayServer } from '../../src/gateway/server';
import { testConfig } from './env';
import { UPSTREAM_KEY, UPSTREAM_KEY_ENV, type Customer } from './gateway';

/** A clock the test moves; the gateway reads a key's spend-limit window from it. */
export function movableClock(iso: string): Clock & { set(iso: string): void } {
  let now = new Date(iso);
  return { now: () => now, set: (next: string) => void (now = new Date(next)) };
}

/** A real gateway server in this process, on a free port, deciding spend-limit windows by `clock`. */
export async function startLimitGateway(base: Config, overrides: Record<string, string> = {}, clock: Clock = systemClock) {
  const config = testConfig({
    GATEWAY_PORT: '0',
    DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-gw-')),
    METERING_BATCH_MS: '50',
    GATEWAY_ROUTING_REFRESH_MS: '200',
    TEMPORAL_TASK_QUEUE: base.temporal.taskQueue,
    ...overrides,
  });
  return startGatewayServer(config, { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY }, { clock });
}

export async function limitKey(db: Db, keyId: string, limit: string, window: 'daily' | 'weekly' | 'monthly' | null) {
  await db('api_keys').where({ id: keyId }).update({ spend_limit: limit, limit_window: window });
}

/** Settled spend of a key on one UTC day, as settlement leaves it in the daily aggregate. */
export async function settledSpend(db: Db, c: Customer, day: string, cost: string) {
  await db('usage_daily_keys')
    .insert({
      account_id: c.accountId,
      day,
      api_key_id: c.keyId,
      model: c.model,
      requests: 1,
      input_tokens: 0,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      output_tokens: 1,
      reasoning_tokens: 0,
      cost,
    })
    .onConflict(['api_key_id', 'day', 'model'])
    .merge({ cost });
}
