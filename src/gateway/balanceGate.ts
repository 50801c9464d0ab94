import type Decimal from 'decimal.js';
import { Money } from '../shared/money.rules';
import type { HoldsService } from '../ledger/holds.service';
import { needsReservation, sliceCovers, sliceRetireAt } from '../ledger/balanceGate.rules';
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
 */
export interface Reservation {
  accountId: string;
  holdId: string;
  reserved: Decimal;
}

interface Slice {
  holdId: string;
  amount: Decimal;
  spent: Decimal;
  inflight: number;
  retireAt: number;
  retired: boolean;
}

export type ReserveOutcome = { ok: true; reservation: Reservation | null } | { ok: false; reason: 'insufficient' | 'unavailable' };

export interface BalanceGateOptions {
  holder: string;
  slice: Decimal;
  ttlMs: number;
  overdraftAllowance: Decimal;
  /** After a refusal, how long the account is refused without asking the database again. */
  refusalCacheMs?: number;
}

export class BalanceGate {
  private readonly slices = new Map<string, Slice>();
  private readonly acquiring = new Map<string, Promise<void>>();
  private readonly refusedUntil = new Map<string, number>();
  private readonly closing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly holds: HoldsService,
    private readonly opts: BalanceGateOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.maintain(), Math.max(250, Math.floor(this.opts.ttlMs / 6)));
    this.timer.unref();
  }

  /** Reserves `maxCost` for one request; a request that can cost nothing needs no reservation. */
  async reserve(accountId: string, maxCost: Decimal): Promise<ReserveOutcome> {
    if (!needsReservation(maxCost)) return { ok: true, reservation: null };
    for (let attempt = 0; attempt < 3; attempt++) {
      const taken = this.takeFromSlice(accountId, maxCost);
      if (taken) return { ok: true, reservation: taken };
      if ((this.refusedUntil.get(accountId) ?? 0) > Date.now()) return { ok: false, reason: 'insufficient' };
      // One acquisition per account at a time; others wait for it and retry the slice.
      const pending = this.acquiring.get(accountId);
      if (pending) {
        await pending;
        continue;
      }
      let outcome: 'ok' | 'insufficient' | 'unavailable' = 'ok';
      const acquisition = (async () => {
        const old = this.slices.get(accountId);
        if (old) this.retire(accountId, old);
        try {
          const grant = await this.holds.acquire({
            accountId,
            need: maxCost,
            slice: this.opts.slice,
            holder: this.opts.holder,
            ttlMs: this.opts.ttlMs,
            overdraftAllowance: this.opts.overdraftAllowance,
          });
          if (!grant) {
            this.refusedUntil.set(accountId, Date.now() + (this.opts.refusalCacheMs ?? 1_000));
            outcome = 'insufficient';
            return;
          }
          this.refusedUntil.delete(accountId);
          this.slices.set(accountId, {
            holdId: grant.holdId,
            amount: grant.amount,
            spent: new Money(0),
            inflight: 0,
            retireAt: sliceRetireAt(Date.now(), this.opts.ttlMs),
            retired: false,
          });
        } catch (err) {
          this.logger.warn({ err }, 'balance hold not acquired: database unavailable');
          outcome = 'unavailable';
        }
      })().finally(() => this.acquiring.delete(accountId));
      this.acquiring.set(accountId, acquisition);
      await acquisition;
      if (outcome !== 'ok') return { ok: false, reason: outcome };
    }
    return { ok: false, reason: 'insufficient' };
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

  private takeFromSlice(accountId: string, maxCost: Decimal): Reservation | undefined {
    const slice = this.slices.get(accountId);
    if (!slice || slice.retired || Date.now() >= slice.retireAt) return undefined;
    if (!sliceCovers(slice, maxCost)) return undefined;
    slice.spent = slice.spent.plus(maxCost);
    slice.inflight += 1;
    return { accountId, holdId: slice.holdId, reserved: maxCost };
  }

  private readonly retiredSlices = new Map<string, Slice>();

  private findSlice(r: Reservation): Slice | undefined {
    const current = this.slices.get(r.accountId);
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
    try {
      await this.holds.expire();
    } catch (err) {
      this.logger.warn({ err }, 'expiring abandoned holds failed; will retry');
    }
  }
}
