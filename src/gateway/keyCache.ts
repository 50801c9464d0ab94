import { hashSecret, looksLike } from '../auth/secrets';
import { LruMap } from './lru';

/** What the gateway knows about a caller after authentication: ids and limits only. */
export interface Caller {
  apiKeyId: string;
  accountId: string;
  userId: string | null;
  rateLimitRpm: number | null;
  /** Prepaid accounts get an explicit output bound on every request (see Forwarder). */
  prepaid: boolean;
  /** `management` keys call the account endpoints and /v1/keys but make no model calls. */
  kind: 'inference' | 'management';
  /** Epoch milliseconds from which the key no longer authenticates; null: it does not expire. */
  expiresAt: number | null;
  /** The key's spend limit (a decimal string) per `limitWindow`; null: no limit, and the balance gate adds nothing. */
  spendLimit: string | null;
  /** The limit's UTC calendar window; null with a limit: the key's whole life. */
  limitWindow: 'daily' | 'weekly' | 'monthly' | null;
  /**
   * The account is suspended (an unpaid invoice, or billing staff): its model calls are refused with
   * `account_suspended` (suspendedRefusal.ts); the account endpoints keep working. Cached with the key,
   * so a suspension or reinstatement reaches every gateway instance within the cache's TTL.
   */
  suspended: boolean;
  /**
   * The account's region policy (regionRefusal.ts): only routes whose provider processes in these
   * countries alone are used. Null or absent: no policy. Cached with the key like `suspended`, so a
   * change reaches every gateway instance within the cache's TTL, with no query per request.
   */
  regionPolicy?: CallerRegionPolicy | null;
  /**
   * The account's data-processing agreement (subprocessorRefusal.ts): only providers with a register
   * entry and not held back by a sub-processor notice are used. Null or absent: no agreement, no filter.
   * Cached with the key like `regionPolicy`: a new hold, an acceptance or an objection reaches every
   * gateway instance within the cache's TTL, with no query per request.
   */
  subprocessors?: CallerSubprocessors | null;
}

/** What an account's agreement holds back: provider names with a pending or objected notice. */
export interface CallerSubprocessors {
  held: ReadonlySet<string>;
  /**
   * performance.now() before the query that loaded `held`: a route whose register entry changed after
   * it (Route.registerSince) is left alone until the key is reloaded, as its notice may be missing here.
   */
  loadedAt: number;
}

/** An account's region policy as the gateway holds it: a set, so each route costs a lookup per country. */
export interface CallerRegionPolicy {
  allowed: ReadonlySet<string>;
  /** What the policy is called in messages ("EEA"); null: its countries are named instead. */
  label: string | null;
}

/** Looks a key up by its hash in the database (src/gateway/keys.data.ts); null: no such active key. */
export type LoadCaller = (keyHash: string) => Promise<Caller | null>;

export type AuthResult =
  | { ok: true; caller: Caller }
  | { ok: false; reason: 'missing_key' | 'malformed_key' | 'invalid_key' }
  /** A real key past its expires_at; told apart so the client knows to rotate rather than to check for a typo. */
  | { ok: false; reason: 'expired_key'; expiredAt: number }
  | { ok: false; reason: 'unavailable' }
  /** The key needed a database lookup and the source address has no failed attempts left. */
  | { ok: false; reason: 'throttled' };

/**
 * Expiry is decided here, against the clock of this moment, and not only by the
 * lookup: a key cached a moment before its instant would otherwise work for up
 * to the cache's TTL after it.
 */
function resultOf(caller: Caller | null, now: number): AuthResult {
  if (!caller) return { ok: false, reason: 'invalid_key' };
  if (caller.expiresAt !== null && caller.expiresAt <= now) return { ok: false, reason: 'expired_key', expiredAt: caller.expiresAt };
  return { ok: true, caller };
}

/**
 * API keys by hash, cached for at most `ttlMs` (config caps it at 5 s, the
 * promise for revocation). Unknown keys are cached too, so a flood of bad keys
 * costs one query per key per TTL. Concurrent lookups of one key share a query.
 * While PostgreSQL is unreachable, known keys keep working from the cache, so
 * the gateway keeps serving (and journaling) through a database outage.
 * The cache holds at most `maxEntries` keys and evicts the least recently
 * used one, so a flood of unknown keys cannot push out the keys in use.
 */
export class KeyCache {
  private readonly entries: LruMap<string, { caller: Caller | null; expires: number }>;
  private readonly inflight = new Map<string, Promise<Caller | null>>();

  constructor(
    private readonly loadCaller: LoadCaller,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    maxEntries = 100_000,
  ) {
    this.entries = new LruMap(maxEntries);
  }

  /**
   * A result, or a promise of one when the database must be asked: a key in
   * the cache (nearly every request) is answered without a promise, since the
   * gateway authenticates every request and each promise is a hop through the
   * microtask queue on its way. `admit` is asked before a new database query
   * is started (not for a cache hit, nor for a query already under way for the
   * same key); when it says no, the answer is `throttled`.
   */
  authenticate(authorization: string | undefined, admit?: () => boolean): AuthResult | Promise<AuthResult> {
    if (!authorization) return { ok: false, reason: 'missing_key' };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match || !looksLike(match[1]!, 'api_key')) return { ok: false, reason: 'malformed_key' };
    const hash = hashSecret(match[1]!);
    const hit = this.entries.get(hash);
    const now = this.now();
    if (hit && hit.expires > now) return resultOf(hit.caller, now);
    if (admit && !this.inflight.has(hash) && !admit()) return { ok: false, reason: 'throttled' };
    return this.lookup(hash, hit).then(
      (caller) => resultOf(caller, this.now()),
      () => ({ ok: false, reason: 'unavailable' }) as const,
    );
  }

  private async lookup(hash: string, hit: { caller: Caller | null } | undefined): Promise<Caller | null> {
    const pending = this.inflight.get(hash);
    if (pending) return pending;
    const query = this.loadCaller(hash).finally(() => this.inflight.delete(hash));
    this.inflight.set(hash, query);
    let caller: Caller | null;
    try {
      caller = await query;
    } catch (err) {
      // Database away: keep serving keys we knew (stale-if-error). Revocations
      // cannot propagate while it is away anyway; unknown keys cannot be checked.
      if (hit) return hit.caller;
      throw err;
    }
    if (this.ttlMs > 0) this.entries.set(hash, { caller, expires: this.now() + this.ttlMs });
    return caller;
  }
}
