/**
 * Rules a key's settings obey together, whoever sets them (staff or the account's
 * management key). Each field is validated on its own by the schemas; these are the
 * checks across fields and against the time of the change.
 */

export interface KeySettings {
  spendLimit: string | null;
  limitWindow: string | null;
  expiresAt: Date | null;
}

export interface SettingsProblem {
  /** The field as the caller named it. */
  field: 'limit' | 'limit_reset' | 'expires_at';
  message: string;
}

/**
 * A reset window without a limit would be a window over nothing (the schema's
 * CHECK refuses it too); an expiry must lie ahead, or the key would be born dead,
 * and within `maxLifetimeMs`, which catches a mistyped year.
 */
export function keySettingsProblems(s: KeySettings, now: Date, maxLifetimeMs: number): SettingsProblem[] {
  const problems: SettingsProblem[] = [];
  if (s.limitWindow !== null && s.spendLimit === null) {
    problems.push({ field: 'limit_reset', message: 'limit_reset needs a limit: set limit too, or set limit_reset to null' });
  }
  if (s.expiresAt !== null) {
    if (s.expiresAt.getTime() <= now.getTime()) problems.push({ field: 'expires_at', message: 'expires_at must be in the future' });
    else if (s.expiresAt.getTime() - now.getTime() > maxLifetimeMs) {
      problems.push({ field: 'expires_at', message: `expires_at must be at most ${Math.floor(maxLifetimeMs / 86_400_000)} days ahead` });
    }
  }
  return problems;
}
