import { describe, expect, it } from 'vitest';
import { isDataError, safeErrorMessage } from '../../src/metering/dataErrors.rules';
import { MAX_TOKEN_COUNT, usageRecord } from '../../src/metering/record';

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('metering: what sets a record aside', () => {
  it('is a data exception or an integrity violation, never a connection or server failure', () => {
    expect(isDataError(pgError('22003', 'value out of range'))).toBe(true);
    expect(isDataError(pgError('22P02', 'invalid input syntax'))).toBe(true);
    expect(isDataError(pgError('23514', 'check violation'))).toBe(true);
    for (const code of ['08006', '08001', '57P01', '57P03', '53300', '40001', '42703', 'ECONNREFUSED', 'ETIMEDOUT']) {
      expect(isDataError(pgError(code, 'down')), code).toBe(false);
    }
    expect(isDataError(new Error('Knex: Timeout acquiring a connection'))).toBe(false);
  });

  it("keeps PostgreSQL's message without knex's statement and bindings, and without quoted values", () => {
    const err = pgError(
      '22P02',
      `INSERT INTO usage_events (...) SELECT ... FROM jsonb_populate_recordset(NULL::usage_events, '[{"user_agent":"Mozilla/5.0 secret"}]'::jsonb) - invalid input syntax for type uuid: "not a uuid at all"`,
    );
    const message = safeErrorMessage(err);
    expect(message).toBe('invalid input syntax for type uuid: "…"');
    expect(safeErrorMessage(pgError('22003', 'x - value "3000000000" is out of range for type integer'))).toBe('value "3000000000" is out of range for type integer');
  });
});

describe('metering: token counts', () => {
  const base = {
    requestId: 'r', occurredAt: '2026-12-04T00:00:00.000Z', finishedAt: '2026-12-04T00:00:01.000Z', accountId: 'a', apiKeyId: 'k', userId: null,
    endpoint: 'chat.completions' as const, model: 'm', provider: 'p', upstreamModel: 'u', priceId: null, statusCode: 200, errorType: null, stream: false,
    inputTokens: 3_000_000_000, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 7, reasoningTokens: 0, usageEstimated: false, cost: '1', currency: 'USD',
    latencyMs: 1, upstreamLatencyMs: 1, sourceIp: null, userAgent: null, gatewayInstance: 'g',
  };

  it('keeps a large count as it is and clamps an absurd or negative one, with the flag', () => {
    expect(usageRecord(base)).toMatchObject({ inputTokens: 3_000_000_000, usageClamped: false });
    expect(usageRecord({ ...base, inputTokens: 5e15 })).toMatchObject({ inputTokens: MAX_TOKEN_COUNT, usageClamped: true });
    expect(usageRecord({ ...base, outputTokens: -5 })).toMatchObject({ outputTokens: 0, usageClamped: true });
    expect(usageRecord({ ...base, reasoningTokens: Number.NaN })).toMatchObject({ reasoningTokens: 0, usageClamped: true });
  });
});
