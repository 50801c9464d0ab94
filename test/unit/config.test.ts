import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, temporalAddress } from '../../src/config';

describe('config', () => {
  it('has documented defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/mixroute');
    expect(c.gatewayPort).toBe(8080);
    expect(c.adminPort).toBe(8081);
    expect(c.temporal.address).toBeUndefined();
    expect(temporalAddress(c)).toBe('127.0.0.1:7233');
    expect(c.temporal.taskQueue).toBe('mixroute');
  });

  it('uses TEMPORAL_ADDRESS when set and treats an empty one as unset', () => {
    expect(temporalAddress(loadConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233' }))).toBe('temporal.internal:7233');
    expect(loadConfig({ TEMPORAL_ADDRESS: '  ' }).temporal.address).toBeUndefined();
  });

  it('lists every invalid variable at once', () => {
    let error: unknown;
    try {
      loadConfig({ GATEWAY_PORT: 'eighty', ADMIN_PORT: '70000', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['GATEWAY_PORT', 'ADMIN_PORT', 'DATABASE_URL', 'LOG_LEVEL']) expect(problems).toContain(name);
  });

  it('paces usage expiry by default and takes RETENTION_PAUSE_FACTOR, 0 turning the pause off', () => {
    expect(loadConfig({}).retention.pauseFactor).toBe(0.3);
    expect(loadConfig({ RETENTION_PAUSE_FACTOR: '0' }).retention.pauseFactor).toBe(0);
    expect(() => loadConfig({ RETENTION_PAUSE_FACTOR: '-1' })).toThrow(ConfigError);
  });

  it('is frozen so nothing changes it after start', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.temporal)).toBe(true);
  });
});
