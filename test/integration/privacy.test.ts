import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StopWaiting, untilTrue } from '../helpers/eventually';
import { freePort } from '../../src/util/ports';
import { BIN } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fakeAnthropic';
import { accountsService } from '../../src/accounts/accounts.service';
import { systemClock } from '../../src/clock';
import { createCustomer, UPSTREAM_KEY, UPSTREAM_KEY_ENV, type Customer } from '../helpers/gateway';
import { withTestWorker } from '../helpers/worker';

/**
 * The privacy promise, tested with a canary: a unique string sent in every
 * place a prompt can hide, on every path a request can take, must afterwards
 * appear in no database table, no Temporal history, no log line (debug level
 * included) and no file the gateway wrote.
 */
const CANARY = `CANARY-${randomUUID()}`;
const config = testConfig();
const db = testDb(config);
let upstream: FakeUpstream;
/** Anthropic's Messages API (issue 21): a model of an Anthropic provider. */
let anthropicUp: FakeAnthropic;
let claude: string;
let customer: Customer;
let gateway: ChildProcess;
let gatewayUrl: string;
let logs = '';
let dataDir: string;
let exited: Promise<number | null>;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  customer = await createCustomer(db, upstream.url);
  anthropicUp = await startFakeAnthropic({ apiKey: UPSTREAM_KEY });
  const ops = accountsService({ db, clock: systemClock });
  const provider = await ops.addProvider({ name: `${customer.provider}-anthropic`, baseUrl: anthropicUp.url, apiKeyEnv: UPSTREAM_KEY_ENV, kind: 'anthropic' });
  claude = `${customer.model}-claude`;
  await ops.addModel({ name: claude, provider: provider.name, upstreamModel: 'claude-fake-1', inputPerMtok: '3', outputPerMtok: '15', cacheWritePerMtok: '3.75', effectiveFrom: '2020-01-01T00:00:00Z' });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-privacy-'));
  const port = await freePort();
  gatewayUrl = `http://127.0.0.1:${port}`;
  const env = testEnv(config, {
    GATEWAY_PORT: String(port),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'trace',
    GATEWAY_MAX_BODY_BYTES: '65536',
    METERING_BATCH_MS: '50',
    [UPSTREAM_KEY_ENV]: UPSTREAM_KEY,
  });
  gateway = spawn(process.execPath, [BIN, 'gateway'], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  gateway.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  gateway.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  exited = new Promise((r) => gateway.once('exit', (code) => r(code)));
  await untilTrue(
    async () => {
      if (gateway.exitCode !== null) throw new StopWaiting(`gateway exited: ${logs}`);
      return (await fetch(`${gatewayUrl}/healthz`)).ok;
    },
    { timeoutMs: 30_000, message: 'the gateway process to answer /healthz' },
  );
});
afterAll(async () => {
  if (gateway.exitCode === null) gateway.kill('SIGKILL');
  await upstream?.close();
  await anthropicUp?.close();
  await db.destroy();
});

const send = (body: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json', 'x-request-id': CANARY, ...headers },
    body,
    signal,
  });

function fullRequest(extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    model: customer.model,
    user: CANARY,
    messages: [
      { role: 'system', content: `You are ${CANARY}` },
      { role: 'user', content: [{ type: 'text', text: `Hello ${CANARY}` }] },
    ],
    tools: [{ type: 'function', function: { name: 'lookup', description: CANARY, parameters: { type: 'object', properties: { q: { type: 'string', description: CANARY } } } } }],
    ...extra,
  });
}

const sendMessages = (body: string, signal?: AbortSignal, path = '/v1/messages') =>
  fetch(`${gatewayUrl}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': customer.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body,
    signal,
  });

/** A Messages request with the canary in every place: system, text, tool definitions, tool input and result, metadata. */
function fullMessagesRequest(model: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    model,
    max_tokens: 100,
    system: [{ type: 'text', text: `You are ${CANARY}`, cache_control: { type: 'ephemeral' } }],
    metadata: { user_id: CANARY },
    tools: [{ name: 'lookup', description: CANARY, input_schema: { type: 'object', properties: { q: { type: 'string', description: CANARY } } } }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: `Hello ${CANARY}` }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: CANARY } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: CANARY }] },
    ],
    ...extra,
  });
}

async function allTablesText(): Promise<string> {
  const tables = await db('pg_tables').where({ schemaname: 'public' }).pluck('tablename');
  let out = '';
  for (const t of tables) {
    const { rows } = await db.raw(`SELECT coalesce(string_agg(x::text, E'\\n'), '') AS dump FROM ?? x`, [t]);
    out += rows[0].dump;
  }
  return out;
}

/** A history as text with every payload (bytes) decoded, so the check sees what Temporal stored. */
function decodedText(value: unknown): string {
  const parts: string[] = [];
  const walk = (v: unknown) => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) {
      parts.push(k);
      walk(x);
    }
    else if (v !== null && v !== undefined) parts.push(String(v));
  };
  walk(value);
  return parts.join('\n');
}

function filesText(dir: string): string {
  let out = '';
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out += fs.readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return out;
}

describe('privacy canary', () => {
  it('is sent through every path and afterwards found nowhere', async () => {
    await withTestWorker(config, db, async () => {
      const expected: string[] = [];
      const note = (res: Response) => expected.push(res.headers.get('x-request-id')!);

      // Success, plain and streamed.
      let res = await send(fullRequest());
      expect(res.status).toBe(200);
      note(res);
      await res.text();
      res = await send(fullRequest({ stream: true }));
      expect(res.status).toBe(200);
      note(res);
      await res.text();

      // Oversized body and malformed JSON.
      res = await send(JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: CANARY.repeat(3000) }] }));
      expect(res.status).toBe(413);
      note(res);
      res = await send(`{"model": "${customer.model}", "messages": [{"role": "user", "content": "${CANARY}"`);
      expect(res.status).toBe(400);
      note(res);

      // Unknown model named after the canary.
      res = await send(JSON.stringify({ model: CANARY, messages: [{ role: 'user', content: CANARY }] }));
      expect(res.status).toBe(404);
      note(res);

      // A provider that echoes the prompt in its errors, 4xx (passed through to the client only) and 5xx.
      upstream.enqueue({ kind: 'error', status: 400, echoPromptInError: true });
      res = await send(fullRequest());
      expect(res.status).toBe(400);
      expect(await res.text()).toContain(CANARY); // the client may see its own prompt; nobody else
      note(res);
      upstream.enqueue({ kind: 'error', status: 500, echoPromptInError: true });
      res = await send(fullRequest());
      expect(res.status).toBe(502);
      note(res);

      // A client that aborts mid-stream.
      upstream.enqueue({ kind: 'ok', chunks: 40, chunkDelayMs: 20, content: `${CANARY} `.repeat(40) });
      const controller = new AbortController();
      res = await send(fullRequest({ stream: true }), {}, controller.signal);
      note(res);
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();

      // Anthropic's Messages API: passthrough and translated, streamed and not, count_tokens.
      for (const model of [claude, customer.model]) {
        for (const stream of [false, true]) {
          res = await sendMessages(fullMessagesRequest(model, { stream }));
          expect(res.status).toBe(200);
          note(res);
          await res.text();
        }
        res = await sendMessages(fullMessagesRequest(model, { max_tokens: undefined }), undefined, '/v1/messages/count_tokens');
        expect(res.status).toBe(200);
        note(res);
      }
      // Chat for the Anthropic model (translated to Messages).
      res = await send(fullRequest({ model: claude }));
      expect(res.status).toBe(200);
      note(res);
      await res.text();
      // Malformed, unknown model, and a provider echoing the prompt in its errors (4xx relayed to the client only, 5xx).
      res = await sendMessages(`{"model": "${claude}", "max_tokens": 5, "messages": [{"role": "user", "content": "${CANARY}"`);
      expect(res.status).toBe(400);
      note(res);
      res = await sendMessages(fullMessagesRequest(CANARY));
      expect(res.status).toBe(404);
      note(res);
      anthropicUp.enqueue({ kind: 'error', status: 400, errorType: 'invalid_request_error', echoPromptInError: true });
      res = await sendMessages(fullMessagesRequest(claude));
      expect(res.status).toBe(400);
      expect(await res.text()).toContain(CANARY);
      note(res);
      anthropicUp.enqueue({ kind: 'error', status: 500, echoPromptInError: true });
      res = await sendMessages(fullMessagesRequest(claude));
      expect(res.status).toBe(502);
      note(res);
      // Aborted mid-stream.
      anthropicUp.enqueue({ kind: 'ok', chunks: 40, chunkDelayMs: 20, content: `${CANARY} `.repeat(40) });
      const aborter = new AbortController();
      res = await sendMessages(fullMessagesRequest(claude, { stream: true }), aborter.signal);
      note(res);
      await res.body!.getReader().read();
      aborter.abort();

      // Every request is metered, then the gateway stops (flushing) and the history is complete.
      await untilTrue(async () => Number((await db('usage_events').whereIn('request_id', expected).count('* as n').first())!.n) >= expected.length, {
        timeoutMs: 20_000,
        message: 'every request to be metered',
      });
      gateway.kill('SIGTERM');
      expect(await exited).toBe(0);
    });

    // The database, every table.
    const dump = await allTablesText();
    expect(dump.length).toBeGreaterThan(0);
    expect(dump).toContain(customer.accountId);
    expect(dump).not.toContain(CANARY);

    // Every Temporal history and search attribute in the namespace.
    const connection = await Connection.connect({ address: config.temporal.address! });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace });
      let histories = 0;
      let sawMetering = false;
      for await (const wf of client.workflow.list()) {
        expect(JSON.stringify(wf.searchAttributes ?? {})).not.toContain(CANARY);
        const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        const text = decodedText(history);
        expect(text, wf.workflowId).not.toContain(CANARY);
        // Proves the decoding sees payloads: the wake-ups of this account's settlement shard name it.
        if (wf.workflowId.startsWith('settlement:') && text.includes(customer.accountId)) sawMetering = true;
        histories++;
      }
      expect(histories).toBeGreaterThan(0);
      expect(sawMetering).toBe(true);
    } finally {
      await connection.close();
    }

    // Every log line (at trace level), and every file the gateway wrote.
    expect(logs).toContain('"log":"access"');
    expect(logs).not.toContain(CANARY);
    expect(filesText(dataDir)).not.toContain(CANARY);
  });
});
