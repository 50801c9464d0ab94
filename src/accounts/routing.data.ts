import type { DbOrTrx } from '../db/knex';

export interface ProviderRow {
  id: string;
  name: string;
  base_url: string;
  api_key_env: string | null;
  kind: 'openai' | 'anthropic';
  created_at: Date;
}

export interface ModelRow {
  id: string;
  public_name: string;
  provider_id: string;
  upstream_model: string;
  active: boolean;
  created_at: Date;
}

export interface PriceRow {
  id: string;
  model_id: string;
  currency: string;
  input_per_mtok: string;
  cached_input_per_mtok: string | null;
  output_per_mtok: string;
  /** Five-minute and one-hour prompt-cache writes; null: the input price. */
  cache_write_per_mtok?: string | null;
  cache_write_1h_per_mtok?: string | null;
  effective_from: Date;
  created_at: Date;
}

export function routingRepo(db: DbOrTrx) {
  return {
    async insertProvider(
      p: Pick<ProviderRow, 'name' | 'base_url'> & Partial<Pick<ProviderRow, 'api_key_env' | 'kind'>>,
      trx: DbOrTrx = db,
    ): Promise<ProviderRow> {
      const [row] = await trx<ProviderRow>('providers').insert(p).returning('*');
      return row!;
    },
    async findProviderByName(name: string, trx: DbOrTrx = db): Promise<ProviderRow | undefined> {
      return trx<ProviderRow>('providers').where({ name }).first();
    },
    /** A page of providers by name; `after` is the last name of the previous page. */
    async listProviders(page: { limit: number; after?: string }, trx: DbOrTrx = db): Promise<ProviderRow[]> {
      const q = trx<ProviderRow>('providers').orderBy('name').limit(page.limit);
      if (page.after) q.where('name', '>', page.after);
      return q;
    },
    async providerName(id: string, trx: DbOrTrx = db): Promise<string> {
      const provider = (await trx('providers').where('id', id).first('name')) as { name: string };
      return provider.name;
    },
    /** Serialises concurrent changes to one model name until `trx` ends. */
    async lockModelName(publicName: string, trx: DbOrTrx): Promise<void> {
      await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`model:${publicName}`]);
    },
    async findModelByName(publicName: string, trx: DbOrTrx = db): Promise<ModelRow | undefined> {
      return trx<ModelRow>('models').where({ public_name: publicName }).first();
    },
    async insertModel(
      m: Pick<ModelRow, 'public_name' | 'provider_id' | 'upstream_model'>,
      trx: DbOrTrx = db,
    ): Promise<ModelRow> {
      const [row] = await trx<ModelRow>('models').insert(m).returning('*');
      return row!;
    },
    async insertPrice(
      p: Pick<PriceRow, 'model_id' | 'input_per_mtok' | 'output_per_mtok' | 'effective_from'> &
        Partial<Pick<PriceRow, 'cached_input_per_mtok' | 'currency'>>,
      trx: DbOrTrx = db,
    ): Promise<PriceRow> {
      const [row] = await trx<PriceRow>('prices').insert(p).returning('*');
      return row!;
    },
    async findPrice(modelId: string, effectiveFrom: Date, trx: DbOrTrx = db): Promise<PriceRow | undefined> {
      return trx<PriceRow>('prices').where({ model_id: modelId, effective_from: effectiveFrom }).first();
    },
    /** The price in force at `at`: the latest one whose effective_from is not after it. */
    async priceInForce(modelId: string, at: Date, trx: DbOrTrx = db): Promise<PriceRow | undefined> {
      return trx<PriceRow>('prices')
        .where({ model_id: modelId })
        .where('effective_from', '<=', at)
        .orderBy('effective_from', 'desc')
        .first();
    },
    async pricesForModel(modelId: string, trx: DbOrTrx = db): Promise<PriceRow[]> {
      return trx<PriceRow>('prices').where({ model_id: modelId }).orderBy('effective_from');
    },
    /** A model's fallback routes in order, by provider name. */
    async fallbacksForModel(modelId: string, trx: DbOrTrx = db): Promise<{ provider: string; upstreamModel: string }[]> {
      return trx('model_fallbacks')
        .join('providers', 'providers.id', 'model_fallbacks.provider_id')
        .where('model_fallbacks.model_id', modelId)
        .orderBy('position')
        .select('providers.name as provider', 'model_fallbacks.upstream_model as upstreamModel');
    },
    /** Replaces all of a model's fallback routes. */
    async replaceFallbacks(
      modelId: string,
      rows: { model_id: string; position: number; provider_id: string; upstream_model: string }[],
      trx: DbOrTrx = db,
    ): Promise<void> {
      await trx('model_fallbacks').where({ model_id: modelId }).delete();
      if (rows.length) await trx('model_fallbacks').insert(rows);
    },
    /** A page of models by public name; `after` is the last name of the previous page. */
    async listModels(page: { limit: number; after?: string }, trx: DbOrTrx = db): Promise<(ModelRow & { provider_name: string })[]> {
      const q = trx('models')
        .join('providers', 'providers.id', 'models.provider_id')
        .select('models.*', 'providers.name as provider_name')
        .orderBy('models.public_name')
        .limit(page.limit);
      if (page.after) q.where('models.public_name', '>', page.after);
      return q;
    },
  };
}
