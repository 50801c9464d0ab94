import type { PrivacyService } from '../privacy/privacy.service';
import { html, table, type Html } from './html';

type Correction = NonNullable<Awaited<ReturnType<PrivacyService['get']>>['correction']>;

/**
 * What approving a correction does, shown in the approval form: the account,
 * whether the subject is its billing contact, and every field as it is now and
 * as requested. The approver sees exactly what will be written, and what will not.
 */
export function correctionApproval(c: Correction | null): Html {
  if (!c) return html`<p>Requested changes are applied when approved.</p>`;
  const value = (v: string | null) => (v === null ? html`<em>empty</em>` : html`<code>${v}</code>`);
  const accounts = c.accounts.length
    ? html`<p>Account: ${c.accounts.map((a, i) => html`${i ? ', ' : ''}<strong>${a.name}</strong> (${a.id}) — subject is ${a.billingContact ? '' : html`<strong>not</strong> `}its billing contact`)}</p>`
    : html`<p>Account: none found for the subject.</p>`;
  const rows = c.changes.map((ch) => [html`${ch.record}.${ch.field}`, html`${ch.id.slice(0, 8)}`, value(ch.from), value(ch.to), html`${ch.applies ? 'applied' : 'not applied'}`]);
  return html`${accounts}${rows.length ? table(['Field', 'Record', 'Now', 'Requested', 'On approval'], rows, 'Requested changes (old → new)') : html`<p>No matching records: nothing will change.</p>`}${c.notes.map((n) => html`<p role="note">${n}</p>`)}`;
}
