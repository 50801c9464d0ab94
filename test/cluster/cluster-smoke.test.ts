/**
 * The whole system on a real two-node Temporal cluster over TLS (scripts/cluster):
 * one chat completion through each gateway (each talks to a different Temporal node),
 * settled into the ledger by the cluster's workers. Only the model provider is a fake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { ClusterHandle } from '../../scripts/cluster/cluster';
import { startTestCluster } from './helpers/testCluster';
import { createDb, type Db } from '../../src/db/knex';
import { untilTrue } from '../helpers/eventually';
import { createCustomer, UPSTREAM_KEY, type Customer } from '../helpers/gateway';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fakeUpstream';

let cluster: ClusterHandle;
let upstream: FakeUpstream;
let db: Db;
let customer: Customer;

beforeAll(async () => {
  upstream = await startFakeUpstream({ apiKey: UPSTREAM_KEY });
  cluster = await startTestCluster('smoke', 19200);
  db = createDb({ databaseUrl: cluster.state.databaseUrl, poolMax: 2 });
  customer = await createCustomer(db, upstream.url);
});

afterAll(async () => {
  await db?.destroy();
  await cluster?.stop();
  await upstream?.close();
});

async function chat(gatewayUrl: string): Promise<Response> {
  return fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: customer.model, messages: [{ role: 'user', content: 'Hello cluster' }] }),
  });
}

describe('MixRoute on a two-node Temporal cluster over TLS', () => {
  it('serves a request through each gateway and settles both into the ledger', async () => {
    const { gateways, temporal } = cluster.state;
    expect(gateways).toHaveLength(2);
    // Each gateway talks to its own Temporal node.
    expect(new Set(gateways.map((g) => g.temporalAddress))).toEqual(new Set(temporal.map((t) => t.frontend)));

    for (const g of gateways) {
      // A new model reaches a gateway with its next routing refresh.
      const body = await untilTrue(
        async () => {
          const res = await chat(g.url);
          return res.status === 200 ? ((await res.json()) as { choices: { message: { content: string } }[]; usage: { total_tokens: number } }) : (await res.body?.cancel(), undefined);
        },
        { timeoutMs: 30_000, message: `${g.url} to route the new model` },
      );
      expect(body.choices[0]!.message.content).toContain('fake upstream');
      expect(body.usage.total_tokens).toBeGreaterThan(0);
    }

    // Metered once per request, by the gateway that served it, and settled by a worker.
    // (Refused attempts before a routing refresh are metered too, at no cost: all must settle.)
    const events = await untilTrue(
      async () => {
        const rows = await db('usage_events').where({ account_id: customer.accountId }).select('gateway_instance', 'status_code', 'cost', 'settled_at');
        return rows.filter((r) => r.status_code === 200).length === 2 && rows.every((r) => r.settled_at) ? rows : undefined;
      },
      { timeoutMs: 60_000, message: 'both requests to be metered and settled' },
    );
    expect(events.filter((e) => e.status_code === 200).map((e) => e.gateway_instance).sort()).toEqual(['gateway-1', 'gateway-2']);

    const usage = await db('ledger_entries').where({ account_id: customer.accountId, kind: 'usage' }).select('amount');
    const charged = usage.reduce((s, e) => s - Number(e.amount), 0);
    const cost = events.reduce((s, e) => s + Number(e.cost), 0);
    expect(cost).toBeGreaterThan(0);
    expect(charged).toBeCloseTo(cost, 9);
    // The balance equals the sum of the account's entries.
    const { sum } = (await db('ledger_entries').where({ account_id: customer.accountId }).sum('amount as sum').first()) as { sum: string };
    const { balance } = (await db('account_balances').where({ account_id: customer.accountId }).first('balance')) as { balance: string };
    expect(Number(balance)).toBeCloseTo(Number(sum), 9);

    // The settlement ran as a workflow on the cluster: visible through either node.
    const connection = await Connection.connect(cluster.temporalConnectOptions(2));
    try {
      const client = new Client({ connection, namespace: cluster.state.namespace });
      const shards = await untilTrue(
        async () => {
          const found = [];
          for await (const w of client.workflow.list({ query: `WorkflowId STARTS_WITH "settlement:"` })) found.push(w);
          return found.length ? found : undefined;
        },
        { timeoutMs: 30_000, message: 'a settlement shard workflow in the cluster\'s visibility' },
      );
      expect(shards[0]!.taskQueue).toBe(cluster.state.taskQueue);
    } finally {
      await connection.close();
    }
  });
});
