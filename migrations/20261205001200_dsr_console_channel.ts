import type { Knex } from 'knex';
import { checkIn } from './ddl';

/**
 * dsr_requests.channel gains 'console' (issue 26): a request a signed-in user
 * filed in the customer console (verification_method 'console_sign_in'). Those
 * were stored as 'subject' until now; they are moved over, so a channel says
 * how every request came in. A console request is not a public-form request:
 * the public intake's per-minute cap (channel 'subject') no longer counts it.
 */
const CHANNELS = ['staff', 'subject'];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_channel_check`);
  await knex.raw(checkIn('dsr_requests', 'channel', [...CHANNELS, 'console']));
  await knex.raw(`UPDATE dsr_requests SET channel = 'console' WHERE channel = 'subject' AND verification_method = 'console_sign_in'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`UPDATE dsr_requests SET channel = 'subject' WHERE channel = 'console'`);
  await knex.raw(`ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_channel_check`);
  await knex.raw(checkIn('dsr_requests', 'channel', CHANNELS));
}
