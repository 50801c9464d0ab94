import type { Knex } from 'knex';
import { checkIn } from './ddl';

/** Security events: metadata only (what happened, from where, which key id); never a presented secret. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('security_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('occurred_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('kind').notNullable();
    t.text('reason').notNullable();
    t.uuid('account_id').nullable();
    t.uuid('api_key_id').nullable();
    t.text('request_id').nullable();
    t.specificType('source_ip', 'inet').nullable();
    t.text('user_agent').nullable();
    t.text('source').notNullable(); // which process saw it: gateway, admin
    t.index(['occurred_at']);
    t.index(['account_id', 'occurred_at']);
  });
  await knex.raw(checkIn('security_events', 'kind', ['auth_failed', 'rate_limited', 'webhook_rejected', 'staff_auth_failed']));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('security_events');
}
