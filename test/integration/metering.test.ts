import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StopWaiting, untilTrue } from '../helpers/eventually';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { settlementShardStatusQuery } from '../../workflows/messages';
import { shardOf } from '../../src/metering/shards.rules';
import { workflowIds } from '../../src/temporal/conventions';
import { freePort } from '../../src/util/ports';
import { BIN } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, UPSTREAM_KEY_ENV } from '../helpers/gateway';
import { startTcpProxy } from '../helpers/tcpProxy';
import { withTestWorker } from '../helpers/worker';

/**
 * Metering is the billing truth: every finished request becomes exactly one
 * usage event, through a database outage, a SIGKILL and a graceful stop.
 */
const config = testConfig();
const db = testDb(config);
let upstream: FakeUpstream;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  connection = await Connection.connect({ address: config.temporal.address! });
  client = new Client({ connection, namespace: config.temporal.namespace });
});
afterAll(async () => {
  await upstream?.close();
  await connection?.close();
  await db.destroy();
});

const countEvents = async (accountId: string) => Number((await db('usage_events').where({ account_id: accountId }).count('* as n').first())!.n);

function chat(url: string, key: string, model: string, extra: Record<string, unknown> = {}) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'meter me' }], ...extra }),
  });
}

describe('database outage', () => {
  it('keeps serving, grows the journal, and after recovery has exactly one event per request', async () => {
    const customer = await createCustomer(db, upstream.url);
    const pgUrl = new URL(config.databaseUrl);
    const proxy = await startTcpProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
    const viaProxy = new URL(config.databaseUrl);
    viaProxy.port = String(proxy.port);
    const gw = await startTestGateway({ DATABASE_URL: viaProxy.toString() }, config);
    try {
      const warm = await chat(gw.url, customer.key, customer.model);
      expect(warm.status).toBe(200);
      await gw.batcher.flush();
      expect(await countEvents(customer.accountId)).toBe(1);

      await proxy.cut();
      const N = 25;
      const ids: string[] = [];
      for (let i = 0; i < N; i++) {
        const res = await chat(gw.url, customer.key, customer.model);
        expect(res.status).toBe(200);
        ids.push(res.headers.get('x-request-id')!);
        await res.text();
      }
      await expect(gw.batcher.flush()).rejects.toThrow();
      expect(gw.journal.pendingBytes()).toBeGreaterThan(0);
      expect(await countEvents(customer.accountId)).toBe(1);

      await proxy.restore();
      // The batcher retries with backoff of at most 5 s.
      await untilTrue(async () => (await countEvents(customer.accountId)) === N + 1, { timeoutMs: 20_000, message: 'the journalled events to be inserted after recovery' });
      const rows = await db('usage_events').whereIn('request_id', ids).select('request_id');
      expect(rows.map((r) => r.request_id).sort()).toEqual([...ids].sort());
      await untilTrue(() => gw.journal.pendingBytes() === 0, { timeoutMs: 20_000, message: 'the journal to empty after recovery' });
    } finally {
      await gw.stop();
      await proxy.close();
    }
  });
});

describe('journal write failure', () => {
  it('withholds the answer (a stream its end marker) rather than serve a request it could not record, and records it once it can write', async () => {
    const customer = await createCustomer(db, upstream.url);
    const gw = await startTestGateway({}, config);
    const realWriteSync = fs.writeSync;
    // The next journal write (its lines start with the record's version field) holding a
    // record with this text fails once. (The batcher's rotation also writes: a condition
    // on the content keeps it from taking the failure meant for a request.)
    let failWhen: string | null = null;
    let failed = 0;
    const spy = vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: unknown, ...rest: unknown[]) => {
      if (failWhen && typeof data === 'string' && data.startsWith('{"v":1,') && data.includes(failWhen)) {
        failWhen = null;
        failed++;
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      }
      return (realWriteSync as (...a: unknown[]) => number)(fd, data, ...rest);
    }) as typeof fs.writeSync);
    /** What the client got: no answer, an answer, or the start of one and then a cut connection. */
    const outcome = async (extra: Record<string, unknown> = {}) => {
      let res: Response;
      try {
        res = await chat(gw.url, customer.key, customer.model, extra);
      } catch (err) {
        return `connection failed: ${((err as Error).cause as { code?: string } | undefined)?.code ?? (err as Error).message}`;
      }
      let text = '';
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
        return `answered ${res.status}: ${text}`;
      } catch {
        return `cut after ${res.status}: ${text}`;
      }
    };
    try {
      failWhen = '"stream":false';
      expect(await outcome()).toMatch(/^connection failed/);
      failWhen = '"stream":true';
      const streamed = await outcome({ stream: true });
      expect(failed).toBe(2);
      // The client may have seen content, never the end of the stream.
      expect(streamed).toMatch(/^cut after 200: data: /);
      expect(streamed).not.toContain('[DONE]');
      // The next write carries the withheld records along with the next request's.
      const next = await outcome({ stream: true });
      expect(next).toMatch(/^answered 200/);
      expect(next).toContain('data: [DONE]');
      await gw.batcher.flush();
      const rows = await db('usage_events').where({ account_id: customer.accountId }).select('request_id', 'status_code');
      expect(rows).toHaveLength(3);
    } finally {
      spy.mockRestore();
      await gw.stop();
    }
  });
});

describe('settlement shard wake-ups', () => {
  it('the batcher starts the account\'s shard and names the account in its wake-up', async () => {
    const customer = await createCustomer(db, upstream.url);
    const gw = await startTestGateway({}, config);
    try {
      await withTestWorker(config, db, async () => {
        for (let i = 0; i < 3; i++) await (await chat(gw.url, customer.key, customer.model)).text();
        await gw.batcher.flush();
        // Signals go out beside the batches (throttled per shard), so the workflow appears shortly after.
        const handle = client.workflow.getHandle(workflowIds.settlement(shardOf(customer.accountId, config.billing.settlementShards), config.temporal.taskQueue));
        const status = () => handle.query(settlementShardStatusQuery).catch((err: unknown) => {
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        });
        // The shard may carry other accounts of this file too. The pass commits before the
        // workflow records its result, so a query can see the rows settled and the count not yet.
        const state = await untilTrue(
          async () => {
            const s = await status();
            const unsettled = Number((await db('usage_events').where({ account_id: customer.accountId }).whereNull('settled_at').count('* as n').first())!.n);
            return s && s.eventsSignalled >= 3 && s.eventsSettled >= 3 && unsettled === 0 ? s : undefined;
          },
          { timeoutMs: 30_000, message: 'the shard to be woken and settle the three events' },
        );
        expect(state.eventsSettled).toBeGreaterThanOrEqual(3);
        // The history holds ids and amounts only: no account name, no email.
        const history = JSON.stringify(await handle.fetchHistory());
        expect(history).not.toContain('@example.com');
      });
    } finally {
      await gw.stop();
    }
  });
});

interface GatewayProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [BIN, 'gateway'], { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${env.GATEWAY_PORT}`;
  await untilTrue(
    async () => {
      if (child.exitCode !== null) throw new StopWaiting(`gateway exited: ${stderr}`);
      return (await fetch(`${url}/healthz`)).ok;
    },
    { timeoutMs: 30_000, message: 'the gateway process to answer /healthz' },
  );
  return { child, url, exited };
}

describe('gateway process', () => {
  it('loses and duplicates nothing when killed with SIGKILL under load and restarted', async () => {
    const customer = await createCustomer(db, upstream.url);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-kill-'));
    const env = testEnv(config, { GATEWAY_PORT: String(await freePort()), DATA_DIR: dataDir, [UPSTREAM_KEY_ENV]: UPSTREAM_KEY, METERING_BATCH_MS: '100' });
    const first = await spawnGateway(env);

    const completed: string[] = [];
    let sent = 0;
    let stop = false;
    const worker = async () => {
      while (!stop && sent < 2_000) {
        sent++;
        try {
          const res = await chat(first.url, customer.key, customer.model);
          const body = await res.text();
          if (res.status === 200 && body.includes('Hello')) completed.push(res.headers.get('x-request-id')!);
        } catch {
          // cut off by the kill
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    await untilTrue(() => completed.length >= 150, { timeoutMs: 60_000, message: '150 requests to complete under load' });
    first.child.kill('SIGKILL');
    await first.exited;
    stop = true;
    await load;

    const second = await spawnGateway(env);
    try {
      await untilTrue(async () => (await db('usage_events').whereIn('request_id', completed).count('* as n').first())!.n === completed.length, {
        timeoutMs: 30_000,
        message: 'the restarted gateway to insert every completed request from the journal',
      });
      await untilTrue(() => fs.readdirSync(path.join(dataDir, 'metering', 'gateway')).filter((f) => f.startsWith('segment-')).every((f) => fs.statSync(path.join(dataDir, 'metering', 'gateway', f)).size === 0), {
        timeoutMs: 30_000,
        message: 'the journal segments to empty',
      });
      const total = await countEvents(customer.accountId);
      // Every request a client saw completed is there once; at most the few cut mid-flight add to it.
      expect(total).toBeGreaterThanOrEqual(completed.length);
      expect(total).toBeLessThanOrEqual(sent);
      const dupes = await db('usage_events').where({ account_id: customer.accountId }).groupBy('request_id').havingRaw('count(*) > 1').select('request_id');
      expect(dupes).toEqual([]);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('on SIGTERM lets an in-flight stream finish, then flushes its event and exits 0', async () => {
    const customer = await createCustomer(db, upstream.url);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-term-'));
    const env = testEnv(config, { GATEWAY_PORT: String(await freePort()), DATA_DIR: dataDir, [UPSTREAM_KEY_ENV]: UPSTREAM_KEY, METERING_BATCH_MS: '60000' });
    const gw = await spawnGateway(env);
    upstream.enqueue({ kind: 'ok', chunks: 20, chunkDelayMs: 50 });
    const res = await chat(gw.url, customer.key, customer.model, { stream: true });
    const requestId = res.headers.get('x-request-id')!;
    const reader = res.body!.getReader();
    await reader.read();
    gw.child.kill('SIGTERM');
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    expect(text).toContain('data: [DONE]');
    expect(await gw.exited).toBe(0);
    // The batch interval is a minute: the event is there because stop flushed it.
    expect(await db('usage_events').where({ request_id: requestId }).first()).toMatchObject({ status_code: 200, stream: true });
  });
});
