import { html } from '../../console/html';
import type { PolicyVersionsService } from '../../policyVersions/policyVersions.service';
import { back, body, type CustomerPageKit } from './kit';

/**
 * A changed privacy policy (docs/customer-console.md#policy-changes): above
 * every page of a signed-in user, the latest material version they have not
 * acknowledged, with its summary, its link and an "I have read it" button;
 * the button records the acknowledgement and the notice is gone.
 */

/** Where the button returns to: a console page path, never another site (`//host`) or a query. */
const RETURN = /^\/app(\/[a-z0-9-]+)*$/;

export function policyNoticePages(kit: CustomerPageKit, policies: Pick<PolicyVersionsService, 'noticeFor' | 'acknowledge'>): void {
  kit.addBanner(async (req, s) => {
    if (!s) return null;
    const n = await policies.noticeFor(s.userId);
    if (!n) return null;
    const here = req.originalUrl.split('?')[0] ?? '/app';
    return html`<section class="notice policy-notice" aria-labelledby="policy-notice-title" role="region">
<h2 id="policy-notice-title">Our privacy policy changed: ${n.title}</h2>
<p class="muted">Version ${n.version}, published ${n.publishedAt.slice(0, 10)}</p>
${n.summary.split(/\n\s*\n/).map((para) => html`<p>${para}</p>`)}
${n.url ? html`<p><a href="${n.url}" rel="noopener noreferrer" target="_blank">Read the full policy</a></p>` : ''}
<form method="post" action="/app/policy/acknowledge"><input type="hidden" name="_csrf" value="${s.csrf}"><input type="hidden" name="version" value="${n.version}"><input type="hidden" name="back" value="${RETURN.test(here) ? here : '/app'}"><button type="submit">I have read it</button></form>
</section>`;
  });

  kit.post('/app/policy/acknowledge', async (req, res, s) => {
    const b = body(req);
    await policies.acknowledge(s.userId, b.version);
    const to = typeof b.back === 'string' && RETURN.test(b.back) ? b.back : '/app';
    back(res, to, 'policy_acknowledged');
  });
}
