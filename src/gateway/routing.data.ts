import type { Db } from '../db/knex';
import type { RoutingRows } from './routingTable';

/**
 * Everything the routing table holds, read at once: active models with their provider, fallbacks in order, all prices.
 * Each provider comes with its countries of processing from its register entry (null without one), so a region
 * policy is decided against the table with no query per request; `registered` says whether it has an entry at
 * all (accounts with a data-processing agreement use only providers that have one, subprocessorRefusal.ts).
 */
export async function loadRoutingRows(db: Db): Promise<RoutingRows> {
  const [models, fallbacks, prices] = await Promise.all([
    db('models')
      .join('providers', 'providers.id', 'models.provider_id')
      .leftJoin('recipients', 'recipients.provider_id', 'providers.id')
      .where('models.active', true)
      .select('models.id', 'models.public_name', 'models.upstream_model', 'models.created_at', 'providers.name as provider', 'providers.base_url', 'providers.api_key_env', 'providers.kind', 'recipients.countries', db.raw('recipients.id IS NOT NULL AS registered')),
    db('model_fallbacks')
      .join('providers', 'providers.id', 'model_fallbacks.provider_id')
      .leftJoin('recipients', 'recipients.provider_id', 'providers.id')
      .orderBy(['model_fallbacks.model_id', 'model_fallbacks.position'])
      .select('model_fallbacks.model_id', 'model_fallbacks.upstream_model', 'providers.name as provider', 'providers.base_url', 'providers.api_key_env', 'providers.kind', 'recipients.countries', db.raw('recipients.id IS NOT NULL AS registered')),
    db('prices').orderBy(['model_id', 'effective_from']).select('*'),
  ]);
  return { models, fallbacks, prices };
}
