import type { Html } from '../html';
import { csrfField, html, table } from '../html';
import type { ConsoleOperations } from '../operations';
import { activityCreateInput, activityUpdateInput, idOf, noticeDecisionInput, recipientCreateInput, recipientUpdateInput } from '../registerForms';
import { LEGAL_BASES, RECIPIENT_KINDS, RECIPIENT_ROLES, TRANSFER_MECHANISMS } from '../../register/register.rules';
import { back, body, COMPLIANCE, type PageKit } from './kit';

/**
 * The processing register: processing activities, recipients with a flag on
 * each entry that lacks facts (and on each provider with no entry at all),
 * the newest sub-processor changes with their notice counts, and the newest
 * changes; and the forms compliance staff and admins change it with: add or
 * change an activity, add or change a recipient, record an account's decision
 * on a sub-processor notice. Every form posts through the page kit (session,
 * role, CSRF token); the register service validates (a bad value is an error
 * message on the page, nothing saved) and logs the change with the signed-in
 * staff member and the reason (docs/processing-register.md).
 */
const PAGE = '/console/register';

const options = (values: readonly string[], first?: { value: string; label: string }[]) =>
  html`${(first ?? []).map((o) => html`<option value="${o.value}">${o.label}</option>`)}${values.map((v) => html`<option value="${v}">${v}</option>`)}`;

/** The fields an activity form has; `change`: empty means unchanged, and the selects offer "unchanged". */
function activityFields(p: string, change: boolean, categories: string[]): Html {
  const keep = change ? [{ value: '', label: '(unchanged)' }] : [];
  const hint = change ? ' (empty: unchanged)' : '';
  return html`<label for="${p}-purpose">Purpose (3–500 characters)${hint}</label><input id="${p}-purpose" name="purpose" ${change ? '' : html`required `}maxlength="500">
<label for="${p}-basis">Legal basis</label><select id="${p}-basis" name="legalBasis">${options(LEGAL_BASES, keep)}</select>
<label for="${p}-subjects">Categories of data subjects (comma-separated)${hint}</label><input id="${p}-subjects" name="dataSubjectCategories" ${change ? '' : html`required `}maxlength="2100">
<label for="${p}-data">Categories of data (comma-separated)${hint}</label><input id="${p}-data" name="dataCategories" ${change ? '' : html`required `}maxlength="3100">
<label for="${p}-systems">Systems (comma-separated)${hint}</label><input id="${p}-systems" name="systems" ${change ? '' : html`required `}maxlength="2100">
<label for="${p}-retention">Retention category</label><select id="${p}-retention" name="retentionCategory">${options(categories, change ? [...keep, { value: '-', label: '(none)' }] : [{ value: '', label: '(none)' }])}</select>
<fieldset><legend>Kinds of recipient it discloses data to${change ? ' (none ticked: unchanged)' : ' (none ticked: not stated)'}</legend>
${RECIPIENT_KINDS.map((k) => html`<label><input type="checkbox" name="recipientKinds" value="${k}"> ${k}</label>`)}
${change ? html`<label><input type="checkbox" name="recipientKindsNotStated" value="1"> set to not stated</label>` : ''}</fieldset>`;
}

/** The facts a recipient form has; `change`: empty means unchanged, "-" clears. */
function recipientFields(p: string, change: boolean): Html {
  const keep = change ? [{ value: '', label: '(unchanged)' }, { value: '-', label: '(clear)' }] : [{ value: '', label: '(not stated)' }];
  const hint = change ? ' (empty: unchanged, - clears)' : '';
  return html`<label for="${p}-role">Role</label><select id="${p}-role" name="role">${options(RECIPIENT_ROLES, keep)}</select>
<label for="${p}-countries">Countries of processing (ISO codes, comma-separated: DE, US)${hint}</label><input id="${p}-countries" name="countries" maxlength="200">
<label for="${p}-transfer">Transfer mechanism</label><select id="${p}-transfer" name="transferMechanism">${options(TRANSFER_MECHANISMS, keep)}</select>
<label for="${p}-scc">Date of the standard contractual clauses (YYYY-MM-DD; required with them)${hint}</label><input id="${p}-scc" name="sccDate" maxlength="10">
<label for="${p}-note">Transfer note${hint}</label><input id="${p}-note" name="transferNote" maxlength="1000">
<label for="${p}-agreement">Agreement reference${hint}</label><input id="${p}-agreement" name="agreementRef" maxlength="200">
<label for="${p}-signed">Agreement signed on (YYYY-MM-DD)${hint}</label><input id="${p}-signed" name="agreementSignedOn" maxlength="10">`;
}

const reasonField = (p: string) =>
  html`<label for="${p}-reason">Reason (required, 3–500 characters; kept in the change log)</label><input id="${p}-reason" name="reason" required minlength="3" maxlength="500">`;

export function registerPages({ get, post, send }: PageKit, ops: ConsoleOperations): void {
  get('/console/register', COMPLIANCE, async (req, res, s) => {
    const [activities, recipients, completeness, changes, subprocessorChanges, policies] = await Promise.all([
      ops.register.activities.list(),
      ops.register.recipients.list(),
      ops.register.completeness(),
      ops.register.changes({ limit: 20 }),
      // The newest sub-processor changes, each with its notice counts (ten reads of a grouped count).
      ops.subprocessors.changes.list({ limit: 10 }).then((list) => Promise.all(list.map((c) => ops.subprocessors.changes.get(c.id)))),
      ops.retention.policies(),
    ]);
    const categories = policies.map((p) => p.category);
    const csrf = csrfField(s.csrf);
    const unregistered = completeness.providers.filter((p) => p.recipientId === null);
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
<form method="post" action="/console/register/recipients">${csrf}<fieldset><legend>Add a recipient</legend>
<label for="ra-kind">Kind</label><select id="ra-kind" name="kind">${options(RECIPIENT_KINDS)}</select>
<label for="ra-provider">Provider (kind model_provider: its entry is named after it)</label><select id="ra-provider" name="provider">${options([], [{ value: '', label: '(not a model provider)' }])}${unregistered.map((p) => html`<option value="${p.providerId}">${p.provider}</option>`)}</select>
<label for="ra-name">Name (other kinds)</label><input id="ra-name" name="name" maxlength="200">
${recipientFields('ra', false)}
${reasonField('ra')}
<div><button type="submit">Add recipient</button></div></fieldset></form>
${recipients.length
  ? html`<form method="post" action="/console/register/recipients/change">${csrf}<fieldset><legend>Change a recipient (only the fields filled in)</legend>
<label for="rc-id">Recipient</label><select id="rc-id" name="id">${recipients.map((r) => html`<option value="${r.id}">${r.name} (${r.kind})</option>`)}</select>
<label for="rc-name">New name (empty: unchanged; not for model providers)</label><input id="rc-name" name="name" maxlength="200">
${recipientFields('rc', true)}
${reasonField('rc')}
<div><button type="submit">Change recipient</button></div></fieldset></form>`
  : ''}
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
<form method="post" action="/console/register/activities">${csrf}<fieldset><legend>Add a processing activity</legend>
<label for="aa-key">Key (lower case, digits and _, starting with a letter)</label><input id="aa-key" name="key" required maxlength="63">
${activityFields('aa', false, categories)}
${reasonField('aa')}
<div><button type="submit">Add activity</button></div></fieldset></form>
${activities.length
  ? html`<form method="post" action="/console/register/activities/change">${csrf}<fieldset><legend>Change a processing activity (only the fields filled in)</legend>
<label for="ac-id">Activity</label><select id="ac-id" name="id">${activities.map((a) => html`<option value="${a.id}">${a.key}</option>`)}</select>
${activityFields('ac', true, categories)}
${reasonField('ac')}
<div><button type="submit">Change activity</button></div></fieldset></form>`
  : ''}
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
${subprocessorChanges.length
  ? html`<form method="post" action="/console/register/notices/decide">${csrf}<fieldset><legend>Record an account's decision on a sub-processor notice</legend>
<label for="nd-change">Sub-processor change</label><select id="nd-change" name="changeId">${subprocessorChanges.map((c) => html`<option value="${c.id}">${c.recipient}, announced ${c.announcedAt}</option>`)}</select>
<label for="nd-account">Account id</label><input id="nd-account" name="accountId" required maxlength="36">
<label for="nd-decision">Decision</label><select id="nd-decision" name="decision"><option value="accept">accept (the recipient may get the account's traffic now)</option><option value="object">object (it never does)</option></select>
<label for="nd-reason">What the account said, and how (required, 3–500 characters)</label><input id="nd-reason" name="reason" required minlength="3" maxlength="500">
<div><button type="submit">Record decision</button></div></fieldset></form>`
  : ''}
${table(
  ['When', 'Who', 'What', 'Why'],
  changes.map((c) => [html`${c.changedAt}`, html`${c.actor}`, html`${c.action} ${c.entityType} ${c.entityId}`, html`${c.reason}`]),
  'Latest changes',
)}`,
      '/console/register',
    );
  });

  post(
    '/console/register/activities',
    COMPLIANCE,
    async (req, res, s) => {
      await ops.register.activities.create(activityCreateInput(body(req)), s.actor);
      back(res, PAGE, 'register_activity_added');
    },
    () => PAGE,
  );
  post(
    '/console/register/activities/change',
    COMPLIANCE,
    async (req, res, s) => {
      await ops.register.activities.update(idOf(body(req).id), activityUpdateInput(body(req)), s.actor);
      back(res, PAGE, 'register_activity_changed');
    },
    () => PAGE,
  );
  post(
    '/console/register/recipients',
    COMPLIANCE,
    async (req, res, s) => {
      const r = await ops.register.recipients.create(recipientCreateInput(body(req)), s.actor);
      back(res, PAGE, r.subprocessorChange ? 'register_subprocessor_announced' : 'register_recipient_added');
    },
    () => PAGE,
  );
  post(
    '/console/register/recipients/change',
    COMPLIANCE,
    async (req, res, s) => {
      const r = await ops.register.recipients.update(idOf(body(req).id), recipientUpdateInput(body(req)), s.actor);
      back(res, PAGE, r.subprocessorChange ? 'register_subprocessor_announced' : 'register_recipient_changed');
    },
    () => PAGE,
  );
  post(
    '/console/register/notices/decide',
    COMPLIANCE,
    async (req, res, s) => {
      const b = body(req);
      const r = await ops.subprocessors.notices.decide(idOf(b.changeId), idOf(b.accountId), noticeDecisionInput(b), s.actor);
      back(res, PAGE, r.changed ? 'register_notice_decided' : 'register_notice_unchanged');
    },
    () => PAGE,
  );
}
