import type { Command } from 'commander';
import { consentService } from '../customerConsole/consent.service';
import { print, staffCommand, UsageError, withDb } from './shared';

/**
 * `mixroute analytics page-views [--days N]`: the customer console's page
 * views per UTC day and page, counted only for users who agreed to analytics
 * (docs/customer-console.md#cookies-and-analytics). Aggregates only: there is
 * nothing per user to show.
 */
export function registerPageViews(program: Command): void {
  const analytics = program.commands.find((c) => c.name() === 'analytics') ?? program.command('analytics').description('first-party page analytics of the customer console');
  staffCommand(analytics, 'page-views', 'page views per UTC day and page (route), last N days (default 30, at most 400), busiest first per day')
    .option('--days <n>', 'how many UTC days, today included', '30')
    .action(async (o: { days: string; json?: boolean }) => {
      const days = Number(o.days);
      if (!/^[0-9]{1,3}$/.test(o.days) || days < 1 || days > 400) throw new UsageError('--days must be a whole number from 1 to 400');
      print(await withDb((db) => consentService({ db }).pageViews(days)), !!o.json);
    });
}
