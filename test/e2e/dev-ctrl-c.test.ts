import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StopWaiting, untilTrue } from '../helpers/eventually';
import { freePort, portInUse } from '../../src/util/ports';
import { BIN } from '../helpers/cli';
import { testConfig, testDb, testEnv } from '../helpers/env';
import { createCustomer, UPSTREAM_KEY, UPSTREAM_KEY_ENV } from '../helpers/gateway';

/**
 * Ctrl-C in a terminal (issue 17, item 11) sends SIGINT to the whole
 * foreground process group. `mixroute dev` runs here in a group of its own,
 * as a shell would run it, and the test sends SIGINT to that group while a
 * streamed completion is in flight: the stream must finish, the answer be
 * metered, and every child stop once (no "second stop request").
 */
const config = testConfig();
const db = testDb(config);
afterAll(() => db.destroy());

/** A provider whose stream stops after its first chunk until the test lets it go on. */
async function heldUpstream() {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let first!: () => void;
  const firstSent = new Promise<void>((r) => (first = r));
  const chunk = (o: object) => `data: ${JSON.stringify({ id: 'chatcmpl-held', object: 'chat.completion.chunk', created: 0, model: 'fake-model', ...o })}\n\n`;
  const server = createServer((req, res: ServerResponse) => {
    req.resume();
    req.once('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: 'first half, ' }, finish_reason: null }] }), () => first());
      await released;
      res.write(chunk({ choices: [{ index: 0, delta: { content: 'second half.' }, finish_reason: null }] }));
      res.write(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
      res.write(chunk({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 } }));
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, release, firstSent, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('mixroute dev and a terminal Ctrl-C', () => {
  it('lets an in-flight stream finish and stops each child once when SIGINT reaches the whole process group', async () => {
    const upstream = await heldUpstream();
    const customer = await createCustomer(db, upstream.url);
    const gatewayPort = await freePort();
    const env = testEnv(config, {
      GATEWAY_PORT: String(gatewayPort),
      ADMIN_PORT: String(await freePort()),
      DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-dev-ctrl-c-')),
      [UPSTREAM_KEY_ENV]: UPSTREAM_KEY,
    });
    // detached: the dev process leads its own group, as a shell's foreground job does.
    const dev = spawn(process.execPath, [BIN, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    dev.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    dev.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    const waitFor = (done: () => boolean | Promise<boolean>, what: string, timeoutMs: number) =>
      untilTrue(
        async () => {
          if (dev.exitCode !== null) throw new StopWaiting(`mixroute dev exited while waiting for ${what}:\n${out}`);
          return done();
        },
        { timeoutMs, message: what },
      );
    try {
      await waitFor(() => out.includes('MixRoute dev is up'), 'start-up', 60_000);

      const res = await fetch(`http://127.0.0.1:${gatewayPort}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: customer.model, stream: true, messages: [{ role: 'user', content: 'hello' }] }),
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      await upstream.firstSent;
      while (!text.includes('first half')) text += decoder.decode((await reader.read()).value, { stream: true });

      // The terminal's Ctrl-C: SIGINT to every process in the foreground group.
      process.kill(-dev.pid!, 'SIGINT');
      // Dev has passed its own stop on to the children, and the gateway has stopped accepting:
      // a child that took these as two stops would be gone by now.
      await waitFor(() => out.includes('stopping worker, gateway and admin API'), 'the supervisor to stop the children', 10_000);
      await waitFor(async () => !(await portInUse(gatewayPort)), 'the gateway to stop accepting', 10_000);

      upstream.release();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(text).toContain('second half.');
      expect(text).toContain('data: [DONE]');

      expect(await exited).toBe(0);
      expect(out).toContain('stopped.');
      expect(out).not.toContain('second stop request');
      // The gateway drained its journal before exiting: the request is metered.
      const events = await db('usage_events').where({ account_id: customer.accountId }).select('output_tokens');
      expect(events.map((e) => Number(e.output_tokens))).toEqual([4]);
    } finally {
      if (dev.exitCode === null) dev.kill('SIGKILL');
      await upstream.close();
    }
  });
});
