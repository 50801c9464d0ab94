import { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, portInUse } from '../../src/util/ports';
import { runCliJson } from '../helpers/cli';
import { alive, startDev, stopDevRuns, waitForOutput } from '../helpers/devProcess';
import { testConfig, testEnv } from '../helpers/env';

/**
 * `mixroute dev` as a person runs it: a real process tree, real ports, and
 * Ctrl-C (SIGINT to the dev process) stopping all of it.
 */
afterEach(stopDevRuns);

/** The `mixroute <role>` children of a process (tsx's esbuild helper is not one of ours). */
function roleChildren(pid: number): { pid: number; role: string }[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => /^\s*(\d+)\s+.*bin\/mixroute\.js (\w+)/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), role: m[2]! }));
  } catch {
    return [];
  }
}

async function ports() {
  return { gateway: await freePort(), admin: await freePort() };
}

describe('mixroute dev', () => {
  it('runs worker, gateway and admin against an existing Temporal (TEMPORAL_ADDRESS) and stops cleanly on Ctrl-C', async () => {
    const config = testConfig();
    const p = await ports();
    const env = testEnv(config, { GATEWAY_PORT: String(p.gateway), ADMIN_PORT: String(p.admin), DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-dev-')) });
    const run = startDev(env);
    await waitForOutput(run, 'MixRoute dev is up');

    expect(run.output()).toContain(`gateway      http://127.0.0.1:${p.gateway}`);
    expect(run.output()).toContain(`admin API    http://127.0.0.1:${p.admin}`);
    expect(run.output()).toContain('(external, TEMPORAL_ADDRESS)');
    // /metrics is on its own loopback listeners (free ports here), printed by dev.
    const metricsUrls = /metrics +(http:\S+) \(gateway\), (http:\S+) \(admin API\)/.exec(run.output());
    expect(metricsUrls).not.toBeNull();
    for (const [i, service] of [[1, 'gateway'], [2, 'admin']] as const) {
      expect(await (await fetch(metricsUrls![i]!)).text()).toContain(`service="${service}"`);
    }
    for (const port of [p.gateway, p.admin]) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
    }
    // A second process finds the worker of this tree through Temporal.
    const doctor = await runCliJson(['doctor'], env);
    expect(doctor.ok).toBe(true);
    expect(doctor.checks.worker.ok).toBe(true);

    const children = roleChildren(run.child.pid!);
    expect(children.map((c) => c.role).sort()).toEqual(['admin', 'gateway', 'worker']);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('stopped.');
    for (const c of children) expect(alive(c.pid), `${c.role} (${c.pid})`).toBe(false);
    expect(await portInUse(p.gateway)).toBe(false);
    expect(await portInUse(p.admin)).toBe(false);
  });

  it('starts its own Temporal dev server with SQLite state under DATA_DIR and the Web UI showing the namespace', async () => {
    const config = testConfig();
    const p = await ports();
    const temporalPort = await freePort();
    const uiPort = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixroute-dev-'));
    const env = testEnv(config, {
      GATEWAY_PORT: String(p.gateway),
      ADMIN_PORT: String(p.admin),
      TEMPORAL_ADDRESS: '',
      TEMPORAL_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      DATA_DIR: dataDir,
    });
    const run = startDev(env);
    await waitForOutput(run, 'MixRoute dev is up');
    expect(run.output()).toContain(`Temporal UI  http://127.0.0.1:${uiPort}/namespaces/default/workflows`);

    const ns = await fetch(`http://127.0.0.1:${uiPort}/api/v1/namespaces/default`);
    expect(ns.status).toBe(200);
    expect(((await ns.json()) as { namespaceInfo: { name: string } }).namespaceInfo.name).toBe('default');
    const page = await fetch(`http://127.0.0.1:${uiPort}/namespaces/default/workflows`);
    expect(page.status).toBe(200);
    expect(fs.existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);
    // The daily reconciliation and expiry are scheduled on the server dev started (a missed day is caught up, overlaps skipped).
    expect(run.output()).toContain('schedules: reconcile-daily, metadata-expiry-daily (2 created');
    const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
    try {
      const schedules = new Client({ connection }).schedule;
      expect((await schedules.getHandle('reconcile-daily').describe()).action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcile' });
      const expiry = await schedules.getHandle('metadata-expiry-daily').describe();
      expect(expiry.action).toMatchObject({ type: 'startWorkflow', workflowType: 'metadataExpiry' });
      expect(expiry.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 86_400_000 });
    } finally {
      await connection.close();
    }

    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('stopping Temporal dev server');
    for (const port of [p.gateway, p.admin, temporalPort, uiPort]) expect(await portInUse(port), `port ${port}`).toBe(false);
  });
});
