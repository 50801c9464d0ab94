import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * The prepaid-credit ledger.
 *
 * ledger_entries is append-only (a trigger refuses UPDATE and DELETE): a
 * mistake is corrected by a reversing entry. Each entry moves `amount`
 * between the customer account and a named contra account (cash, revenue,
 * promotions, adjustments), so the books balance by construction; contra
 * balances are sums of entries. account_balances is updated in the same
 * transaction as each entry, under a row lock, and always equals the sum of
 * the account's entries. `held` is the sum of open balance holds (reserved
 * for requests in flight at the gateway).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('account_balances', (t) => {
    t.uuid('account_id').primary().references('accounts.id');
    t.decimal('balance', 24, 12).notNullable().defaultTo(0);
    t.decimal('held', 24, 12).notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE account_balances ADD CONSTRAINT account_balances_held_non_negative CHECK (held >= 0)`);

  await knex.schema.createTable('ledger_entries', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('account_id').notNullable().references('accounts.id');
    t.text('kind').notNullable();
    t.text('contra').notNullable();
    // Signed: positive credits the customer, negative debits.
    t.decimal('amount', 24, 12).notNullable();
    t.text('idempotency_key').notNullable().unique();
    t.text('reference_type').notNullable();
    t.text('reference_id').notNullable();
    t.text('actor').notNullable();
    t.text('reason').nullable();
    t.bigInteger('reverses_entry_id').nullable().unique().references('ledger_entries.id');
    t.decimal('balance_after', 24, 12).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['account_id', 'id']);
    t.index(['reference_type', 'reference_id']);
  });
  await knex.raw(checkIn('ledger_entries', 'kind', ['topup', 'grant', 'usage', 'refund', 'adjustment', 'reversal']));
  await knex.raw(checkIn('ledger_entries', 'contra', ['cash', 'revenue', 'promotions', 'adjustments']));
  await knex.raw(`
    CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger_entries is append-only: correct an entry with a reversal'
        USING ERRCODE = 'restrict_violation';
    END $$`);
  await knex.raw(`
    CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()`);

  // Reservations against spendable balance, taken by gateway instances in slices.
  await knex.schema.createTable('balance_holds', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('account_id').notNullable().references('accounts.id');
    t.decimal('amount', 24, 12).notNullable();
    t.decimal('settled', 24, 12).notNullable().defaultTo(0);
    t.text('status').notNullable().defaultTo('open');
    t.text('holder').notNullable(); // gateway instance id
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('closed_at', { useTz: true }).nullable();
    t.index(['account_id', 'status']);
    t.index(['status', 'expires_at']);
  });
  await knex.raw(checkIn('balance_holds', 'status', ['open', 'closed']));
  await knex.raw(`ALTER TABLE balance_holds ADD CONSTRAINT balance_holds_amounts CHECK (amount >= 0 AND settled >= 0 AND settled <= amount)`);

  await knex.schema.createTable('payments', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('provider').notNullable();
    t.text('provider_payment_id').notNullable();
    t.uuid('account_id').notNullable().references('accounts.id');
    t.decimal('amount', 24, 12).notNullable();
    t.string('currency', 3).notNullable();
    t.text('status').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['provider', 'provider_payment_id']);
  });
  await knex.raw(`ALTER TABLE payments ADD CONSTRAINT payments_amount_positive CHECK (amount > 0)`);

  await knex.schema.createTable('usage_hourly', (t) => {
    t.uuid('account_id').notNullable().references('accounts.id');
    t.timestamp('hour', { useTz: true }).notNullable();
    t.text('model').notNullable(); // '' for requests refused before a model was known
    t.text('provider').notNullable();
    t.text('price_id').notNullable(); // '' when no price applied
    t.integer('requests').notNullable();
    t.bigInteger('input_tokens').notNullable();
    t.bigInteger('cache_read_tokens').notNullable();
    t.bigInteger('cache_write_tokens').notNullable();
    t.bigInteger('output_tokens').notNullable();
    t.bigInteger('reasoning_tokens').notNullable();
    t.decimal('cost', 24, 12).notNullable();
    t.primary(['account_id', 'hour', 'model', 'provider', 'price_id']);
  });

  await knex.raw(`ALTER TABLE usage_events ADD COLUMN hold_id uuid NULL, ADD COLUMN settlement_key text NULL`);
  // Every account gets its balance row with the account.
  await knex.raw(`INSERT INTO account_balances (account_id) SELECT id FROM accounts ON CONFLICT DO NOTHING`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE usage_events DROP COLUMN hold_id, DROP COLUMN settlement_key`);
  await knex.schema.dropTable('usage_hourly');
  await knex.schema.dropTable('payments');
  await knex.schema.dropTable('balance_holds');
  await knex.raw('DROP TABLE ledger_entries');
  await knex.raw('DROP FUNCTION ledger_entries_append_only()');
  await knex.schema.dropTable('account_balances');
}
