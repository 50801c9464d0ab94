import { issueSecret } from '../auth/secrets';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors';
import { Money, toAmountString } from '../shared/money.rules';
import { validate } from '../shared/validate';
import { apiKeysRepo, type ApiKeyChanges, type ApiKeyRow } from './apiKeys.data';
import { keySettingsProblems } from './keySettings.rules';
import {
  clientCreateKeyInput,
  clientListKeysInput,
  clientUpdateKeyInput,
  MAX_ACTIVE_KEYS_PER_ACCOUNT,
  MAX_KEY_LIFETIME_MS,
} from './keys.schemas';

/**
 * Key management by an account itself, through its management key (/v1/keys on
 * the gateway). Staff manage keys through the accounts service; both write
 * through the same data functions (apiKeys.data.ts).
 *
 * Who may do what:
 * - only a management key (or a console member, kind `member`, whose role the
 *   customer console checked) may call any of these; an inference key is refused
 *   (it sees only itself, through GET /v1/key);
 * - a management key creates, changes and revokes the account's inference keys,
 *   and lists and reads all of its keys;
 * - management keys are created, changed and revoked by staff only, so a leaked
 *   management key cannot mint more of itself that would outlive its revocation;
 * - another account's key is not found (404), never forbidden, so its ids leak nothing.
 */

export type KeyActor =
  | { accountId: string; apiKeyId: string; kind: 'inference' | 'management' }
  /** A member of the account in the customer console (/app/keys), whose role the console has checked: may what a management key may. */
  | { accountId: string; userId: string; kind: 'member' };

/** The error codes callers see (in `details.code`); the gateway puts them in OpenAI's `code`. */
export const KEY_ERRORS = {
  managementKeyRequired: 'management_key_required',
  managedByStaff: 'management_key_managed_by_staff',
  tooManyKeys: 'too_many_keys',
  keyNotFound: 'key_not_found',
  revoked: 'key_revoked',
} as const;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** What the account sees of a key: metadata only; the secret is in the create answer and nowhere else. */
export function clientKeyView(k: ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    /** The display prefix, under OpenRouter's name for it (as GET /v1/key has it). */
    label: k.prefix,
    prefix: k.prefix,
    kind: k.kind,
    disabled: k.revoked_at !== null,
    created_at: iso(k.created_at),
    revoked_at: iso(k.revoked_at),
    expires_at: iso(k.expires_at),
    rate_limit_rpm: k.rate_limit_rpm,
    limit: k.spend_limit === null ? null : toAmountString(new Money(k.spend_limit)),
    limit_reset: k.limit_window,
    limit_alert_percents: k.limit_alert_percents,
  };
}
export type ClientKeyView = ReturnType<typeof clientKeyView>;

/** The staff tools' names of the fields (the client API's are the rules' own). */
export const STAFF_KEY_FIELDS = { limit: 'spendLimit', limit_reset: 'limitWindow', expires_at: 'expiresAt' } as const;

/** Throws a ValidationError for settings that do not hold together, naming the fields as the caller named them. */
export function checkKeySettings(
  s: { spendLimit: string | null; limitWindow: string | null; expiresAt: Date | null },
  now: Date,
  names?: Record<'limit' | 'limit_reset' | 'expires_at', string>,
): void {
  const problems = keySettingsProblems(s, now, MAX_KEY_LIFETIME_MS).map((p) => {
    const field = names ? names[p.field] : p.field;
    return { field, message: names ? p.message.replaceAll(/\b(limit_reset|limit|expires_at)\b/g, (f) => names[f as keyof typeof names]) : p.message };
  });
  if (problems.length) throw new ValidationError(`invalid input: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, problems);
}

export function keysService({ db, clock }: { db: Db; clock: Clock }) {
  const apiKeys = apiKeysRepo(db);

  function requireManagement(actor: KeyActor) {
    if (actor.kind === 'inference') {
      throw new ForbiddenError('Only a management key may manage keys; an inference key can read itself at GET /v1/key.', {
        code: KEY_ERRORS.managementKeyRequired,
      });
    }
  }

  async function requireKey(actor: KeyActor, id: string): Promise<ApiKeyRow> {
    // Not a UUID: no key of anyone's, answered as any other unknown id.
    const row = UUID.test(id) ? await apiKeys.findInAccount(actor.accountId, id) : undefined;
    if (!row) throw new NotFoundError(`No API key ${id.slice(0, 64)} in this account.`, { code: KEY_ERRORS.keyNotFound });
    return row;
  }

  function requireInference(row: ApiKeyRow) {
    if (row.kind === 'management') {
      throw new ForbiddenError('Management keys are created, changed and revoked by MixRoute staff only; ask support.', {
        code: KEY_ERRORS.managedByStaff,
      });
    }
  }

  return {
    /** Returns the key's metadata and, this once, its secret. */
    async create(actor: KeyActor, raw: unknown): Promise<{ data: ClientKeyView; key: string }> {
      requireManagement(actor);
      const input = validate(clientCreateKeyInput, raw ?? {});
      if (input.kind === 'management') {
        throw new ForbiddenError('A management key creates inference keys only; management keys are created by MixRoute staff.', {
          code: KEY_ERRORS.managedByStaff,
        });
      }
      const settings = {
        spendLimit: input.limit ?? null,
        limitWindow: input.limit_reset ?? null,
        expiresAt: input.expires_at ? new Date(input.expires_at) : null,
      };
      checkKeySettings(settings, clock.now());
      const issued = issueSecret('api_key');
      const row = await db.transaction(async (trx) => {
        await apiKeys.lockAccountKeys(actor.accountId, trx);
        if ((await apiKeys.countActiveByAccount(actor.accountId, trx)) >= MAX_ACTIVE_KEYS_PER_ACCOUNT) {
          throw new ConflictError(`This account already has ${MAX_ACTIVE_KEYS_PER_ACCOUNT} active keys; revoke unused ones first.`, {
            code: KEY_ERRORS.tooManyKeys,
          });
        }
        return apiKeys.insert(
          {
            account_id: actor.accountId,
            name: input.name,
            kind: 'inference',
            rate_limit_rpm: input.rate_limit_rpm ?? null,
            spend_limit: settings.spendLimit,
            limit_window: settings.limitWindow,
            expires_at: settings.expiresAt,
            ...(input.limit_alert_percents ? { limit_alert_percents: input.limit_alert_percents } : {}),
            key_hash: issued.hash,
            prefix: issued.displayPrefix,
          },
          trx,
        );
      });
      return { data: clientKeyView(row), key: issued.secret };
    },

    /** A page of the account's keys (revoked ones too, marked disabled) in creation order. */
    async list(actor: KeyActor, raw: unknown) {
      requireManagement(actor);
      const { limit, after } = validate(clientListKeysInput, raw ?? {});
      let rows: ApiKeyRow[];
      try {
        rows = await apiKeys.listByAccount(actor.accountId, { limit: limit + 1, ...(after ? { after } : {}) });
      } catch (err) {
        // The cursor names no key of this account (perhaps another's): as unknown as any other id.
        if (err instanceof ValidationError) throw new ValidationError('after: no such key in this account', err.fieldErrors);
        throw err;
      }
      const page = rows.slice(0, limit).map(clientKeyView);
      return { object: 'list' as const, data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: rows.length > limit };
    },

    async get(actor: KeyActor, id: string) {
      requireManagement(actor);
      return { data: clientKeyView(await requireKey(actor, id)) };
    },

    /** Changes an inference key; `disabled: true` revokes it (the same as DELETE). */
    async update(actor: KeyActor, id: string, raw: unknown) {
      requireManagement(actor);
      const input = validate(clientUpdateKeyInput, raw ?? {});
      const row = await requireKey(actor, id);
      requireInference(row);
      if (input.disabled === false) {
        throw new ValidationError('invalid input: disabled: a revoked key is never enabled again; create a new key', [
          { field: 'disabled', message: 'a revoked key is never enabled again; create a new key' },
        ]);
      }
      const { disabled, ...rest } = input;
      if (row.revoked_at) {
        // Revoked keys keep their last settings: they no longer authenticate, so a change would only mislead.
        if (Object.keys(rest).length > 0) throw new ConflictError(`API key ${id} is revoked and cannot be changed.`, { code: KEY_ERRORS.revoked });
        return { data: clientKeyView(row) };
      }
      const changes: ApiKeyChanges = {};
      if (rest.name !== undefined) changes.name = rest.name;
      if (rest.rate_limit_rpm !== undefined) changes.rate_limit_rpm = rest.rate_limit_rpm;
      if (rest.limit !== undefined) changes.spend_limit = rest.limit;
      if (rest.limit_reset !== undefined) changes.limit_window = rest.limit_reset;
      if (rest.expires_at !== undefined) changes.expires_at = rest.expires_at === null ? null : new Date(rest.expires_at);
      if (rest.limit_alert_percents !== undefined) changes.limit_alert_percents = rest.limit_alert_percents;
      const now = clock.now();
      checkKeySettings(
        {
          spendLimit: changes.spend_limit !== undefined ? changes.spend_limit : row.spend_limit,
          limitWindow: changes.limit_window !== undefined ? changes.limit_window : row.limit_window,
          // Only a new expiry must lie ahead; an unchanged one is checked by authentication.
          expiresAt: changes.expires_at !== undefined ? changes.expires_at : null,
        },
        now,
      );
      let updated = row;
      if (Object.keys(changes).length > 0) {
        const after = await apiKeys.update(actor.accountId, id, changes);
        // Revoked between the read and the write: what is on file now is the answer.
        updated = after ?? (await requireKey(actor, id));
      }
      if (disabled) updated = (await apiKeys.revoke(id, now))!;
      return { data: clientKeyView(updated) };
    },

    /** Revokes an inference key; idempotent (a revoked key keeps its first revocation time). */
    async revoke(actor: KeyActor, id: string) {
      requireManagement(actor);
      const row = await requireKey(actor, id);
      requireInference(row);
      const revoked = (await apiKeys.revoke(row.id, clock.now()))!;
      return { deleted: true as const, data: clientKeyView(revoked) };
    },
  };
}

export type KeysService = ReturnType<typeof keysService>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
