import type Decimal from 'decimal.js';
import { Money } from '../shared/money.rules';
import type { HoldsService } from '../ledger/holds.service';
import { needsReservation, sliceCovers, sliceRetireAt } from '../ledger/balanceGate.rules';
import { secondsUntilReset, type KeyLimitRefusal } from '../accounts/keyLimit.rules';
import type { KeyHoldsService } from '../accounts/keyHolds.service';
import { systemClock, type Clock } from '../clock';
import type { Logger } from '../logger';

/**
 * The balance gate: reserve, then settle. Before a request is forwarded its
 * maximum cost is reserved against the account's spendable balance; when it
 * ends, the reservation is replaced by the actual cost, which the metering
 * settlement later debits. The decision (may this request start?) is in
 * src/ledger/balanceGate.rules.ts; this file is its hot path.
 *
 * To keep the database off the hot path, each gateway instance reserves a
 * slice of the account's spendable balance at once (one atomic UPDATE that
 * fails when the balance cannot cover it) and spends it locally. A slice is
 * retired before its hold expires; once its in-flight requests have ended it
 * is closed, shrinking the hold to what was actually spent and handing the
 * rest back. Every instance can only spend what it reserved, so concurrent
 * requests across instances cannot overdraw by more than the difference
 * between actual and reserved cost of requests in flight (zero when the
 * reserved output bound holds; see docs/ledger.md, "Balance gate").
 *
 * A key with a spend limit spends from slices of its own, taken against the
 * key's limit as well as the account's balance (acquireKeyHold), so the same
 * bound holds for the key's spend in its window. Keys without a limit share
 * the account's slice and cost nothing more. A key's slice is not spent from
 * past its window's end, nor after the key's limit or window changed.
 */
export interface Reservation {
  accountId: string;
  holdId: string;
  reserved: Decimal;
  /** The slice it was taken from: the account's, or the key's for a key with a limit. */
  slice: string;
}

/** The spend limit of the calling key, as the key cache knows it (Caller). */
export interface KeyLimit {
  apiKeyId: string;
  spendLimit: string | null;
  limitWindow: 'daily' | 'weekly' | 'monthly' | null;
}

interface Slice {
  holdId: string;
  amount: Decimal;
  spent: Decimal;
  inflight: number;
  retireAt: number;
  retired: boolean;
  /** A key's slice: the limit and window it was granted under, and when that window ends (clock ms). */
  limit?: KeyLimit;
  windowEnd?: number;
}

export type ReserveOutcome =
  | { ok: true; reservation: Reservation | null }
  | { ok: false; reason: 'insufficient' | 'unavailable' }
  /** `retryAfter`: seconds until the key's window resets, by the gate's clock; null for a lifetime limit. */
  | { ok: false; reason: 'key_limit'; refusal: KeyLimitRefusal; retryAfter: number | null };

export interface BalanceGateOptions {
  holder: string;
  slice: Decimal;
  ttlMs: number;
  overdraftAllowance: Decimal;
  /** After a refusal, how long the account is refused without asking the database again. */
  refusalCacheMs?: number;
  /** Decides a key's spend-limit window (tests move it across window boundaries); slice lifetimes use real time. */
  clock?: Clock;
}

function sameLimit(a: KeyLimit | undefined, b: KeyLimit): boolean {
  return a !== undefined && a.spendLimit === b.spendLimit && a.limitWindow === b.limitWindow;
}

/** Rounds of waiting for another request's acquisition before a request gives up with 402. */
const MAX_ROUNDS = 8;

export class BalanceGate {
  private readonly slices = new Map<string, Slice>();
  private readonly acquiring = new Map<string, Promise<void>>();
  private readonly refusedUntil = new Map<string, number>();
  private readonly keyRefusals = new Map<string, { until: number; refusal: KeyLimitRefusal }>();
  private readonly clock: Clock;
  /** The clock in epoch ms, without a Date per request on the hot path when it is the system's. */
  private readonly nowMs: () => number;
  private readonly closing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly holds: HoldsService & KeyHoldsService,
    private readonly opts: BalanceGateOptions,
    private readonly logger: Logger,
  ) {
    this.clock = opts.clock ?? systemClock;
    const injected = opts.clock;
    this.nowMs = injected ? () => injected.now().getTime() : Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.maintain(), Math.max(250, Math.floor(this.opts.ttlMs / 6)));
    this.timer.unref();
  }

  /**
   * Reserves `maxCost` for one request; a request that can cost nothing needs no reservation.
   * `key`: the calling key; when it has a spend limit, the request is taken from the key's own slice.
   */
  async reserve(accountId: string, maxCost: Decimal, key?: KeyLimit): Promise<ReserveOutcome> {
    if (!needsReservation(maxCost)) return { ok: true, reservation: null };
    const limited = key !== undefined && key.spendLimit !== null ? key : undefined;
    const sliceKey = limited ? limited.apiKeyId : accountId;
    // Each acquisition that succeeds reserves at least one request's bound of a finite balance
    // or limit, so under contention the rounds end in a slice or in a refusal with its reason.
    for (let attempt = 0; attempt < MAX_ROUNDS; attempt++) {
      const taken = this.takeFromSlice(accountId, sliceKey, maxCost, limited);
      if (taken) return { ok: true, reservation: taken };
      const refused = this.cachedRefusal(sliceKey, limited !== undefined);
      if (refused) return refused;
      // One acquisition per slice at a time; others wait for it and retry the slice.
      const pending = this.acquiring.get(sliceKey);
      if (pending) {
        await pending;
        continue;
      }
      let outcome: ReserveOutcome | undefined;
      const acquisition = (async () => {
        const old = this.slices.get(sliceKey);
        if (old) this.retire(sliceKey, old);
        try {
          const request = {
            accountId,
            need: maxCost,
            slice: this.opts.slice,
            holder: this.opts.holder,
            ttlMs: this.opts.ttlMs,
            overdraftAllowance: this.opts.overdraftAllowance,
          };
          let grant;
          let windowEnd: number | undefined;
          if (limited) {
            const got = await this.holds.acquireForKey({ ...request, apiKeyId: limited.apiKeyId, at: this.clock.now() });
            if (!got.ok && got.reason === 'key_limit') {
              const until = Date.now() + (this.opts.refusalCacheMs ?? 1_000);
              this.keyRefusals.set(sliceKey, { until, refusal: got.refusal });
              outcome = this.keyLimitOutcome(got.refusal);
              return;
            }
            grant = got.ok ? got.grant : undefined;
            windowEnd = got.ok ? (got.limit?.resetAt?.getTime() ?? Infinity) : undefined;
          } else {
            grant = await this.holds.acquire(request);
          }
          if (!grant) {
            this.refusedUntil.set(sliceKey, Date.now() + (this.opts.refusalCacheMs ?? 1_000));
            outcome = { ok: false, reason: 'insufficient' };
            return;
          }
          this.refusedUntil.delete(sliceKey);
          this.keyRefusals.delete(sliceKey);
          this.slices.set(sliceKey, {
            holdId: grant.holdId,
            amount: grant.amount,
            spent: new Money(0),
            inflight: 0,
            retireAt: sliceRetireAt(Date.now(), this.opts.ttlMs),
            retired: false,
            ...(limited ? { limit: { apiKeyId: limited.apiKeyId, spendLimit: limited.spendLimit, limitWindow: limited.limitWindow }, windowEnd } : {}),
          });
        } catch (err) {
          this.logger.warn({ err }, 'balance hold not acquired: database unavailable');
          outcome = { ok: false, reason: 'unavailable' };
        }
      })().finally(() => this.acquiring.delete(sliceKey));
      this.acquiring.set(sliceKey, acquisition);
      await acquisition;
      if (outcome) return outcome;
    }
    return this.cachedRefusal(sliceKey, limited !== undefined) ?? { ok: false, reason: 'insufficient' };
  }

  private cachedRefusal(sliceKey: string, limited: boolean): ReserveOutcome | undefined {
    if ((this.refusedUntil.get(sliceKey) ?? 0) > Date.now()) return { ok: false, reason: 'insufficient' };
    if (!limited) return undefined;
    const cached = this.keyRefusals.get(sliceKey);
    // A refusal by a window's limit lasts no longer than the window.
    if (cached && cached.until > Date.now() && (cached.refusal.resetAt === null || this.nowMs() < cached.refusal.resetAt.getTime())) {
      return this.keyLimitOutcome(cached.refusal);
    }
    return undefined;
  }

  private keyLimitOutcome(refusal: KeyLimitRefusal): ReserveOutcome {
    return { ok: false, reason: 'key_limit', refusal, retryAfter: secondsUntilReset(refusal, this.clock.now()) };
  }

  /** The request ended: its reservation becomes its actual cost. */
  commit(reservation: Reservation | null, actualCost: string): void {
    if (!reservation) return;
    const slice = this.findSlice(reservation);
    if (!slice) return;
    slice.spent = slice.spent.plus(actualCost).minus(reservation.reserved);
    slice.inflight -= 1;
    if (slice.retired && slice.inflight === 0) this.close(slice);
  }

  /** Closes every slice (after their in-flight requests) and stops the timer. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const [accountId, slice] of this.slices) this.retire(accountId, slice);
    await Promise.all([...this.closing]);
  }

  private takeFromSlice(accountId: string, sliceKey: string, maxCost: Decimal, key: KeyLimit | undefined): Reservation | undefined {
    const slice = this.slices.get(sliceKey);
    if (!slice || slice.retired || Date.now() >= slice.retireAt) return undefined;
    // A key's slice counts against the window and limit it was granted under, and no other.
    if (key !== undefined && (!sameLimit(slice.limit, key) || this.nowMs() >= slice.windowEnd!)) return undefined;
    if (!sliceCovers(slice, maxCost)) return undefined;
    slice.spent = slice.spent.plus(maxCost);
    slice.inflight += 1;
    return { accountId, holdId: slice.holdId, reserved: maxCost, slice: sliceKey };
  }

  private readonly retiredSlices = new Map<string, Slice>();

  private findSlice(r: Reservation): Slice | undefined {
    const current = this.slices.get(r.slice);
    if (current?.holdId === r.holdId) return current;
    return this.retiredSlices.get(r.holdId);
  }

  private retire(accountId: string, slice: Slice): void {
    if (slice.retired) return;
    slice.retired = true;
    if (this.slices.get(accountId) === slice) this.slices.delete(accountId);
    if (slice.inflight === 0) this.close(slice);
    else this.retiredSlices.set(slice.holdId, slice);
  }

  private close(slice: Slice): void {
    this.retiredSlices.delete(slice.holdId);
    const p = this.holds
      .close(slice.holdId, Money.max(slice.spent, 0))
      .catch((err: unknown) => this.logger.warn({ err, holdId: slice.holdId }, 'hold not closed; it expires by itself'))
      .finally(() => this.closing.delete(p));
    this.closing.add(p);
  }

  private async maintain(): Promise<void> {
    const now = Date.now();
    for (const [accountId, slice] of this.slices) if (now >= slice.retireAt) this.retire(accountId, slice);
    for (const [key, refused] of this.keyRefusals) if (now >= refused.until) this.keyRefusals.delete(key);
    try {
      await this.holds.expire();
    } catch (err) {
      this.logger.warn({ err }, 'expiring abandoned holds failed; will retry');
    }
  }
}
