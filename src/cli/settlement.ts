import type { Command } from 'commander';


import { print, withTemporal, staffCommand } from './shared';

/** Usage settlement (settlement shards). */
export function registerSettlement(program: Command): void {
  staffCommand(program.command('settlement').description('usage settlement (settlement shards)'), 'migrate', 'start every settlement shard with a sweep and retire the per-account metering workflows (safe to repeat)')
    .option('--terminate', 'terminate running metering:* workflows instead of letting each settle its account once more and complete')
    .option('--wait', 'wait (up to 5 minutes) until no metering:* workflow runs any more')
    .action(async (o) => {
      const { migrateSettlement } = await import('../metering/settlementMigration');
      print(
        await withTemporal((client, cfg) =>
          migrateSettlement(
            client,
            { taskQueue: cfg.temporal.taskQueue, shards: cfg.billing.settlementShards, sweepMs: cfg.billing.settleSweepMs, minIntervalMs: cfg.billing.settleMinIntervalMs },
            { terminate: !!o.terminate, wait: !!o.wait },
          ),
        ),
        !!o.json,
        (r) =>
          `settlement shards started or woken with a sweep: ${r.shards}\nmetering:* workflows running: ${r.meteringRunning} (draining: ${r.drained}, terminated: ${r.terminated})` +
          (r.meteringLeft === null ? '' : `\nstill running after the wait: ${r.meteringLeft}`),
      );
    });
}
