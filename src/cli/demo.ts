import type { Command } from 'commander';


import { getConfig, UsageError, print, staffCommand } from './shared';

/** The local demo of `mixroute dev`. */
export function registerDemo(program: Command): void {
  staffCommand(program.command('demo').description("the local demo of `mixroute dev` (DEV_DEMO)"), 'traffic', 'send a minute of mixed requests to the local gateway with the demo account, then stop')
    .option('--seconds <n>', 'how long, at most 300', '60')
    .option('--rps <n>', 'requests per second, at most 50', '4')
    .option('--key <key>', "an API key to use (default: a key of the demo account made for the run and revoked after it)")
    .action(async (o) => {
      if (getConfig().dev.production) throw new UsageError('demo traffic does not run with NODE_ENV=production');
      const { demoTrafficCommand } = await import('../demo/traffic');
      const say = (line: string) => process.stderr.write(`[demo] ${line}\n`);
      print(await demoTrafficCommand(getConfig(), { seconds: o.seconds, rps: o.rps, key: o.key }, say), !!o.json, (r) =>
        `sent ${r.sent} requests to ${r.gateway} in ${r.seconds} s; by status: ${Object.entries(r.byStatus).map(([k, v]) => `${k} ${v}`).join(', ')}; by model: ${Object.entries(r.byModel).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      );
    });
}
