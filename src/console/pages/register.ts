import { html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { COMPLIANCE, type PageKit } from './kit';

/**
 * The processing register, read-only: processing activities, recipients with
 * a flag on each entry that lacks facts (and on each provider with no entry
 * at all), the newest sub-processor changes with their notice counts, and
 * the newest changes. Changes are made with the admin API or
 * `mixroute register` (docs/processing-register.md).
 */
export function registerPages({ get, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/register', COMPLIANCE, async (req, res, s) => {
    const [activities, recipients, completeness, changes, subprocessorChanges] = await Promise.all([
      ops.register.activities.list(),
      ops.register.recipients.list(),
      ops.register.completeness(),
      ops.register.changes({ limit: 20 }),
      // The newest sub-processor changes, each with its notice counts (ten reads of a grouped count).
      ops.subprocessors.changes.list({ limit: 10 }).then((list) => Promise.all(list.map((c) => ops.subprocessors.changes.get(c.id)))),
    ]);
    const incomplete = completeness.providers.filter((p) => p.missing.length > 0);
    send(
      res,
      s,
      req,
      'Processing register',
      html`<p role="status">${completeness.complete ? 'Every provider and recipient has a complete entry.' : `${incomplete.length} provider(s) and ${completeness.otherRecipients.filter((r) => r.missing.length > 0).length} other recipient(s) lack facts.`}</p>
${table(
  ['Provider', 'Register entry'],
  completeness.providers.map((p) => [html`${p.provider}`, p.missing.length ? html`<strong>incomplete: ${p.missing.join(', ')}</strong>` : html`complete`]),
  'Model providers',
)}
${table(
  ['Name', 'Kind', 'Role', 'Countries', 'Transfer mechanism', 'Agreement', 'Entry'],
  recipients.map((r) => [
    html`${r.name}`,
    html`${r.kind}`,
    html`${r.role ?? ''}`,
    html`${r.countries.join(', ')}`,
    html`${r.transferMechanism ?? ''}${r.sccDate ? ` (${r.sccDate})` : ''}`,
    html`${r.agreementRef ?? ''}${r.agreementSignedOn ? ` (signed ${r.agreementSignedOn})` : ''}`,
    r.missing.length ? html`<strong>incomplete: ${r.missing.join(', ')}</strong>` : html`complete`,
  ]),
  'Recipients',
)}
${table(
  ['Key', 'Purpose', 'Legal basis', 'Data subjects', 'Data', 'Systems', 'Retention'],
  activities.map((a) => [
    html`${a.key}`,
    html`${a.purpose}`,
    html`${a.legalBasis}`,
    html`${a.dataSubjectCategories.join(', ')}`,
    html`${a.dataCategories.join(', ')}`,
    html`${a.systems.join(', ')}`,
    html`${a.retentionCategory ?? ''}`,
  ]),
  'Processing activities',
)}
${table(
  ['Announced', 'Recipient', 'Change', 'Countries', 'Effective', 'Pending', 'Accepted', 'Objected', 'Effective notices'],
  subprocessorChanges.map((c) => [
    html`${c.announcedAt}`,
    html`${c.recipient}`,
    html`${c.kind === 'recipient_added' ? 'new sub-processor' : 'new countries'}`,
    html`${c.countries.join(', ')}`,
    html`${c.effectiveAt}${c.endedAt ? '' : ' (notice period running)'}`,
    html`${String(c.notices.pending)}`,
    html`${String(c.notices.accepted)}`,
    html`${String(c.notices.objected)}`,
    html`${String(c.notices.effective)}`,
  ]),
  'Sub-processor changes',
)}
${table(
  ['When', 'Who', 'What', 'Why'],
  changes.map((c) => [html`${c.changedAt}`, html`${c.actor}`, html`${c.action} ${c.entityType} ${c.entityId}`, html`${c.reason}`]),
  'Latest changes',
)}`,
      '/console/register',
    );
  });
}
