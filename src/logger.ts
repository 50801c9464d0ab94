import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config';

/**
 * Logs carry metadata only. Request and response bodies are never passed to a
 * logger; the serializers below keep error objects to their name, message and
 * code so that an upstream error echoing a prompt cannot reach a log line
 * through `err.response` or similar fields.
 */
export function createLogger(config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logFormat'>>, name: string): Logger {
  const options: pino.LoggerOptions = {
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
  };
  const pretty = config.logFormat === 'pretty' ? prettyStream() : undefined;
  if (!pretty) return pino(options);
  // pino-pretty always prints `err` as an indented block; flattened, it stays on the record's one line.
  const flattenErr = (o: Record<string, unknown>) => {
    const { err, ...rest } = o;
    if (err === undefined) return o;
    // The same three facts the err serializer keeps, and nothing else.
    const e = err as { name?: unknown; type?: unknown; message?: unknown; code?: unknown };
    if (!(err instanceof Error) && !(err && typeof err === 'object')) return { ...rest, errType: typeof err };
    const type = err instanceof Error ? err.name : e.type;
    return { ...rest, errType: type, ...(typeof e.message === 'string' ? { errMessage: e.message } : {}), ...(typeof e.code === 'string' ? { errCode: e.code } : {}) };
  };
  return pino({ ...options, formatters: { log: flattenErr } }, pretty);
}

/**
 * pino-pretty, in this thread (no transport worker), one line per record:
 * `17:02:11.204 INFO (gateway): listening {"port":8080}`. Loaded only when
 * asked for, so the JSON path never pays for it; missing, JSON it is.
 */
function prettyStream(): DestinationStream | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (opts: object) => DestinationStream;
    return pretty({ colorize: true, singleLine: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', sync: true });
  } catch {
    return undefined;
  }
}

export type { Logger };
