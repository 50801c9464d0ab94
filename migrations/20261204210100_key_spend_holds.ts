import type { Knex } from 'knex';

/**
 * Per-key spend limits (issue 22): a balance hold taken for a key with a limit
 * names the key, so the gate can add what the key has reserved but not yet
 * settled to its settled spend in the window (usage_daily_keys) when it decides
 * whether the key may reserve more (acquireKeyHold in src/ledger/holds.data.ts).
 *
 * The index holds only the key holds that still reserve something (amount >
 * settled): that sum is read under the key's lock on every slice a limited key
 * takes, and must not grow with the key's history of closed, settled holds.
 * Its predicate names `settled`, so settlement's updates of a hold are no
 * longer HOT updates; holds are few (one per slice, not per request), so that
 * costs little.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE balance_holds ADD COLUMN api_key_id uuid NULL REFERENCES api_keys(id)`);
  await knex.raw(`CREATE INDEX balance_holds_key_unsettled ON balance_holds (api_key_id) WHERE api_key_id IS NOT NULL AND amount > settled`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX balance_holds_key_unsettled`);
  await knex.raw(`ALTER TABLE balance_holds DROP COLUMN api_key_id`);
}
