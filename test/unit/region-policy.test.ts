import { describe, expect, it } from 'vitest';
import { parseAllow } from '../../src/accounts/regionPolicy.service';
import { createLogger } from '../../src/logger';
import { EEA_COUNTRIES } from '../../src/register/register.rules';
import { policyName, regionPolicyMessage, routesWithinPolicy } from '../../src/gateway/regionRefusal';
import { RoutingTable, type ModelEntry, type Route, type RoutingRows } from '../../src/gateway/routingTable';
import { ValidationError } from '../../src/errors';

const route = (provider: string, countries?: string[]): Route => ({ provider, baseUrl: 'http://127.0.0.1:1/v1', apiKeyEnv: null, kind: 'openai', upstreamModel: 'm', ...(countries ? { countries } : {}) });
const entry = (...routes: Route[]): ModelEntry => ({ name: 'model-a', createdAt: 0, routes, prices: [] });
const eea = { allowed: new Set(EEA_COUNTRIES), label: 'EEA' };

describe('routesWithinPolicy', () => {
  it('keeps every route, as the same entry, without a policy', () => {
    const e = entry(route('us', ['US']), route('de', ['DE']));
    expect(routesWithinPolicy(e, null)).toBe(e);
    expect(routesWithinPolicy(e, undefined)).toBe(e);
  });

  it('keeps only routes whose every country is allowed, primary and fallbacks alike, in their order', () => {
    const e = entry(route('us', ['US']), route('de', ['DE']), route('mixed', ['FR', 'US']), route('fr-ie', ['FR', 'IE']));
    expect(routesWithinPolicy(e, eea)!.routes.map((r) => r.provider)).toEqual(['de', 'fr-ie']);
    // The table's entry is not changed.
    expect(e.routes).toHaveLength(4);
  });

  it('returns the same entry when every route is allowed', () => {
    const e = entry(route('de', ['DE']), route('fr', ['FR']));
    expect(routesWithinPolicy(e, eea)).toBe(e);
  });

  it('treats a provider without countries (no register entry) as outside every region', () => {
    expect(routesWithinPolicy(entry(route('unknown', [])), eea)).toBeNull();
    expect(routesWithinPolicy(entry(route('absent')), eea)).toBeNull();
    expect(routesWithinPolicy(entry(route('absent'), route('de', ['DE'])), eea)!.routes.map((r) => r.provider)).toEqual(['de']);
  });

  it('returns null when no route is left', () => {
    expect(routesWithinPolicy(entry(route('us', ['US']), route('ch', ['CH'])), eea)).toBeNull();
  });
});

describe('the refusal message', () => {
  it('names the policy by its label, or by its countries, and the model', () => {
    expect(policyName(eea)).toBe('EEA');
    expect(policyName({ allowed: new Set(['FR', 'DE']), label: null })).toBe('DE, FR');
    const m = regionPolicyMessage({ allowed: new Set(['FR', 'DE']), label: null }, 'model-a');
    expect(m).toContain('region policy (DE, FR)');
    expect(m).toContain('`model-a`');
  });
});

describe('parseAllow', () => {
  it('expands a named region and keeps it as the label', () => {
    expect(parseAllow('EEA')).toEqual({ allowedCountries: [...EEA_COUNTRIES].sort(), label: 'EEA' });
    const withCh = parseAllow(' eea , ch ');
    expect(withCh.label).toBe('EEA,CH');
    expect(withCh.allowedCountries).toContain('CH');
    expect(withCh.allowedCountries).toHaveLength(EEA_COUNTRIES.length + 1);
  });

  it('sorts and deduplicates a list of countries, without a label', () => {
    expect(parseAllow('FR,DE,fr')).toEqual({ allowedCountries: ['DE', 'FR'], label: null });
    expect(parseAllow(['IE', 'DE'])).toEqual({ allowedCountries: ['DE', 'IE'], label: null });
  });

  it('refuses entries that are neither a country code nor a named region, and empty or oversized sets', () => {
    for (const bad of ['DEU', 'D1', 'EEA;DROP', '<b>', 'Europe', 'D E']) expect(() => parseAllow(bad), bad).toThrow(ValidationError);
    for (const empty of ['', ' , ', []]) expect(() => parseAllow(empty)).toThrow(/at least one country/);
    const many = Array.from({ length: 26 * 3 }, (_, i) => `${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + Math.floor(i / 26))}`);
    expect(() => parseAllow(many.join(','))).toThrow(/at most 60/);
  });
});

describe('the routing table', () => {
  it("carries each route's provider countries, and none for a provider without a register entry", async () => {
    const rows: RoutingRows = {
      models: [{ id: 'm1', public_name: 'model-a', upstream_model: 'up', created_at: new Date(0), provider: 'us', base_url: 'http://x/v1', api_key_env: null, kind: 'openai', countries: ['US'] }],
      fallbacks: [
        { model_id: 'm1', upstream_model: 'up', provider: 'de', base_url: 'http://y/v1', api_key_env: null, kind: 'openai', countries: ['DE'] },
        { model_id: 'm1', upstream_model: 'up', provider: 'none', base_url: 'http://z/v1', api_key_env: null, kind: 'openai', countries: null },
      ],
      prices: [],
    };
    const table = new RoutingTable(async () => rows, 60_000, createLogger({ logLevel: 'silent' }, 'test'));
    await table.refresh();
    expect(table.get('model-a')!.routes.map((r) => [r.provider, r.countries])).toEqual([
      ['us', ['US']],
      ['de', ['DE']],
      ['none', []],
    ]);
  });
});
