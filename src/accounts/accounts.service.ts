import { issueSecret } from '../auth/secrets';
import type { Clock } from '../clock';
import { accountsRepo } from './accounts.data';
import { apiKeysRepo } from './apiKeys.data';
import type { Db, Trx } from '../db/knex';
import { routingRepo, type ModelRow } from './routing.data';
import { usersRepo } from './users.data';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { parseAmount } from '../shared/money.rules';
import { providerKeyEnvName, type Config } from '../config';
import { canonicalAddress, upstreamAddressPolicy } from '../shared/upstreamAddressPolicy';
import {
  addModelInput,
  addPriceInput,
  addProviderInput,
  createAccountInput,
  createKeyInput,
  createUserInput,
  idInput,
  listInput,
  listKeysInput,
  pageInput,
  setFallbacksInput,
} from '../staff/schemas';
import { validate } from '../shared/validate';
import { updateAccountDetailsInput } from './accountDetails.schemas';
import { recordAccountEvent } from '../notifications/events.data';

/** The billing details' columns and the names their change is reported by. */
const DETAIL_FIELDS = [
  ['name', 'name'],
  ['vat_id', 'vatId'],
  ['billing_email', 'billingEmail'],
  ['country', 'country'],
] as const;
import { accountView, apiKeyView, modelView, priceView, providerView, userView } from './accounts.views.service';
import { checkKeySettings, STAFF_KEY_FIELDS } from './keys.service';

/**
 * The accounts service (accounts, users, API keys, providers, models and their
 * prices, staff tokens): the one implementation behind the CLI verbs, the admin
 * API routes and the console. Each validates its raw input, so callers pass what
 * they got.
 */

const UNIQUE_VIOLATION = '23505';
const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === UNIQUE_VIOLATION;

function sameOptionalAmount(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  return parseAmount(a).eq(b);
}

export interface AccountsDeps {
  db: Db;
  clock: Clock;
  /**
   * The upstream address allowlist, to refuse a provider whose base URL is a
   * literal address the gateway would refuse anyway. Absent (tests and tools
   * in-process), no such early check; the gateway checks every connection.
   */
  config?: Pick<Config, 'upstream'>;
}

export function accountsService({ db, clock, config }: AccountsDeps) {
  const upstreamPolicy = config ? upstreamAddressPolicy(config.upstream.allowedHosts) : null;
  const accounts = accountsRepo(db);
  const users = usersRepo(db);
  const apiKeys = apiKeysRepo(db);
  const routing = routingRepo(db);

  /** Adds a price version; the same price for the same time again is a no-op, a different one a conflict. */
  async function putPrice(
    trx: Trx,
    model: ModelRow,
    providerName: string,
    input: {
      name: string;
      inputPerMtok: string;
      outputPerMtok: string;
      cachedInputPerMtok?: string | undefined;
      cacheWritePerMtok?: string | undefined;
      cacheWrite1hPerMtok?: string | undefined;
      effectiveFrom?: string | undefined;
    },
  ) {
    const effectiveFrom = input.effectiveFrom ? new Date(input.effectiveFrom) : clock.now();
    const price = {
      input_per_mtok: parseAmount(input.inputPerMtok).toFixed(),
      output_per_mtok: parseAmount(input.outputPerMtok).toFixed(),
      cached_input_per_mtok: input.cachedInputPerMtok ? parseAmount(input.cachedInputPerMtok).toFixed() : null,
      cache_write_per_mtok: input.cacheWritePerMtok ? parseAmount(input.cacheWritePerMtok).toFixed() : null,
      cache_write_1h_per_mtok: input.cacheWrite1hPerMtok ? parseAmount(input.cacheWrite1hPerMtok).toFixed() : null,
    };
    const existing = await routing.findPrice(model.id, effectiveFrom, trx);
    if (existing) {
      const same =
        parseAmount(existing.input_per_mtok).eq(price.input_per_mtok) &&
        parseAmount(existing.output_per_mtok).eq(price.output_per_mtok) &&
        sameOptionalAmount(existing.cached_input_per_mtok, price.cached_input_per_mtok) &&
        sameOptionalAmount(existing.cache_write_per_mtok ?? null, price.cache_write_per_mtok) &&
        sameOptionalAmount(existing.cache_write_1h_per_mtok ?? null, price.cache_write_1h_per_mtok);
      if (!same) {
        throw new ConflictError(`model ${input.name} already has a different price effective from ${effectiveFrom.toISOString()}`);
      }
      return modelView(model, providerName, existing);
    }
    const row = await routing.insertPrice({ model_id: model.id, effective_from: effectiveFrom, ...price }, trx);
    return modelView(model, providerName, row);
  }

  async function requireAccount(id: string) {
    const account = await accounts.findById(id);
    if (!account) throw new NotFoundError(`account ${id} does not exist`);
    return account;
  }

  return {
    async createAccount(raw: unknown) {
      const input = validate(createAccountInput, raw);
      const row = await accounts.insert({
        name: input.name,
        plan: input.plan,
        country: input.country ?? null,
        vat_id: input.vatId ?? null,
        billing_email: input.billingEmail ?? null,
        ...(input.taxStatus ? { tax_status: input.taxStatus } : {}),
        credit_limit: parseAmount(input.creditLimit).toFixed(),
        currency: input.currency,
      });
      return accountView(row);
    },

    async getAccount(raw: unknown) {
      const { id } = validate(idInput, raw);
      return accountView(await requireAccount(id));
    },

    /**
     * Changes an account's billing details (updateAccountDetailsInput: the
     * fields of createAccount, optional ones clearable with null). The customer
     * console's Billing page calls it with the session's account.
     */
    async updateAccountDetails(raw: unknown, actor: string) {
      const { id, name, vatId, billingEmail, country } = validate(updateAccountDetailsInput, raw);
      const change = {
        ...(name !== undefined ? { name } : {}),
        ...(vatId !== undefined ? { vat_id: vatId } : {}),
        ...(billingEmail !== undefined ? { billing_email: billingEmail } : {}),
        ...(country !== undefined ? { country } : {}),
      };
      return db.transaction(async (trx) => {
        const before = await accounts.findById(id, trx);
        if (!before) throw new NotFoundError(`account ${id} does not exist`);
        const row = (await accounts.updateDetails(id, change, trx))!;
        // Who changed what (field names, never the values): the account's event, emailed to the billing address and sent to its webhooks.
        const fields = DETAIL_FIELDS.filter(([column]) => column in change && before[column] !== row[column]).map(([, field]) => field);
        if (fields.length) {
          await recordAccountEvent(trx, {
            accountId: id,
            type: 'account.details_changed',
            dedupeKey: `account-details:${id}:${new Date(row.updated_at).toISOString()}`,
            data: { fields: fields.join(', '), changedBy: actor },
          });
        }
        return accountView(row);
      });
    },

    async listAccounts(raw: unknown) {
      const input = validate(listInput, raw ?? {});
      return (await accounts.list(input)).map(accountView);
    },

    async createUser(raw: unknown) {
      const input = validate(createUserInput, raw);
      await requireAccount(input.accountId);
      try {
        const row = await users.insert({
          account_id: input.accountId,
          name: input.name,
          email: input.email,
          phone: input.phone ?? null,
          job_title: input.jobTitle ?? null,
        });
        return userView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw new ConflictError(`account ${input.accountId} already has a user with that email`);
        throw err;
      }
    },

    /** Returns the key once; only its hash and display prefix are stored. */
    async createKey(raw: unknown) {
      const input = validate(createKeyInput, raw);
      await requireAccount(input.accountId);
      if (input.userId) {
        const user = await users.findById(input.userId);
        if (!user || user.account_id !== input.accountId) {
          throw new NotFoundError(`user ${input.userId} does not exist in account ${input.accountId}`);
        }
      }
      const settings = {
        spendLimit: input.spendLimit ? parseAmount(input.spendLimit).toFixed() : null,
        limitWindow: input.limitWindow ?? null,
        expiresAt: input.expiresAt ? new Date(input.expiresAt) : null,
      };
      checkKeySettings(settings, clock.now(), STAFF_KEY_FIELDS);
      const issued = issueSecret('api_key');
      const row = await apiKeys.insert({
        account_id: input.accountId,
        user_id: input.userId ?? null,
        name: input.name ?? null,
        rate_limit_rpm: input.rateLimitRpm ?? null,
        kind: input.kind,
        expires_at: settings.expiresAt,
        spend_limit: settings.spendLimit,
        limit_window: settings.limitWindow,
        key_hash: issued.hash,
        prefix: issued.displayPrefix,
      });
      return { ...apiKeyView(row), key: issued.secret };
    },

    async listKeys(raw: unknown) {
      const { id, ...page } = validate(listKeysInput, raw);
      await requireAccount(id);
      return (await apiKeys.listByAccount(id, page)).map(apiKeyView);
    },

    /** Idempotent: revoking a revoked key keeps the first revocation time. */
    async revokeKey(raw: unknown) {
      const { id } = validate(idInput, raw);
      const row = await apiKeys.revoke(id, clock.now());
      if (!row) throw new NotFoundError(`API key ${id} does not exist`);
      return apiKeyView(row);
    },

    async addProvider(raw: unknown) {
      const input = validate(addProviderInput, raw);
      const host = new URL(input.baseUrl).hostname;
      if (upstreamPolicy && canonicalAddress(host) && !upstreamPolicy.allows(host, host)) {
        const message = 'baseUrl is a loopback, private, link-local or otherwise non-public address that UPSTREAM_ALLOWED_HOSTS does not name';
        throw new ValidationError(`invalid input: baseUrl: ${message}`, [{ field: 'baseUrl', message }]);
      }
      try {
        const row = await routing.insertProvider({
          name: input.name,
          base_url: input.baseUrl.replace(/\/+$/, ''),
          api_key_env: input.apiKeyEnv ?? providerKeyEnvName(input.name),
          kind: input.kind,
        });
        return providerView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw new ConflictError(`provider ${input.name} already exists`);
        throw err;
      }
    },

    async listProviders(raw: unknown = {}) {
      return (await routing.listProviders(validate(pageInput, raw ?? {}))).map(providerView);
    },

    /**
     * Adds a model with its price, or a new price version for an existing model
     * (price history is kept: invoices need the price in force at the time).
     * Re-adding the same price for the same time is a no-op; re-routing an
     * existing model to another provider is refused rather than done silently.
     * A new model is a new route for customers' traffic: on the admin API this
     * is admin-only, and billing staff use addPrice.
     */
    async addModel(raw: unknown) {
      const input = validate(addModelInput, raw);
      return db.transaction(async (trx) => {
        const provider = await routing.findProviderByName(input.provider, trx);
        if (!provider) throw new NotFoundError(`provider ${input.provider} does not exist; add it with 'mixroute providers add'`);
        // Serialise concurrent adds of the same model name.
        await routing.lockModelName(input.name, trx);
        let model = await routing.findModelByName(input.name, trx);
        if (model && (model.provider_id !== provider.id || model.upstream_model !== input.upstreamModel)) {
          throw new ConflictError(
            `model ${input.name} already routes to another provider or upstream model; routing changes are not made by 'models add'`,
          );
        }
        model ??= await routing.insertModel(
          { public_name: input.name, provider_id: provider.id, upstream_model: input.upstreamModel },
          trx,
        );
        return putPrice(trx, model, provider.name, input);
      });
    },

    /** A new price version of an existing model; its provider and route stay as they are. */
    async addPrice(raw: unknown) {
      const input = validate(addPriceInput, raw);
      return db.transaction(async (trx) => {
        await routing.lockModelName(input.name, trx);
        const model = await routing.findModelByName(input.name, trx);
        if (!model) throw new NotFoundError(`model ${input.name} does not exist; an admin adds it with its first price (POST /billing/models)`);
        return putPrice(trx, model, await routing.providerName(model.provider_id, trx), input);
      });
    },

    /**
     * Replaces a model's ordered fallback routes. The gateway tries them in
     * order when the primary fails before anything reached the client.
     */
    async setModelFallbacks(raw: unknown) {
      const input = validate(setFallbacksInput, raw);
      return db.transaction(async (trx) => {
        const model = await routing.findModelByName(input.name, trx);
        if (!model) throw new NotFoundError(`model ${input.name} does not exist`);
        const rows = [];
        for (const [i, r] of input.routes.entries()) {
          const provider = await routing.findProviderByName(r.provider, trx);
          if (!provider) throw new NotFoundError(`provider ${r.provider} does not exist`);
          rows.push({ model_id: model.id, position: i + 1, provider_id: provider.id, upstream_model: r.upstreamModel });
        }
        await routing.replaceFallbacks(model.id, rows, trx);
        return { name: model.public_name, fallbacks: input.routes };
      });
    },

    async listModels(raw: unknown = {}) {
      const now = clock.now();
      const models = await routing.listModels(validate(pageInput, raw ?? {}));
      return Promise.all(
        models.map(async (m) => {
          const price = await routing.priceInForce(m.id, now);
          const history = await routing.pricesForModel(m.id);
          const fallbacks = await routing.fallbacksForModel(m.id);
          return { ...modelView(m, m.provider_name, price), fallbacks, priceHistory: history.map(priceView) };
        }),
      );
    },
  };
}

export type AccountsService = ReturnType<typeof accountsService>;
