import { Router } from 'express';
import type { Logger } from '../logger';

/**
 * /healthz: the process is up (for restarts). /readyz: its dependencies answer
 * (for load balancers), each check bounded by a timeout so a hung dependency
 * makes the probe fail rather than hang. The answer names the failing check
 * but not its error: /readyz is unauthenticated, and a dependency's error text
 * can carry host names, user names or versions. The error goes to the log.
 */
export type ReadinessCheck = () => Promise<void>;

export function healthRouter(checks: Record<string, ReadinessCheck>, timeoutMs: number, logger?: Logger): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), timeoutMs, `${name} did not answer within ${timeoutMs} ms`);
          return [name, { status: 'ok' }] as const;
        } catch (err) {
          logger?.warn({ check: name, error: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'readiness check failing');
          return [name, { status: 'failing' }] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r.status === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) });
  });
  return router;
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
