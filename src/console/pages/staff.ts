import type { StaffRole } from '../../staff/staff.rules';
import type { StaffService } from '../../staff/staff.service';
import { csrfField, html, raw, table } from '../html';
import { ADMIN, back, body, param, type PageKit } from './kit';

/** Staff members (adding one, changing a role, disabling) and the API staff tokens. */
export function staffPages({ get, post, send }: PageKit, staff: StaffService): void {
  get('/console/staff', ADMIN, async (req, res, s) => {
    const users = await staff.listUsers();
    const tokens = await staff.listRecentTokens(50);
    send(
      res,
      s,
      req,
      'Staff',
      html`<form method="post" action="/console/staff">${csrfField(s.csrf)}<fieldset><legend>Add a staff member</legend>
<label for="semail">Email</label><input id="semail" name="email" type="email" required>
<label for="sname">Name</label><input id="sname" name="name" required>
<label for="srole">Role</label><select id="srole" name="role"><option value="billing">billing</option><option value="compliance">compliance</option><option value="admin">admin</option></select>
<label for="spass">Initial password (at least 12 characters)</label><input id="spass" name="password" type="password" required minlength="12" autocomplete="new-password">
<div><button type="submit">Add</button></div></fieldset></form>
${table(
  ['Email', 'Name', 'Role', 'Since', 'Status', 'Change access'],
  users.map((u) => [
    html`${u.email}`,
    html`${u.name}`,
    html`${u.role}`,
    html`${new Date(u.created_at).toISOString().slice(0, 10)}`,
    html`${u.disabled_at ? 'disabled' : 'active'}`,
    u.disabled_at || s.actor === `staff-user:${u.id}`
      ? html``
      : html`<form method="post" action="/console/staff/${u.id}/role" class="inline">${csrfField(s.csrf)}<label for="role-${u.id}">New role for ${u.email}</label> <select id="role-${u.id}" name="role">${['billing', 'compliance', 'admin'].map((r) => html`<option value="${r}"${r === u.role ? raw(' selected') : ''}>${r}</option>`)}</select> <button type="submit" class="secondary">Change role</button></form>
<form method="post" action="/console/staff/${u.id}/disable" class="inline">${csrfField(s.csrf)}<button type="submit" class="secondary" aria-label="Disable ${u.email}">Disable</button></form>`,
  ]),
  'Staff members',
)}
${table(['Token', 'Role', 'Name', 'Created', 'Revoked'], tokens.map((t) => [html`${t.id.slice(0, 8)}`, html`${t.role}`, html`${t.name ?? ''}`, html`${new Date(t.created_at).toISOString()}`, html`${t.revoked_at ? new Date(t.revoked_at).toISOString() : ''}`]), 'API staff tokens (create and revoke with the CLI or admin API)')}`,
      '/console/staff',
    );
  });
  post(
    '/console/staff',
    ADMIN,
    async (req, res) => {
      const b = body(req);
      await staff.createUser({ email: b.email ?? '', name: b.name ?? '', role: b.role as StaffRole, password: b.password ?? '' });
      back(res, '/console/staff', 'staff_added');
    },
    () => '/console/staff',
  );
  post(
    '/console/staff/:id/role',
    ADMIN,
    async (req, res, s) => {
      await staff.setUserRole(param(req, 'id'), body(req).role ?? '', s.actor);
      back(res, '/console/staff', 'staff_role_changed');
    },
    () => '/console/staff',
  );
  post(
    '/console/staff/:id/disable',
    ADMIN,
    async (req, res, s) => {
      await staff.disableUser(param(req, 'id'), s.actor);
      back(res, '/console/staff', 'staff_disabled');
    },
    () => '/console/staff',
  );
}
