import type { ServerResponse } from 'node:http';
import type { NormalizedUsage } from '../metering/usage.rules';
import type { RecordEndpoint } from '../metering/record';
import { usageRecord, type UsageRecord } from '../metering/record';
import type { Reservation } from './balanceGate';
import type { Caller } from './keyCache';

/**
 * One per authenticated request: collects metadata as the request goes and
 * emits exactly one metering record, whichever way the request ends (success,
 * upstream error, client abort, our own 4xx). `finish` is idempotent.
 */
export interface MeterOutcome {
  statusCode: number;
  errorType: string | null;
  usage: NormalizedUsage;
  usageEstimated: boolean;
  cost: string;
}

export class Meter {
  endpoint: RecordEndpoint | null = null;
  model: string | null = null;
  provider: string | null = null;
  upstreamModel: string | null = null;
  priceId: string | null = null;
  currency = 'USD';
  stream = false;
  upstreamMs: number | null = null;
  reservation: Reservation | null = null;
  /** The client's response: its end is held back until the record is in the journal. */
  res: ServerResponse | null = null;
  private finished = false;

  constructor(
    readonly requestId: string,
    readonly caller: Caller,
    readonly startedAt: number, // performance.now()
    readonly startedWall: Date,
    readonly sourceIp: string | null,
    readonly userAgent: string | null,
    private readonly instance: string,
    private readonly emit: (record: UsageRecord, overheadMs: number, reservation: Reservation | null, res: ServerResponse | null) => void,
  ) {}

  get isFinished(): boolean {
    return this.finished;
  }

  finish(outcome: MeterOutcome): void {
    if (this.finished) return;
    this.finished = true;
    const latencyMs = performance.now() - this.startedAt;
    const record = usageRecord({
      requestId: this.requestId,
      occurredAt: this.startedWall.toISOString(),
      finishedAt: new Date(this.startedWall.getTime() + latencyMs).toISOString(),
      accountId: this.caller.accountId,
      apiKeyId: this.caller.apiKeyId,
      userId: this.caller.userId,
      endpoint: this.endpoint ?? 'chat.completions',
      model: this.model,
      provider: this.provider,
      upstreamModel: this.upstreamModel,
      priceId: this.priceId,
      holdId: this.reservation?.holdId ?? null,
      statusCode: outcome.statusCode,
      errorType: outcome.errorType,
      stream: this.stream,
      inputTokens: outcome.usage.inputTokens,
      cacheReadTokens: outcome.usage.cacheReadTokens,
      cacheWriteTokens: outcome.usage.cacheWriteTokens,
      cacheWrite1hTokens: outcome.usage.cacheWrite1hTokens ?? 0,
      outputTokens: outcome.usage.outputTokens,
      reasoningTokens: outcome.usage.reasoningTokens,
      usageEstimated: outcome.usageEstimated,
      usageInvalid: outcome.usage.invalid === true,
      cost: outcome.cost,
      currency: this.currency,
      latencyMs,
      upstreamLatencyMs: this.upstreamMs,
      sourceIp: this.sourceIp,
      userAgent: this.userAgent,
      gatewayInstance: this.instance,
    });
    this.emit(record, latencyMs - (this.upstreamMs ?? 0), this.reservation, this.res);
  }
}
