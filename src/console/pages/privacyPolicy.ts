import { csrfField, html, table } from '../html';
import type { PolicyVersionsService } from '../../policyVersions/policyVersions.service';
import { SUMMARY_MAX, TITLE_MAX, URL_MAX } from '../../policyVersions/policyVersions.rules';
import { back, body, COMPLIANCE, type PageKit } from './kit';

/**
 * Privacy policy versions (docs/console.md#privacy-policy): the published
 * versions with how many users acknowledged each, and the form compliance
 * staff and admins publish a new one with. A material version shows every
 * signed-in customer a notice until they acknowledge it and emails every
 * account owner once. The service validates (a bad value is a message on the
 * page, nothing published); a version already published is refused.
 */
const PAGE = '/console/privacy-policy';

export function privacyPolicyPages({ get, post, send }: PageKit, policies: PolicyVersionsService): void {
  get(PAGE, COMPLIANCE, async (req, res, s) => {
    const versions = await policies.list();
    send(
      res,
      s,
      req,
      'Privacy policy',
      html`${table(
        ['Version', 'Title', 'Material', 'Published', 'By', 'Acknowledged by', 'Link'],
        versions.map((v) => [
          html`${v.version}`,
          html`${v.title}`,
          html`${v.material ? 'yes' : 'no'}`,
          html`${v.publishedAt}`,
          html`${v.publishedBy}`,
          html`${String(v.acknowledgements)} user(s)`,
          v.url ? html`<a href="${v.url}" rel="noopener noreferrer">${v.url}</a>` : html``,
        ]),
        'Published versions',
      )}
<form method="post" action="${PAGE}">${csrfField(s.csrf)}<fieldset><legend>Publish a new version</legend>
<label for="pv-version">Version (letters, digits, dots, dashes or underscores; e.g. 2026-12 or v3.1; cannot be reused)</label><input id="pv-version" name="version" required maxlength="40">
<label for="pv-title">Title (1–${String(TITLE_MAX)} characters, one line)</label><input id="pv-title" name="title" required maxlength="${String(TITLE_MAX)}">
<label for="pv-summary">Summary of what changed (1–${String(SUMMARY_MAX)} characters; shown in the notice and the email)</label><textarea id="pv-summary" name="summary" required maxlength="${String(SUMMARY_MAX)}" rows="6"></textarea>
<label for="pv-url">Link to the full policy (optional, https:// only)</label><input id="pv-url" name="url" type="url" maxlength="${String(URL_MAX)}">
<label><input type="checkbox" name="material" value="1"> Material change: every signed-in customer sees a notice until they acknowledge it, and every account owner gets an email</label>
<div><button type="submit">Publish</button></div></fieldset></form>`,
      PAGE,
    );
  });
  post(
    PAGE,
    COMPLIANCE,
    async (req, res, s) => {
      const b = body(req);
      const v = await policies.publish({ version: b.version, title: b.title, summary: b.summary, url: b.url, ...(b.material ? { material: b.material } : {}) }, s.actor);
      back(res, PAGE, !v.material ? 'policy_version_published' : v.workflowStarted ? 'policy_version_published_material' : 'policy_version_published_emails_pending');
    },
    () => PAGE,
  );
}
