import { systemClock } from '../clock';
import type { Config } from '../config';
import { createDb } from '../db/knex';
import { NotFoundError, ValidationError } from '../errors';
import { accountsService } from '../accounts/accounts.service';
import { DEMO_EMAIL, DEMO_MODELS } from './demo.service';

/**
 * `mixroute demo traffic`: a bounded burst of mixed requests to the local
 * gateway (both demo models, streamed and not, short and long prompts, now and
 * then an unknown model), so the console's usage pages and the Temporal UI's
 * metering workflows have something to show. It stops by itself.
 */

const PROMPTS = [
  'Hello!',
  'Summarise what an API gateway does in two sentences.',
  'Write a haiku about metered billing.',
  'Explain the difference between a ledger entry and a balance, for a new accountant joining a software company that sells API credits.',
  'List three reasons to stream a chat completion instead of waiting for the whole answer.',
];

export interface TrafficOptions {
  gatewayUrl: string;
  apiKey: string;
  durationMs: number;
  requestsPerSecond: number;
  /** At most this many requests in flight. */
  concurrency?: number;
  progress?: (line: string) => void;
}

export interface TrafficResult {
  sent: number;
  byStatus: Record<string, number>;
  byModel: Record<string, number>;
}

export async function runDemoTraffic(opts: TrafficOptions): Promise<TrafficResult> {
  const result: TrafficResult = { sent: 0, byStatus: {}, byModel: {} };
  const concurrency = opts.concurrency ?? 8;
  const end = Date.now() + opts.durationMs;
  const interval = 1000 / opts.requestsPerSecond;
  const inFlight = new Set<Promise<void>>();
  let n = 0;
  let lastReport = Date.now();

  const one = async (i: number) => {
    // Every 20th request names a model that does not exist: a 404 in the stats, not a charge.
    const model = i % 20 === 19 ? 'no-such-model' : DEMO_MODELS[i % DEMO_MODELS.length]!.name;
    const stream = i % 3 === 0;
    const body = {
      model,
      messages: [{ role: 'user', content: PROMPTS[i % PROMPTS.length] }],
      ...(stream ? { stream: true, ...(i % 2 === 0 ? { stream_options: { include_usage: true } } : {}) } : {}),
      ...(i % 7 === 0 ? { max_tokens: 16 } : {}),
    };
    let status = 'network error';
    try {
      const res = await fetch(`${opts.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${opts.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      await res.arrayBuffer();
      status = String(res.status);
    } catch {
      // counted as a network error
    }
    result.byStatus[status] = (result.byStatus[status] ?? 0) + 1;
    result.byModel[model] = (result.byModel[model] ?? 0) + 1;
  };

  while (Date.now() < end) {
    if (inFlight.size >= concurrency) {
      await Promise.race(inFlight);
      continue;
    }
    const p = one(n++).finally(() => inFlight.delete(p));
    inFlight.add(p);
    result.sent++;
    if (opts.progress && Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      opts.progress(`${result.sent} requests sent, ${Math.max(0, Math.round((end - Date.now()) / 1000))} s to go`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  await Promise.all(inFlight);
  return result;
}

/**
 * The CLI verb: validates its bounds, borrows a key of the demo account for the
 * run (revoked afterwards, so no usable secret outlives it) unless one is
 * given, and aims at this machine's gateway only.
 */
export async function demoTrafficCommand(
  config: Config,
  raw: { seconds: string; rps: string; key?: string },
  say: (line: string) => void,
): Promise<TrafficResult & { gateway: string; seconds: number }> {
  const seconds = Number(raw.seconds);
  const rps = Number(raw.rps);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 300) throw new ValidationError('--seconds must be a number of seconds from 1 to 300');
  if (!Number.isFinite(rps) || rps <= 0 || rps > 50) throw new ValidationError('--rps must be a number from 0.1 to 50');
  const loopback = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host;
  const gateway = `http://${loopback.includes(':') ? `[${loopback}]` : loopback}:${config.gatewayPort}`;

  let key = raw.key;
  let borrowed: string | undefined;
  const db = createDb({ databaseUrl: config.databaseUrl, poolMax: 1, ssl: config.databaseSsl, applicationName: 'mixroute-demo-traffic' });
  try {
    const ops = accountsService({ db, clock: systemClock, config });
    if (!key) {
      const user = await db('users').where({ email: DEMO_EMAIL }).first('id', 'account_id');
      if (!user) throw new NotFoundError('there is no demo account: run `npm run dev` on a fresh database first (DEV_DEMO=1), or pass --key');
      const created = await ops.createKey({ accountId: user.account_id, userId: user.id, name: 'demo traffic (revoked after the run)' });
      key = created.key;
      borrowed = created.id;
    }
    say(`sending ${seconds} s of mixed traffic to ${gateway} at about ${rps} requests/s...`);
    const result = await runDemoTraffic({ gatewayUrl: gateway, apiKey: key, durationMs: seconds * 1000, requestsPerSecond: rps, progress: say });
    return { ...result, gateway, seconds };
  } finally {
    if (borrowed) await accountsService({ db, clock: systemClock, config }).revokeKey({ id: borrowed });
    await db.destroy();
  }
}
