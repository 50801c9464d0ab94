import type { Config } from '../config';

/**
 * `mixroute dev` at a terminal reads better pretty-printed, one line per
 * record with the part's name; anything that reads the output as data (a
 * pipe, a file, a test) and production get JSON lines. LOG_FORMAT decides when set.
 */
export function devLogFormat(config: Pick<Config, 'logFormat' | 'dev'>, isTTY = process.stdout.isTTY === true): 'json' | 'pretty' {
  if (config.logFormat) return config.logFormat;
  return isTTY && !config.dev.production ? 'pretty' : 'json';
}
