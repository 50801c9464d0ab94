import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger';
import { EEA_COUNTRIES } from '../../src/register/register.rules';
import { REGION_POLICY_CODE } from '../../src/gateway/regionRefusal';
import { RoutingTable, type ModelEntry, type Route, type RoutingRows } from '../../src/gateway/routingTable';
import { modelsForCaller, routesApproved, routesForCaller, subprocessorMessage, SUBPROCESSOR_CODE } from '../../src/gateway/subprocessorRefusal';

const route = (provider: string, opts: { countries?: string[]; registered?: boolean } = {}): Route => ({
  provider,
  baseUrl: 'http://127.0.0.1:1/v1',
  apiKeyEnv: null,
  kind: 'openai',
  upstreamModel: 'm',
  registered: opts.registered ?? true,
  countries: opts.countries ?? ['US'],
});
const entry = (name: string, ...routes: Route[]): ModelEntry => ({ name, createdAt: 0, routes, prices: [] });
/** Holds loaded at 1000 (performance.now() milliseconds). */
const held = (...providers: string[]) => ({ held: new Set(providers), loadedAt: 1000 });
const eea = { allowed: new Set(EEA_COUNTRIES), label: 'EEA' };

describe('routesApproved', () => {
  it('skips a held primary to the fallbacks, in their order, without changing the table entry', () => {
    const e = entry('model-a', route('new'), route('old'), route('other'));
    expect(routesApproved(e, held('new'))!.routes.map((r) => r.provider)).toEqual(['old', 'other']);
    expect(routesApproved(e, held('old'))!.routes.map((r) => r.provider)).toEqual(['new', 'other']);
    expect(e.routes).toHaveLength(3);
  });

  it('skips a provider without a register entry for an account with an agreement only', () => {
    const e = entry('model-a', route('undisclosed', { registered: false }), route('listed'));
    expect(routesApproved(e, held())!.routes.map((r) => r.provider)).toEqual(['listed']);
    // A route from before the flag existed counts as unregistered.
    const bare: Route = { provider: 'bare', baseUrl: 'http://127.0.0.1:1/v1', apiKeyEnv: null, kind: 'openai', upstreamModel: 'm', countries: ['US'] };
    expect(routesApproved(entry('model-b', bare), held())).toBeNull();
    expect(routesApproved(e, null)).toBe(e);
  });

  it('returns the same entry without an agreement, and when every route is allowed', () => {
    const e = entry('model-a', route('a'), route('b', { registered: false }));
    expect(routesApproved(e, null)).toBe(e);
    expect(routesApproved(e, undefined)).toBe(e);
    const f = entry('model-b', route('a'), route('b'));
    expect(routesApproved(f, held('c'))).toBe(f);
  });

  it('leaves alone a route whose register entry changed after the holds were loaded', () => {
    const changedLater = { ...route('new'), registerSince: 1001 };
    const e = entry('model-a', changedLater, { ...route('old'), registerSince: 1000 });
    expect(routesApproved(e, held())!.routes.map((r) => r.provider)).toEqual(['old']);
    expect(routesApproved(e, { held: new Set<string>(), loadedAt: 1001 })).toBe(e);
    expect(routesApproved(e, null)).toBe(e);
  });

  it('returns null when every route is held', () => {
    expect(routesApproved(entry('model-a', route('a'), route('b')), held('a', 'b'))).toBeNull();
  });
});

describe('routesForCaller', () => {
  it('leaves a caller without policy or agreement the table entry itself', () => {
    const e = entry('model-a', route('a', { registered: false, countries: [] }));
    expect(routesForCaller(e, {})).toBe(e);
    expect(routesForCaller(e, { regionPolicy: null, subprocessors: null })).toBe(e);
  });

  it('applies the region policy first, then the agreement', () => {
    const e = entry('model-a', route('us'), route('de', { countries: ['DE'] }), route('fr', { countries: ['FR'] }));
    const r = routesForCaller(e, { regionPolicy: eea, subprocessors: held('de') });
    expect(typeof r === 'string' ? r : r.routes.map((x) => x.provider)).toEqual(['fr']);
  });

  it('answers the region refusal when the policy alone leaves nothing, the agreement refusal otherwise', () => {
    const usOnly = entry('model-a', route('us'));
    expect(routesForCaller(usOnly, { regionPolicy: eea, subprocessors: held('us') })).toBe(REGION_POLICY_CODE);
    const de = entry('model-b', route('us'), route('de', { countries: ['DE'] }));
    expect(routesForCaller(de, { regionPolicy: eea, subprocessors: held('de') })).toBe(SUBPROCESSOR_CODE);
    // The US route the agreement would allow does not bring the model back: the policy excludes it.
    expect(routesForCaller(de, { regionPolicy: null, subprocessors: held('de') })).not.toBe(SUBPROCESSOR_CODE);
  });
});

describe('modelsForCaller', () => {
  it('lists only models with a route the caller may use, and the list itself for a caller without either', () => {
    const models = [entry('a', route('held')), entry('b', route('held'), route('ok')), entry('c', route('ok', { countries: ['DE'] })), entry('d', route('x', { registered: false }))];
    expect(modelsForCaller(models, {})).toBe(models);
    expect(modelsForCaller(models, { subprocessors: held('held') }).map((m) => m.name)).toEqual(['b', 'c']);
    expect(modelsForCaller(models, { regionPolicy: eea, subprocessors: held('held') }).map((m) => m.name)).toEqual(['c']);
    expect(modelsForCaller(models, { regionPolicy: eea }).map((m) => m.name)).toEqual(['c']);
  });
});

describe('the refusal message', () => {
  it('names the model and what to do, never a provider', () => {
    const m = subprocessorMessage('model-a');
    expect(m).toContain('`model-a`');
    expect(m).toContain('data-processing agreement');
    expect(m).toContain('/v1/subprocessor-notices');
  });
});

describe('the routing table', () => {
  it('marks the routes whose provider has a register entry', async () => {
    const rows: RoutingRows = {
      models: [{ id: 'm1', public_name: 'model-a', upstream_model: 'up', created_at: new Date(0), provider: 'listed', base_url: 'http://x/v1', api_key_env: null, kind: 'openai', countries: ['US'], registered: true }],
      fallbacks: [{ model_id: 'm1', upstream_model: 'up', provider: 'none', base_url: 'http://z/v1', api_key_env: null, kind: 'openai', countries: null, registered: false }],
      prices: [],
    };
    const table = new RoutingTable(async () => rows, 60_000, createLogger({ logLevel: 'silent' }, 'test'));
    await table.refresh();
    expect(table.get('model-a')!.routes.map((r) => [r.provider, r.registered])).toEqual([
      ['listed', true],
      ['none', false],
    ]);
    // A refresh with the same register facts keeps each route's registerSince; a change moves it.
    const since = table.get('model-a')!.routes.map((r) => r.registerSince!);
    await table.refresh();
    expect(table.get('model-a')!.routes.map((r) => r.registerSince)).toEqual(since);
    rows.models[0]!.countries = ['US', 'IN'];
    rows.fallbacks[0]!.registered = true;
    rows.fallbacks[0]!.countries = ['DE'];
    await table.refresh();
    const [listed, none] = table.get('model-a')!.routes;
    expect(listed!.registerSince).toBeGreaterThan(since[0]!);
    expect(none!.registerSince).toBeGreaterThan(since[1]!);
  });
});
