/**
 * The provider call that reads a non-streaming answer whole (callUpstreamWhole),
 * against the fake provider: what the forwarder relies on is that a call either
 * fails before the headers (a failure it can retry or report) or hands back an
 * answer whose body errors surface from bytes(), never as a thrown call.
 */
import { Agent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Route } from '../../src/gateway/routingTable';
import { callUpstreamWhole, UpstreamCancel } from '../../src/gateway/upstream';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';

let up: FakeUpstream;
let agent: Agent;
beforeEach(async () => {
  up = await startFakeUpstream();
  agent = new Agent({ headersTimeout: 2_000, bodyTimeout: 2_000 });
});
afterEach(async () => {
  await agent.close().catch(() => undefined);
  await up.close();
});

const route = (): Route => ({ provider: 'fake', baseUrl: up.url, apiKeyEnv: null, kind: 'openai', upstreamModel: 'gpt-test' });
const body = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'Say hi' }] });
const call = (signal = new UpstreamCancel()) => callUpstreamWhole({ agent, route: route(), path: '/chat/completions', body, signal, env: {} });

describe('callUpstreamWhole', () => {
  it('hands back the status, the headers by lower-case name and the whole body', async () => {
    const result = await call();
    if (!('response' in result)) throw new Error(`expected an answer, got ${JSON.stringify(result)}`);
    expect(result.response.statusCode).toBe(200);
    expect(String(result.response.headers['content-type'])).toContain('application/json');
    const answer = JSON.parse((await result.response.body.bytes()).toString('utf8'));
    expect(answer.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7 });
    // The same bytes through iteration, as the error and stream paths read them.
    const chunks: Uint8Array[] = [];
    for await (const c of result.response.body) chunks.push(c);
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8'))).toEqual(answer);
  });

  it('fails before the headers as a failure, not a throw: dropped connection, refused connection, closed agent', async () => {
    up.enqueue({ kind: 'drop-before-headers' });
    expect(await call()).toMatchObject({ kind: 'unreachable' });

    const refused = await callUpstreamWhole({ agent, route: { ...route(), baseUrl: 'http://127.0.0.1:1/v1' }, path: '/chat/completions', body, signal: new UpstreamCancel(), env: {} });
    expect(refused).toMatchObject({ kind: 'unreachable', code: 'econnrefused' });

    await agent.close();
    expect(await call()).toMatchObject({ kind: 'unreachable' });
  });

  it('stops the call when the client goes away before the headers', async () => {
    up.enqueue({ kind: 'slow', headerDelayMs: 1_500 });
    const signal = new UpstreamCancel();
    const pending = call(signal);
    await up.waitForRequests(1); // abort only once the upstream really has the call
    signal.abort();
    expect(await pending).toMatchObject({ kind: 'unreachable' });
  });

  it('reports a body cut after the headers from bytes()', async () => {
    up.enqueue({ kind: 'drop-mid-stream' });
    const streamed = await callUpstreamWhole({ agent, route: route(), path: '/chat/completions', body: JSON.stringify({ ...JSON.parse(body), stream: true }), signal: new UpstreamCancel(), env: {} });
    if (!('response' in streamed)) throw new Error(`expected an answer, got ${JSON.stringify(streamed)}`);
    expect(streamed.response.statusCode).toBe(200);
    await expect(streamed.response.body.bytes()).rejects.toBeInstanceOf(Error);
  });
});
