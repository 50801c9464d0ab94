import type { Request } from 'express';

/**
 * The console's flash messages. A redirect names one by code (?msg=<code>)
 * and the page shows the fixed text here, so a link cannot make a console page
 * say whatever its author likes (“your session expired, call +1 …”). Unknown
 * codes show nothing.
 */
const MESSAGES = {
  signed_out: { kind: 'ok', text: 'Signed out.' },
  signin_failed: { kind: 'error', text: 'Sign-in failed: check the email and password.' },
  signin_throttled: { kind: 'error', text: 'Too many sign-in attempts. Wait a few minutes, then try again.' },
  signin_form_expired: { kind: 'error', text: 'The sign-in form expired or did not come from this console: sign in again.' },
  entry_recorded: { kind: 'ok', text: 'Ledger entry recorded.' },
  invoice_voided: { kind: 'ok', text: 'Voided; the credit note is issued.' },
  reconciliation_started: { kind: 'ok', text: 'Started; reload for the result.' },
  reconciliation_running: { kind: 'ok', text: 'Already running.' },
  dsr_verify: { kind: 'ok', text: 'Verification recorded. The request updates in a moment.' },
  dsr_extend: { kind: 'ok', text: 'Deadline extended. The request updates in a moment.' },
  dsr_approve: { kind: 'ok', text: 'Correction approved. The request updates in a moment.' },
  dsr_refuse: { kind: 'ok', text: 'Refusal recorded. The request updates in a moment.' },
  dsr_withdraw: { kind: 'ok', text: 'Marked withdrawn. The request updates in a moment.' },
  expiry_started: { kind: 'ok', text: 'Expiry started; reload to see the run.' },
  hold_placed: { kind: 'ok', text: 'Legal hold placed.' },
  hold_released: { kind: 'ok', text: 'Legal hold released.' },
  staff_added: { kind: 'ok', text: 'Staff member added.' },
  staff_role_changed: { kind: 'ok', text: 'Role changed; it applies to their open sessions at once.' },
  staff_disabled: { kind: 'ok', text: 'Staff member disabled; their sessions have ended.' },
  policy_changed: { kind: 'ok', text: 'Retention period changed.' },
  webhook_redelivered: { kind: 'ok', text: 'Redelivery queued; reload to see it in the log.' },
  payment_recorded: { kind: 'ok', text: 'Bank transfer recorded against the invoice.' },
  payment_already_recorded: { kind: 'ok', text: 'This transfer was already recorded (same reference, amount and date): nothing changed.' },
  invoice_written_off: { kind: 'ok', text: 'Invoice written off; it is uncollectible.' },
  invoice_already_written_off: { kind: 'ok', text: 'The invoice was already written off: nothing changed.' },
  dunning_paused: { kind: 'ok', text: 'Dunning paused for the account; no reminder goes out until it is resumed.' },
  dunning_already_paused: { kind: 'ok', text: 'Dunning was already paused for the account: nothing changed.' },
  dunning_resumed: { kind: 'ok', text: 'Dunning resumed; steps that came due while it was paused run now.' },
  dunning_not_paused: { kind: 'ok', text: 'Dunning was not paused: nothing changed.' },
  account_reinstated: { kind: 'ok', text: 'Account reinstated; the gateway accepts its requests again within seconds.' },
  account_not_suspended: { kind: 'ok', text: 'The account was not suspended: nothing changed.' },
  register_activity_added: { kind: 'ok', text: 'Processing activity added; the change is in the log below.' },
  register_activity_changed: { kind: 'ok', text: 'Processing activity changed; the change is in the log below.' },
  register_recipient_added: { kind: 'ok', text: 'Recipient added; the change is in the log below.' },
  register_recipient_changed: { kind: 'ok', text: 'Recipient changed; the change is in the log below.' },
  register_subprocessor_announced: { kind: 'ok', text: 'Saved. This is a sub-processor change: accounts with a data-processing agreement are told, and it gets none of their traffic until the notice period ends or they accept.' },
  register_notice_decided: { kind: 'ok', text: "The account's decision is recorded." },
  register_notice_unchanged: { kind: 'ok', text: 'The notice already had this decision: nothing changed.' },
  policy_version_published: { kind: 'ok', text: 'Version published. It is not material: no notice, no email.' },
  policy_version_published_material: { kind: 'ok', text: 'Material version published: signed-in customers see a notice until they acknowledge it; account owners are being emailed.' },
  policy_version_published_emails_pending: { kind: 'error', text: 'Material version published and customers see the notice, but the owners\' emails did not start (Temporal unreachable): run `mixroute policy resume-emails <version>`.' },
} as const satisfies Record<string, { kind: 'ok' | 'error'; text: string }>;

export type MessageCode = keyof typeof MESSAGES;
export type Flash = { kind: 'ok' | 'error'; text: string };

export function flashFrom(req: Request): Flash | null {
  const code = req.query.msg;
  return typeof code === 'string' && Object.hasOwn(MESSAGES, code) ? MESSAGES[code as MessageCode] : null;
}

export function message(code: MessageCode): Flash {
  return MESSAGES[code];
}

/** The URL to redirect to with a message code. */
export function withMessage(to: string, code: MessageCode): string {
  return `${to}${to.includes('?') ? '&' : '?'}msg=${code}`;
}
