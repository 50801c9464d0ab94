import type { Request } from 'express';
import { csrfField, html, table, type Html } from '../../console/html';
import { CONSOLE_ROLES, MAX_EMAIL, mayUse, type ConsoleRole } from '../customerConsole.rules';
import type { MembersService } from '../members.service';
import { MAX_MEMBERS_LISTED } from '../members.rules';
import { cookieHeader } from '../session';
import { back, body, type CustomerPageKit } from './kit';

const param = (req: Request) => String(req.params.id ?? '').slice(0, 64);
const field = (b: Record<string, unknown>, name: string, max: number) => (typeof b[name] === 'string' ? (b[name] as string).slice(0, max + 1) : '');

const roleSelect = (id: string, current: ConsoleRole, label?: string) =>
  html`<select id="${id}" name="role"${label ? html` aria-label="${label}"` : ''}>${CONSOLE_ROLES.map((r) => html`<option value="${r}"${r === current ? html` selected` : ''}>${r}</option>`)}</select>`;

/**
 * Members (/app/members): the account's members and unanswered invitations,
 * for owners and admins (area 'members'); inviting, revoking, changing a role
 * and removing for owners (area 'members_manage', checked again by the
 * service inside the change's transaction).
 */
export function membersPages({ get, post, send }: CustomerPageKit, members: MembersService): void {
  get(
    '/app/members',
    async (req, res, s) => {
      const list = await members.list(s);
      const manage = list.canManage;
      const memberRow = (m: (typeof list.members)[number]): Html[] => [
        html`${m.name}${m.you ? html` <strong>(you)</strong>` : ''}`,
        html`${m.email}`,
        manage
          ? html`<form method="post" action="/app/members/${m.id}/role">${csrfField(s.csrf)}${roleSelect(`role-${m.id}`, m.role, `Role of ${m.email}`)} <button type="submit">Change role</button></form>`
          : html`${m.role}`,
        html`${m.lastSignIn ?? (m.hasPassword ? 'never' : 'never (no password set)')}`,
        html`${m.twoStep ? 'on' : 'off'}`,
        manage ? html`<form method="post" action="/app/members/${m.id}/remove">${csrfField(s.csrf)}<button type="submit">Remove${m.you ? ' myself' : ''}</button></form>` : html``,
      ];
      send(
        res,
        s,
        req,
        'Members',
        html`${table(['Name', 'Email', 'Role', 'Last sign-in (UTC)', 'Two-step sign-in', ''], list.members.map(memberRow), 'Members of this account')}
${list.more ? html`<p class="muted">The first ${MAX_MEMBERS_LISTED} members are shown.</p>` : ''}
${table(
  ['Email', 'Role', 'Sent (UTC)', 'Expires (UTC)', 'State', ''],
  list.invitations.map((i) => [
    html`${i.email}`,
    html`${i.role}`,
    html`${i.sentAt}`,
    html`${i.expiresAt}`,
    html`${i.state}`,
    manage ? html`<form method="post" action="/app/members/invitations/${i.id}/revoke">${csrfField(s.csrf)}<button type="submit">Revoke</button></form>` : html``,
  ]),
  'Invitations not yet accepted',
)}
${
  manage
    ? html`<section aria-labelledby="invite-h"><h2 id="invite-h">Invite a member</h2>
<p>We email a link to the address; it works once, for 7 days. Whoever opens it chooses their name and password and joins with the role you pick.</p>
<form method="post" action="/app/members/invite">${csrfField(s.csrf)}
<label for="email">Email</label><input id="email" name="email" type="email" required maxlength="${MAX_EMAIL}">
<label for="role">Role</label>${roleSelect('role', 'developer')}
<div><button type="submit">Send invitation</button></div></form></section>
<p class="muted">Owners manage members and everything else; admins see everything, members too, but do not change members; developers work with keys and usage; billing members with billing and usage. The account always keeps at least one owner.</p>`
    : html`<p class="muted">Only the account's owners invite, remove or change members.</p>`
}`,
        '/app/members',
      );
    },
    'members',
  );

  post(
    '/app/members/invite',
    async (req, res, s) => {
      const b = body(req);
      await members.invite(s, { email: field(b, 'email', MAX_EMAIL), role: field(b, 'role', 20) });
      back(res, '/app/members', 'members_invited');
    },
    'members_manage',
  );

  post(
    '/app/members/invitations/:id/revoke',
    async (req, res, s) => {
      await members.revokeInvitation(s, param(req));
      back(res, '/app/members', 'members_invitation_revoked');
    },
    'members_manage',
  );

  post(
    '/app/members/:id/role',
    async (req, res, s) => {
      const { role } = await members.changeRole(s, param(req), field(body(req), 'role', 20));
      // Demoting yourself may take the page away.
      back(res, param(req) === s.userId && !mayUse(role, 'members') ? '/app' : '/app/members', 'members_role_changed');
    },
    'members_manage',
  );

  post(
    '/app/members/:id/remove',
    async (req, res, s) => {
      const id = param(req);
      await members.remove(s, id);
      if (id !== s.userId) return back(res, '/app/members', 'members_removed');
      // Removing yourself ended this session too.
      res.setHeader('set-cookie', cookieHeader('', 0));
      back(res, '/app/login', 'signed_out');
    },
    'members_manage',
  );
}
