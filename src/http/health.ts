import { Router } from 'express';

/**
 * /healthz: the process is up (for restarts). /readyz: its dependencies answer
 * (for load balancers), each check bounded by a timeout so a hung dependency
 * makes the probe fail rather than hang.
 */
export type ReadinessCheck = () => Promise<void>;

export function healthRouter(checks: Record<string, ReadinessCheck>, timeoutMs: number): Router {
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
          return [name, { status: 'failing', error: err instanceof Error ? err.message.split('\n')[0] : 'failed' }] as const;
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
