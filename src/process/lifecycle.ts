import type { Logger } from '../logger';

/**
 * Runs `stop` once on SIGINT or SIGTERM, or when the supervising parent goes
 * away (the IPC channel closes, so a crashed `mixroute dev` leaves no orphans),
 * then exits. A second signal exits at once.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>, graceMs = 15_000): void {
  let stopping = false;
  const shutdown = (reason: string) => {
    if (stopping) {
      logger.warn({ reason }, 'second stop request: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ reason }, 'stopping');
    const force = setTimeout(() => {
      logger.error({ graceMs }, 'did not stop within the grace period: exiting');
      process.exit(1);
    }, graceMs);
    force.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  if (process.send) process.once('disconnect', () => shutdown('parent exited'));
}
