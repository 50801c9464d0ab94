import { describe, expect, it } from 'vitest';
import { mayUse } from '../../src/customerConsole/customerConsole.rules';
import {
  invitationEmail,
  invitationEmailKey,
  invitationExpiry,
  invitationFits,
  invitationState,
  invitationTokenShapeOk,
  inviteEmailProblem,
  MAX_OPEN_INVITATIONS,
  memberNameProblem,
  removalProblem,
  roleChangeProblem,
  roleOf,
} from '../../src/customerConsole/members.rules';

describe('who manages members', () => {
  it('lets owners and admins see members, and only owners change them', () => {
    expect(['owner', 'admin', 'developer', 'billing'].filter((r) => mayUse(r as 'owner', 'members'))).toEqual(['owner', 'admin']);
    expect(['owner', 'admin', 'developer', 'billing'].filter((r) => mayUse(r as 'owner', 'members_manage'))).toEqual(['owner']);
  });
});

describe('the last owner', () => {
  it('cannot be removed, not even by themselves; another owner makes it possible', () => {
    expect(removalProblem({ role: 'owner' }, 1)).toMatch(/at least one owner/);
    expect(removalProblem({ role: 'owner' }, 0)).toMatch(/at least one owner/);
    expect(removalProblem({ role: 'owner' }, 2)).toBeNull();
    expect(removalProblem({ role: 'admin' }, 1)).toBeNull();
  });

  it('cannot be demoted; promoting and changing other roles is always allowed', () => {
    for (const to of ['admin', 'developer', 'billing'] as const) expect(roleChangeProblem({ role: 'owner' }, to, 1)).toMatch(/at least one owner/);
    expect(roleChangeProblem({ role: 'owner' }, 'owner', 1)).toBeNull();
    expect(roleChangeProblem({ role: 'owner' }, 'developer', 2)).toBeNull();
    expect(roleChangeProblem({ role: 'developer' }, 'owner', 1)).toBeNull();
    expect(roleChangeProblem({ role: 'billing' }, 'admin', 1)).toBeNull();
  });
});

describe('inputs', () => {
  it('knows the four roles and nothing else', () => {
    expect(roleOf('billing')).toBe('billing');
    for (const v of ['Owner', 'root', '', ' owner', undefined, 1, ['owner']]) expect(roleOf(v)).toBeNull();
  });

  it('bounds the invited address', () => {
    expect(inviteEmailProblem('ann@example.com')).toBeNull();
    expect(inviteEmailProblem('')).toMatch(/enter/);
    expect(inviteEmailProblem('not-an-address')).toMatch(/not an email/);
    expect(inviteEmailProblem('a b@example.com')).toMatch(/not an email/);
    expect(inviteEmailProblem(`${'a'.repeat(242)}@example.com`)).toBeNull(); // 254
    expect(inviteEmailProblem(`${'a'.repeat(243)}@example.com`)).toMatch(/at most 254/);
  });

  it('bounds the name chosen when accepting', () => {
    expect(memberNameProblem('Ann Example')).toBeNull();
    expect(memberNameProblem('')).toMatch(/enter/);
    expect(memberNameProblem('x'.repeat(200))).toBeNull();
    expect(memberNameProblem('x'.repeat(201))).toMatch(/at most 200/);
    expect(memberNameProblem('Ann\nBcc: x')).toMatch(/control/);
  });

  it('looks up only tokens of the shape it issues', () => {
    expect(invitationTokenShapeOk('A'.repeat(43))).toBe(true);
    expect(invitationTokenShapeOk('A'.repeat(42))).toBe(false);
    expect(invitationTokenShapeOk('A'.repeat(44))).toBe(false);
    expect(invitationTokenShapeOk(`${'A'.repeat(42)}=`)).toBe(false);
  });

  it('caps open invitations per account', () => {
    expect(invitationFits(MAX_OPEN_INVITATIONS - 1)).toBe(true);
    expect(invitationFits(MAX_OPEN_INVITATIONS)).toBe(false);
  });
});

describe('an invitation', () => {
  const now = new Date('2026-12-05T10:00:00Z');

  it('works for 7 days', () => {
    expect(invitationExpiry(now).toISOString()).toBe('2026-12-12T10:00:00.000Z');
  });

  it('is open until it expires, is accepted or revoked', () => {
    const base = { accepted_at: null, revoked_at: null, expires_at: new Date(now.getTime() + 1000) };
    expect(invitationState(base, now)).toBe('open');
    expect(invitationState({ ...base, expires_at: now }, now)).toBe('expired');
    expect(invitationState({ ...base, accepted_at: now }, now)).toBe('accepted');
    expect(invitationState({ ...base, revoked_at: now }, now)).toBe('revoked');
  });

  it('has one email per invitation, with the link, the account and the role', () => {
    expect(invitationEmailKey('abc')).toBe('customer-invitation:abc');
    const m = invitationEmail({ accountName: 'Acme', inviterName: 'Ann', role: 'billing', link: 'https://x.example/app/invitations/accept?token=T', expiresAt: now });
    expect(m.subject).toContain('Acme');
    expect(m.body).toContain('https://x.example/app/invitations/accept?token=T');
    expect(m.body).toContain('as billing');
    expect(m.body).toContain('2026-12-05T10:00:00.000Z');
  });
});
