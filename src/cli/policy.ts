import type { Command } from 'commander';
import { systemClock } from '../clock';
import { policyVersionsService, startPolicyPublished } from '../policyVersions/policyVersions.service';
import { cliActor, defined, print, staffCommand, withDb, withTemporal } from './shared';

const versionLine = (v: any) => `${String(v.version).padEnd(16)} ${v.material ? 'material' : 'minor   '} ${v.publishedAt}  ${String(v.acknowledgements ?? '-').padStart(6)} ack  ${v.title}`;

/**
 * Privacy policy versions (docs/customer-console.md#policy-changes). A
 * material version's owner emails start a workflow; Temporal is reached only
 * then, so publishing works without it and `policy resume-emails` starts the
 * emails later.
 */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('privacy policy versions: publish one, list them, resume the owners\u2019 emails');

  staffCommand(policy, 'list', 'published versions, newest first, with how many users acknowledged each').action(async (o) =>
    print(await withDb((db) => policyVersionsService({ db, clock: systemClock }).list()), o.json, (l: any[]) => (l.length ? l.map(versionLine).join('\n') : '(none)')),
  );

  staffCommand(policy, 'publish', 'publish a version; --material shows customers a notice until they acknowledge it and emails every account owner')
    .requiredOption('--version <version>', 'the version (1-40 letters, digits, dots, dashes, underscores), never reused')
    .requiredOption('--title <text>', 'the title (1-200 characters)')
    .requiredOption('--summary <text>', 'what changed (1-4000 characters)')
    .option('--url <https-url>', 'the full policy (https:// only)')
    .option('--material', 'a material change: notice and owner emails')
    .action(async (o) =>
      print(
        await withDb(async (db, cfg) => {
          const v = await policyVersionsService({ db, clock: systemClock }).publish(defined({ version: o.version, title: o.title, summary: o.summary, url: o.url, material: o.material === true }), cliActor());
          if (!v.material) return v;
          try {
            await withTemporal((client) => startPolicyPublished(client, cfg.temporal.taskQueue, { version: v.version }));
            return { ...v, workflowStarted: true };
          } catch (err) {
            process.stderr.write(`warning: the owners' emails did not start (${(err as Error).message}); run \`mixroute policy resume-emails ${v.version}\`\n`);
            return { ...v, workflowStarted: false };
          }
        }),
        o.json,
      ),
    );

  staffCommand(policy, 'resume-emails', "start a material version's owner emails again (after a failed start; idempotent)")
    .argument('<version>')
    .action(async (version: string, o) =>
      print(await withDb((db, cfg) => withTemporal((client) => policyVersionsService({ db, clock: systemClock, temporal: { client, taskQueue: cfg.temporal.taskQueue } }).resumeEmails(version))), o.json),
    );
}
