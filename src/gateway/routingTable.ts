import { PROVIDER_KEY_ENV } from '../config';
import type { Logger } from '../logger';

/** One way to serve a public model: a provider and the provider's name for the model. */
export interface Route {
  provider: string;
  baseUrl: string;
  /** Name of the PROVIDER_*_API_KEY variable holding the provider's credential (null: none); its value is never stored or logged. */
  apiKeyEnv: string | null;
  kind: 'openai' | 'anthropic';
  upstreamModel: string;
  /**
   * The provider's countries of processing, from its register entry (recipients.countries); empty
   * without one, and then the route is outside every region policy (regionRefusal.ts). Absent: none.
   */
  countries?: readonly string[];
  /**
   * The provider has a register entry (a recipients row). Accounts with a data-processing agreement
   * use only such providers (subprocessorRefusal.ts). Absent: none.
   */
  registered?: boolean;
  /**
   * performance.now() before the refresh that first saw the provider's register entry as it is (or its
   * absence): a caller whose sub-processor holds were loaded before it may not know of the notices the
   * change brought, so an account with an agreement leaves the route alone until its key is reloaded
   * (subprocessorRefusal.ts). Absent: 0.
   */
  registerSince?: number;
}

export interface PriceVersion {
  id: string;
  effectiveFrom: number;
  currency: string;
  inputPerMtok: string;
  cachedInputPerMtok: string | null;
  outputPerMtok: string;
  /** Five-minute cache writes; null: the input price. */
  cacheWritePerMtok: string | null;
  /** One-hour cache writes; null: the input price. */
  cacheWrite1hPerMtok: string | null;
}

export interface ModelEntry {
  name: string;
  createdAt: number;
  /** Primary route first, then the fallbacks in order. */
  routes: Route[];
  /** Oldest first. */
  prices: PriceVersion[];
}

/** The rows a refresh reads (src/gateway/routing.data.ts), as PostgreSQL returns them. */
export interface RoutingRows {
  models: { id: string; public_name: string; upstream_model: string; created_at: Date; provider: string; base_url: string; api_key_env: string | null; kind: Route['kind']; countries?: string[] | null; registered?: boolean | null }[];
  fallbacks: { model_id: string; upstream_model: string; provider: string; base_url: string; api_key_env: string | null; kind: Route['kind']; countries?: string[] | null; registered?: boolean | null }[];
  prices: {
    id: string;
    model_id: string;
    currency: string;
    input_per_mtok: string;
    cached_input_per_mtok: string | null;
    output_per_mtok: string;
    cache_write_per_mtok?: string | null;
    cache_write_1h_per_mtok?: string | null;
    effective_from: Date;
  }[];
}

/**
 * The routing table: public model name -> routes and price history, loaded
 * from PostgreSQL and refreshed in the background. A failed refresh keeps the
 * last good table, so a database blip does not stop forwarding.
 */
export class RoutingTable {
  private models = new Map<string, ModelEntry>();
  private timer: NodeJS.Timeout | undefined;
  private loaded = false;
  /** Providers whose row names a variable of another form, already warned about. */
  private readonly badKeyEnvWarned = new Set<string>();
  /** Per provider: its register facts (entry or none, countries) as last seen, and since when (Route.registerSince). */
  private readonly registerSeen = new Map<string, { facts: string; since: number }>();

  constructor(
    private readonly loadRows: () => Promise<RoutingRows>,
    private readonly refreshMs: number,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.logger.warn({ err }, 'routing table not loaded yet; retrying in the background');
    }
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.logger.warn({ err }, 'routing table refresh failed; keeping the last one'));
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  isLoaded(): boolean {
    return this.loaded;
  }

  get(name: string): ModelEntry | undefined {
    return this.models.get(name);
  }

  list(): ModelEntry[] {
    return [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The price in force at `at` (ms), or undefined when the model had none yet. */
  static priceAt(entry: ModelEntry, at: number): PriceVersion | undefined {
    let found: PriceVersion | undefined;
    for (const p of entry.prices) {
      if (p.effectiveFrom <= at) found = p;
      else break;
    }
    return found;
  }

  async refresh(): Promise<void> {
    // Before the query: a register change this refresh sees committed before this instant.
    const started = performance.now();
    const { models, fallbacks, prices } = await this.loadRows();
    const registerSince = (provider: string, registered: boolean, countries: readonly string[]): number => {
      const facts = registered ? `entry:${countries.join(',')}` : 'none';
      const seen = this.registerSeen.get(provider);
      if (seen?.facts === facts) return seen.since;
      this.registerSeen.set(provider, { facts, since: started });
      return started;
    };
    // A row from before the PROVIDER_*_API_KEY rule (or written around the admin API) gets no credential.
    const keyEnv = (provider: string, name: string | null): string | null => {
      if (name === null || PROVIDER_KEY_ENV.test(name)) return name;
      if (!this.badKeyEnvWarned.has(provider)) {
        this.badKeyEnvWarned.add(provider);
        this.logger.warn({ provider }, 'provider api_key_env is not a PROVIDER_<NAME>_API_KEY variable; calls to it go without a credential');
      }
      return null;
    };
    const next = new Map<string, ModelEntry>();
    const byId = new Map<string, ModelEntry>();
    for (const m of models) {
      const entry: ModelEntry = {
        name: m.public_name,
        createdAt: new Date(m.created_at).getTime(),
        routes: [{ provider: m.provider, baseUrl: m.base_url, apiKeyEnv: keyEnv(m.provider, m.api_key_env), kind: m.kind, upstreamModel: m.upstream_model, countries: m.countries ?? [], registered: m.registered === true,
          registerSince: registerSince(m.provider, m.registered === true, m.countries ?? []) }],
        prices: [],
      };
      next.set(entry.name, entry);
      byId.set(m.id, entry);
    }
    for (const f of fallbacks) {
      byId.get(f.model_id)?.routes.push({
        provider: f.provider, baseUrl: f.base_url, apiKeyEnv: keyEnv(f.provider, f.api_key_env), kind: f.kind, upstreamModel: f.upstream_model, countries: f.countries ?? [], registered: f.registered === true,
        registerSince: registerSince(f.provider, f.registered === true, f.countries ?? []),
      });
    }
    for (const p of prices) {
      byId.get(p.model_id)?.prices.push({
        id: p.id,
        effectiveFrom: new Date(p.effective_from).getTime(),
        currency: p.currency,
        inputPerMtok: p.input_per_mtok,
        cachedInputPerMtok: p.cached_input_per_mtok,
        outputPerMtok: p.output_per_mtok,
        cacheWritePerMtok: p.cache_write_per_mtok ?? null,
        cacheWrite1hPerMtok: p.cache_write_1h_per_mtok ?? null,
      });
    }
    this.models = next;
    this.loaded = true;
  }
}
