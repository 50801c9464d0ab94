import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, untilTrue } from '../helpers/eventually';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { testConfig, testDb } from '../helpers/env';
import { freePort } from '../../src/util/ports';

/**
 * The gateway as API clients use it: the official openai client against a
 * real gateway, real PostgreSQL and Temporal, and a fake provider.
 */
const db = testDb(testConfig());
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let customer: Customer;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  customer = await createCustomer(db, upstream.url);
  gw = await startTestGateway();
  client = new OpenAI({ apiKey: customer.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

async function eventFor(requestId: string) {
  await gw.batcher.flush();
  return db('usage_events').where({ request_id: requestId }).first();
}

describe('models', () => {
  it('lists the routing table', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain(customer.model);
  });
});

describe('chat completions', () => {
  it('answers, names the request, and meters tokens and cost at the price in force', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: customer.model, messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('Hello from the fake upstream.');
    const requestId = response.headers.get('x-request-id')!;
    expect(requestId).toMatch(/^req-/);
    // The provider got our upstream model name and our credential, not the client's key.
    const seen = upstream.requests.at(-1)!;
    expect(seen.body.model).toBe('fake-model');
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);

    const event = await eventFor(requestId);
    expect(event).toMatchObject({
      account_id: customer.accountId,
      api_key_id: customer.keyId,
      user_id: customer.userId,
      endpoint: 'chat.completions',
      model: customer.model,
      provider: customer.provider,
      status_code: 200,
      stream: false,
      input_tokens: 11,
      output_tokens: 7,
      usage_estimated: false,
    });
    // 11 x 2.5/M + 7 x 10/M
    expect(event.cost).toBe('0.000097500000');
  });

  it('streams chunk by chunk, and hides the usage chunk from a client that did not ask for it', async () => {
    upstream.enqueue({ kind: 'ok', chunks: 5, content: 'one two three four five' });
    const { data: stream, response } = await client.chat.completions
      .create({ model: customer.model, messages: [{ role: 'user', content: 'count' }], stream: true })
      .withResponse();
    let text = '';
    let sawUsage = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) sawUsage = true;
    }
    expect(text).toBe('one two three four five');
    expect(sawUsage).toBe(false);
    // We asked the provider for usage anyway, and metered it.
    expect(upstream.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });
    const event = await eventFor(response.headers.get('x-request-id')!);
    expect(event).toMatchObject({ stream: true, input_tokens: 11, output_tokens: 7, usage_estimated: false });
  });

  it('passes the usage chunk through when the client asks for it', async () => {
    const stream = await client.chat.completions.create({
      model: customer.model,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7 });
  });

  it('prices cached input once, at the cached price', async () => {
    upstream.enqueue({ kind: 'ok', promptTokens: 1000, cachedTokens: 800, completionTokens: 10 });
    const { response } = await client.chat.completions.create({ model: customer.model, messages: [{ role: 'user', content: 'x' }] }).withResponse();
    const event = await eventFor(response.headers.get('x-request-id')!);
    expect(event).toMatchObject({ input_tokens: 200, cache_read_tokens: 800, output_tokens: 10 });
    // 200 x 2.5/M + 800 x 1.25/M + 10 x 10/M
    expect(event.cost).toBe('0.001600000000');
  });

  it('counts tokens locally and marks the event when the provider reports no usage', async () => {
    upstream.enqueue({ kind: 'ok', usage: 'none' });
    const { response } = await client.chat.completions.create({ model: customer.model, messages: [{ role: 'user', content: 'Tell me something' }] }).withResponse();
    const event = await eventFor(response.headers.get('x-request-id')!);
    expect(event.usage_estimated).toBe(true);
    expect(event.input_tokens).toBeGreaterThan(0);
  });
});

describe('other endpoints', () => {
  it('completions, embeddings and responses (streamed and not) are forwarded and metered', async () => {
    const completion = await client.completions.create({ model: customer.model, prompt: 'Once upon' }).withResponse();
    expect(completion.data.choices[0]!.text).toBe('Hello from the fake upstream.');
    expect(await eventFor(completion.response.headers.get('x-request-id')!)).toMatchObject({ endpoint: 'completions', input_tokens: 11 });

    const embedding = await client.embeddings.create({ model: customer.model, input: ['a', 'b'] }).withResponse();
    expect(embedding.data.data).toHaveLength(2);
    expect(await eventFor(embedding.response.headers.get('x-request-id')!)).toMatchObject({ endpoint: 'embeddings', input_tokens: 11, output_tokens: 0 });

    const resp = await client.responses.create({ model: customer.model, input: 'hello' }).withResponse();
    expect(resp.data.output_text).toBe('Hello from the fake upstream.');
    expect(await eventFor(resp.response.headers.get('x-request-id')!)).toMatchObject({ endpoint: 'responses', input_tokens: 11, output_tokens: 7 });

    const streamed = await client.responses.create({ model: customer.model, input: 'hello', stream: true }).withResponse();
    let text = '';
    for await (const ev of streamed.data) if (ev.type === 'response.output_text.delta') text += ev.delta;
    expect(text).toBe('Hello from the fake upstream.');
    expect(await eventFor(streamed.response.headers.get('x-request-id')!)).toMatchObject({ endpoint: 'responses', stream: true, output_tokens: 7, usage_estimated: false });
  });
});

describe('errors in OpenAI shape', () => {
  it('401 for a missing or wrong key, recorded as a security event', async () => {
    const anonymous = new OpenAI({ apiKey: 'mr-this-is-not-a-real-key-000000000000', baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const err = await anonymous.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');

    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; type: string; message: string; param: unknown } };
    expect(body.error).toMatchObject({ code: 'missing_api_key', type: 'invalid_request_error', param: null });
    await gw.batcher.flush();
    const requestId = res.headers.get('x-request-id');
    // Security events are batched and flushed every second.
    const row = await untilTrue(() => db('security_events').where({ request_id: requestId }).first(), { timeoutMs: 5_000, message: 'the auth failure to be written as a security event' });
    expect(row).toMatchObject({ kind: 'auth_failed', reason: 'missing_key', source: 'gateway' });
  });

  it('404 for an unknown model, 400 for bad JSON and bad parameters, each metered once', async () => {
    const notFound = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect((notFound as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');

    const badParams = await client.chat.completions.create({ model: customer.model, messages: [] }).catch((e: unknown) => e);
    expect(badParams).toBeInstanceOf(OpenAI.BadRequestError);
    expect((badParams as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages');

    const malformed = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
      body: '{"model": "x", "messages": [',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    const event = await eventFor(malformed.headers.get('x-request-id')!);
    expect(event).toMatchObject({ status_code: 400, error_type: 'invalid_json', cost: '0.000000000000' });
  });

  it('routes /v1 paths as OpenAI clients spell them, and answers unknown ones in OpenAI error JSON', async () => {
    const headers = { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'x' }] });
    // Query string, trailing slash and case are matched as Express matches them.
    const spelled = await fetch(`${gw.url}/V1/Chat/Completions/?api-version=1`, { method: 'POST', headers, body });
    expect(spelled.status).toBe(200);
    expect(await eventFor(spelled.headers.get('x-request-id')!)).toMatchObject({ endpoint: 'chat.completions', status_code: 200 });

    for (const [method, path] of [['POST', '/v1/chat/completion'], ['GET', '/v1/chat/completions'], ['POST', '/v1/models']] as const) {
      const res = await fetch(`${gw.url}${path}`, { method, headers, body: method === 'POST' ? body : undefined });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('x-request-id')).toMatch(/^req-/);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_url');
    }
  });

  it("passes a provider's 4xx through with its status", async () => {
    upstream.enqueue({ kind: 'error', status: 400, errorBody: { error: { message: 'context too long', type: 'invalid_request_error', code: 'context_length_exceeded', param: null } } });
    const err = await client.chat.completions.create({ model: customer.model, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
  });

  it('502 when the provider is unreachable, 504 when it does not answer in time', async () => {
    const deadPort = await freePort();
    const dead = await createCustomer(db, `http://127.0.0.1:${deadPort}/v1`);
    await gw.routing.refresh();
    const deadClient = new OpenAI({ apiKey: dead.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const unreachable = await deadClient.chat.completions.create({ model: dead.model, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(OpenAI.APIError);
    expect((unreachable as InstanceType<typeof OpenAI.APIError>).status).toBe(502);

    const slow = await startTestGateway({ UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '300' });
    try {
      upstream.enqueue({ kind: 'hang' });
      const slowClient = new OpenAI({ apiKey: customer.key, baseURL: `${slow.url}/v1`, maxRetries: 0 });
      const timeout = await slowClient.chat.completions.create({ model: customer.model, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      expect((timeout as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    } finally {
      await slow.stop();
    }
  });

  it('413 for a body over the limit', async () => {
    const small = await startTestGateway({ GATEWAY_MAX_BODY_BYTES: '2048' });
    try {
      const c = new OpenAI({ apiKey: customer.key, baseURL: `${small.url}/v1`, maxRetries: 0 });
      const err = await c.chat.completions.create({ model: customer.model, messages: [{ role: 'user', content: 'x'.repeat(5000) }] }).catch((e: unknown) => e);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('request_too_large');
    } finally {
      await small.stop();
    }
  });

  it('429 past the key\'s requests per minute', async () => {
    const limited = await createCustomer(db, upstream.url, { rateLimitRpm: 2 });
    await gw.routing.refresh();
    const c = new OpenAI({ apiKey: limited.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const ask = () => c.chat.completions.create({ model: limited.model, messages: [{ role: 'user', content: 'x' }] });
    await ask();
    await ask();
    const err = await ask().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBeTruthy();
  });
});

describe('fallback and aborts', () => {
  it('falls back to the next provider when the first fails before anything was sent', async () => {
    const second = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
    try {
      const first = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
      first.setDefault({ kind: 'error', status: 503 });
      const c = await createCustomer(db, first.url, { fallbackUrls: [second.url] });
      await gw.routing.refresh();
      const oc = new OpenAI({ apiKey: c.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
      const { data, response } = await oc.chat.completions.create({ model: c.model, messages: [{ role: 'user', content: 'x' }] }).withResponse();
      expect(data.choices[0]!.message.content).toBe('Hello from the fake upstream.');
      expect(first.requests).toHaveLength(1);
      expect(second.requests).toHaveLength(1);
      const event = await eventFor(response.headers.get('x-request-id')!);
      expect(event.provider).toBe(`${c.provider}-fb0`);
      await first.close();
    } finally {
      await second.close();
    }
  });

  it('aborts the provider call when the client disconnects mid-stream, and meters what was delivered', async () => {
    upstream.enqueue({ kind: 'ok', chunks: 50, chunkDelayMs: 20, content: 'word '.repeat(50) });
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'long story' }], stream: true }),
      signal: controller.signal,
    });
    const requestId = res.headers.get('x-request-id')!;
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    const abortedBefore = upstream.requests.filter((r) => r.aborted).length;
    controller.abort();
    await upstream.waitForAborted(abortedBefore + 1);
    const event = await untilTrue(() => eventFor(requestId), { timeoutMs: 5_000, message: 'the aborted call to be metered' });
    expect(event).toMatchObject({ status_code: 499, error_type: 'client_closed', stream: true, usage_estimated: true });
    expect(event.output_tokens).toBeGreaterThan(0);
    expect(event.output_tokens).toBeLessThan(50);
  });
});

describe('source address', () => {
  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const ask = (url: string) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7' },
        body: JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'x' }] }),
      });
    const untrusted = await ask(gw.url);
    expect((await eventFor(untrusted.headers.get('x-request-id')!)).source_ip).toBe('127.0.0.1');

    const behindProxy = await startTestGateway({ TRUSTED_PROXIES: '127.0.0.1' });
    try {
      const trusted = await ask(behindProxy.url);
      await behindProxy.batcher.flush();
      const row = await db('usage_events').where({ request_id: trusted.headers.get('x-request-id') }).first();
      expect(row.source_ip).toBe('203.0.113.7');
    } finally {
      await behindProxy.stop();
    }
  });
});

describe('revocation', () => {
  it('a revoked key stops working on a running gateway', async () => {
    const c = await createCustomer(db, upstream.url);
    await gw.routing.refresh();
    const oc = new OpenAI({ apiKey: c.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    await oc.models.list();
    await db('api_keys').where({ id: c.keyId }).update({ revoked_at: new Date() });
    // Revocation reaches every instance within 5 s: a cached key lives at most that long (GATEWAY_KEY_CACHE_MS).
    await eventually(async () => expect(await oc.models.list().then(() => 'ok', (e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError), {
      timeoutMs: 5_000,
      intervalMs: 200,
      message: 'the revoked key to be refused',
    });
  });
});

describe('metrics', () => {
  it('counts requests by model, provider and status, with unknown models under one label', async () => {
    await client.chat.completions.create({ model: customer.model, messages: [{ role: 'user', content: 'x' }] });
    await client.chat.completions.create({ model: 'made-up-model-name', messages: [{ role: 'user', content: 'x' }] }).catch(() => undefined);
    const text = await (await fetch(gw.metricsUrl)).text();
    expect(text).toMatch(new RegExp(`gateway_requests_total\\{model="${customer.model}",provider="${customer.provider}",status="200",service="gateway"\\} [1-9]`));
    expect(text).toMatch(/gateway_requests_total\{model="unknown",provider="none",status="404",service="gateway"\} [1-9]/);
    expect(text).not.toContain('made-up-model-name');
    expect(text).toContain('gateway_overhead_seconds_bucket');
    expect(text).toContain('metering_journal_bytes');
  });
});
