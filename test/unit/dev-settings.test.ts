import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { devLogFormat } from '../../src/dev/logFormat';
import { estimateTokens } from '../../src/demo/provider';

describe('dev settings', () => {
  it('sets up the demo by default, not with DEV_DEMO=0, and never with NODE_ENV=production', () => {
    expect(loadConfig({}).dev.demo).toBe(true);
    expect(loadConfig({ DEV_DEMO: '0' }).dev.demo).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production' }).dev.demo).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', DEV_DEMO: '1' }).dev.demo).toBe(false);
    // Any case is production.
    for (const NODE_ENV of ['Production', 'PRODUCTION', ' production ']) {
      expect(loadConfig({ NODE_ENV }).dev).toMatchObject({ demo: false, production: true });
    }
    expect(loadConfig({ NODE_ENV: 'development' }).dev).toMatchObject({ demo: true, production: false });
    expect(() => loadConfig({ DEV_DEMO: 'yes' })).toThrow(/DEV_DEMO/);
  });

  it('pretty-prints dev logs at a terminal only, JSON otherwise; LOG_FORMAT decides when set', () => {
    expect(devLogFormat(loadConfig({}), true)).toBe('pretty');
    expect(devLogFormat(loadConfig({}), false)).toBe('json');
    expect(devLogFormat(loadConfig({ NODE_ENV: 'production' }), true)).toBe('json');
    expect(devLogFormat(loadConfig({ LOG_FORMAT: 'json' }), true)).toBe('json');
    expect(devLogFormat(loadConfig({ LOG_FORMAT: 'pretty' }), false)).toBe('pretty');
    expect(loadConfig({}).logFormat).toBeUndefined();
  });

  it('the demo provider counts about four characters a token, at least one', () => {
    expect(estimateTokens('')).toBe(1);
    expect(estimateTokens('Hello, world')).toBe(3);
  });
});
