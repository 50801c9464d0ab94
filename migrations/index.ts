import type { Knex } from 'knex';
import * as m20261126120000 from './20261126120000_accounts_and_users';
import * as m20261126120100 from './20261126120100_api_keys';
import * as m20261126120200 from './20261126120200_routing_and_prices';
import * as m20261126120300 from './20261126120300_staff_tokens';
import * as m20261126130000 from './20261126130000_usage_events';
import * as m20261126130100 from './20261126130100_security_events';
import * as m20261126130200 from './20261126130200_model_fallbacks';
import * as m20261126140000 from './20261126140000_ledger';
import * as m20261126150000 from './20261126150000_invoices';
import * as m20261126160000 from './20261126160000_security_events_idempotent';
import * as m20261126170000 from './20261126170000_reconciliation';
import * as m20261126180000 from './20261126180000_data_subject_requests';
import * as m20261126190000 from './20261126190000_retention';
import * as m20261126200000 from './20261126200000_console';
import * as m20261126210000 from './20261126210000_billing_record_expiry';
import * as m20261126220000 from './20261126220000_usage_hourly_invoiced_by_unchecked';
import * as m20261126230000 from './20261126230000_usage_invoiced_boundary';
import * as m20261204170200 from './20261204170200_security_event_windows';
import * as m20261204170300 from './20261204170300_dsr_trust_boundaries';
import * as m20261204170400 from './20261204170400_console_sign_in_throttle';
import * as m20261204170500 from './20261204170500_metering_bigint_and_quarantine';
import * as m20261204170600 from './20261204170600_payment_reversals';
import * as m20261204180000 from './20261204180000_anthropic_cache_writes';
import * as m20261204210000 from './20261204210000_client_account_api';
import * as m20261204210100 from './20261204210100_key_spend_holds';
import * as m20261204210200 from './20261204210200_account_events';
import * as m20261204210300 from './20261204210300_webhooks';
import * as m20261204220000 from './20261204220000_invoice_payments';
import * as m20261204230000 from './20261204230000_dunning';
import * as m20261204231500 from './20261204231500_invoice_payments_check';
import * as m20261205000000 from './20261205000000_processing_register';
import * as m20261205000100 from './20261205000100_register_check';
import * as m20261205000200 from './20261205000200_processor_mode';
import * as m20261205000300 from './20261205000300_subprocessor_notices';
import * as m20261205000400 from './20261205000400_processor_forward_close';
import * as m20261205000500 from './20261205000500_activity_recipient_kinds';
import * as m20261205000600 from './20261205000600_customer_console';
import * as m20261205000700 from './20261205000700_checkout_sessions';
import * as m20261205000800 from './20261205000800_customer_sign_in_factors';
import * as m20261205000900 from './20261205000900_customer_members';
import * as m20261205001000 from './20261205001000_console_consent_analytics';
import * as m20261205001010 from './20261205001010_page_view_retention';
import * as m20261205001100 from './20261205001100_privacy_policy_versions';
import * as m20261205001200 from './20261205001200_dsr_console_channel';
import * as m20261205001300 from './20261205001300_account_details_event';

/**
 * Every migration, in order, imported statically. knex's directory loader would
 * `import()` .ts files itself, which works under tsx but not inside vitest or a
 * bundled build; a static list runs the same way everywhere and the recorded
 * names stay the file names. test/unit/migrations.test.ts fails if a file in
 * this folder is missing here.
 */
export const migrations: ReadonlyArray<readonly [name: string, migration: Knex.Migration]> = [
  ['20261126120000_accounts_and_users.ts', m20261126120000],
  ['20261126120100_api_keys.ts', m20261126120100],
  ['20261126120200_routing_and_prices.ts', m20261126120200],
  ['20261126120300_staff_tokens.ts', m20261126120300],
  ['20261126130000_usage_events.ts', m20261126130000],
  ['20261126130100_security_events.ts', m20261126130100],
  ['20261126130200_model_fallbacks.ts', m20261126130200],
  ['20261126140000_ledger.ts', m20261126140000],
  ['20261126150000_invoices.ts', m20261126150000],
  ['20261126160000_security_events_idempotent.ts', m20261126160000],
  ['20261126170000_reconciliation.ts', m20261126170000],
  ['20261126180000_data_subject_requests.ts', m20261126180000],
  ['20261126190000_retention.ts', m20261126190000],
  ['20261126200000_console.ts', m20261126200000],
  ['20261126210000_billing_record_expiry.ts', m20261126210000],
  ['20261126220000_usage_hourly_invoiced_by_unchecked.ts', m20261126220000],
  ['20261126230000_usage_invoiced_boundary.ts', m20261126230000],
  ['20261204170200_security_event_windows.ts', m20261204170200],
  ['20261204170300_dsr_trust_boundaries.ts', m20261204170300],
  ['20261204170400_console_sign_in_throttle.ts', m20261204170400],
  ['20261204170500_metering_bigint_and_quarantine.ts', m20261204170500],
  ['20261204170600_payment_reversals.ts', m20261204170600],
  ['20261204180000_anthropic_cache_writes.ts', m20261204180000],
  ['20261204210000_client_account_api.ts', m20261204210000],
  ['20261204210100_key_spend_holds.ts', m20261204210100],
  ['20261204210200_account_events.ts', m20261204210200],
  ['20261204210300_webhooks.ts', m20261204210300],
  ['20261204220000_invoice_payments.ts', m20261204220000],
  ['20261204230000_dunning.ts', m20261204230000],
  ['20261204231500_invoice_payments_check.ts', m20261204231500],
  ['20261205000000_processing_register.ts', m20261205000000],
  ['20261205000100_register_check.ts', m20261205000100],
  ['20261205000200_processor_mode.ts', m20261205000200],
  ['20261205000300_subprocessor_notices.ts', m20261205000300],
  ['20261205000400_processor_forward_close.ts', m20261205000400],
  ['20261205000500_activity_recipient_kinds.ts', m20261205000500],
  ['20261205000600_customer_console.ts', m20261205000600],
  ['20261205000700_checkout_sessions.ts', m20261205000700],
  ['20261205000800_customer_sign_in_factors.ts', m20261205000800],
  ['20261205000900_customer_members.ts', m20261205000900],
  ['20261205001000_console_consent_analytics.ts', m20261205001000],
  ['20261205001010_page_view_retention.ts', m20261205001010],
  ['20261205001100_privacy_policy_versions.ts', m20261205001100],
  ['20261205001200_dsr_console_channel.ts', m20261205001200],
  ['20261205001300_account_details_event.ts', m20261205001300],
];
