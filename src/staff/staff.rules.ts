/**
 * Staff roles and the rule that decides a console session's role. Pure, so the
 * schemas, the admin routes and the console can share them without reaching
 * the data layer.
 */
export type StaffRole = 'billing' | 'compliance' | 'admin';
export const STAFF_ROLES: readonly StaffRole[] = ['billing', 'compliance', 'admin'];

/** What a console session row says about the staff user or token behind it, as it is now. */
export interface SessionSubject {
  staff_user_id: string | null;
  user_role: StaffRole | null;
  disabled_at: Date | null;
  token_role: StaffRole | null;
  token_revoked_at: Date | null;
}

/**
 * The role a session has now: the user's current role unless the user is
 * disabled, or the token's unless it is revoked; null ends the session.
 */
export function sessionRole(s: SessionSubject): StaffRole | null {
  return s.staff_user_id ? (s.user_role && !s.disabled_at ? s.user_role : null) : s.token_role && !s.token_revoked_at ? s.token_role : null;
}

/** How long a console session lasts after sign-in. */
export const SESSION_HOURS = 8;
