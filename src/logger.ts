import pino, { type Logger } from 'pino';
import type { Config } from './config';

/**
 * Logs carry metadata only. Request and response bodies are never passed to a
 * logger; the serializers below keep error objects to their name, message and
 * code so that an upstream error echoing a prompt cannot reach a log line
 * through `err.response` or similar fields.
 */
export function createLogger(config: Pick<Config, 'logLevel'>, name: string): Logger {
  return pino({
    name,
    level: config.logLevel,
    base: { pid: process.pid },
    serializers: {
      err: (err: unknown) => {
        if (err instanceof Error) {
          const code = (err as { code?: unknown }).code;
          return { type: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
        }
        return { type: typeof err };
      },
    },
  });
}

export type { Logger };
