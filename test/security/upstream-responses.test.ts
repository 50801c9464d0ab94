import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilTrue } from '../helpers/eventually';
import { testConfig, testDb } from '../helpers/env';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';
import { createCustomer, startTestGateway, UPSTREAM_KEY, type Customer } from '../helpers/gateway';

/**
 * A provider (or someone answering in its place) sends what the gateway must
 * not pass on or hold: a 401/403 whose body describes the gateway's own
 * account with that provider, or a body too large to hold in memory.
 */
const config = testConfig();
const db = testDb(config);
const MARKER = 'PROVIDER-ACCOUNT-DETAIL-7f3c9a';
let upstream: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let customer: Customer;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  customer = await createCustomer(db, upstream.url);
  gw = await startTestGateway(
    { UPSTREAM_MAX_RESPONSE_BYTES: String(64 * 1024), UPSTREAM_MAX_STREAM_EVENT_BYTES: String(16 * 1024), UPSTREAM_ALLOWED_HOSTS: '127.0.0.1' },
    config,
  );
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await db.destroy();
});

function ask(extra: Record<string, unknown> = {}) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: customer.model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
}

async function eventFor(requestId: string) {
  await gw.batcher.flush();
  return db('usage_events').where({ request_id: requestId }).first();
}

describe("a provider's answer", () => {
  it.each([401, 403])('%i with a body becomes our own 502 upstream_auth_failed, without the body', async (status) => {
    upstream.enqueue({
      kind: 'error',
      status,
      errorBody: { error: { message: `Key of organization ${MARKER} is suspended`, type: 'invalid_request_error', code: 'invalid_api_key', param: null } },
    });
    const res = await ask();
    const text = await res.text();
    expect(res.status).toBe(502);
    expect(text).not.toContain(MARKER);
    expect(JSON.parse(text).error).toMatchObject({ type: 'upstream_error', code: 'upstream_auth_failed' });
    expect(await eventFor(res.headers.get('x-request-id')!)).toMatchObject({ status_code: 502, error_type: 'upstream_auth_failed' });
  });

  it('larger than UPSTREAM_MAX_RESPONSE_BYTES is a 502, not relayed', async () => {
    upstream.enqueue({ kind: 'ok', content: 'x'.repeat(200 * 1024) });
    const res = await ask();
    const body = (await res.json()) as { error: { code: string } };
    expect(res.status).toBe(502);
    expect(body.error.code).toBe('upstream_response_too_large');
    expect(await eventFor(res.headers.get('x-request-id')!)).toMatchObject({ status_code: 502, error_type: 'upstream_response_too_large' });
  });

  it('with one stream event larger than UPSTREAM_MAX_STREAM_EVENT_BYTES cuts the stream and is recorded as a 502', async () => {
    upstream.enqueue({ kind: 'ok', chunks: 1, content: 'y'.repeat(100 * 1024) });
    const res = await ask({ stream: true });
    const requestId = res.headers.get('x-request-id')!;
    const text = await res.text().catch(() => '');
    expect(text).not.toContain('y'.repeat(20 * 1024));
    expect(text).not.toContain('[DONE]');
    const event = await untilTrue(() => eventFor(requestId), { timeoutMs: 5_000, message: 'the cut stream to be metered' });
    expect(event).toMatchObject({ status_code: 502, error_type: 'upstream_event_too_large' });
  });
});
