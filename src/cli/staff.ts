import type { Command } from 'commander';
import { staffService } from '../staff/staff.service';
import { print, humanize, withDb, defined, staffCommand } from './shared';

/** Tokens for the admin API. */
export function registerStaffTokens(program: Command): void {
  const staffTokens = program.command('staff-tokens').description('tokens for the admin API');
  staffCommand(staffTokens, 'create', 'create a staff token; printed once, only its hash is stored')
    .requiredOption('--role <role>', 'billing | compliance | admin')
    .option('--name <name>', 'who or what holds it')
    .action(async (o) =>
      print(await withDb((db) => staffService({ db }).createStaffToken(defined({ role: o.role, name: o.name }))), !!o.json, (r) =>
        `${humanize({ ...r, token: undefined })}\n\ntoken: ${r.token}\n(store it now: it is not shown again)`,
      ),
    );
  staffCommand(staffTokens, 'revoke', 'revoke a staff token (idempotent)')
    .argument('<id>', 'token id')
    .action(async (id: string, o) => print(await withDb((db) => staffService({ db }).revokeStaffToken({ id })), !!o.json));
}

/** People who sign in to the staff console. */
export function registerStaffUsers(program: Command): void {
  staffCommand(program.command('staff-users').description('people who sign in to the staff console'), 'create', 'add a staff member (email and password sign-in to /console)')
    .requiredOption('--email <email>', 'sign-in email')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--role <role>', 'billing | compliance | admin')
    .option('--password <password>', 'initial password (at least 12 characters); without it, read from standard input (keeps it out of the shell history)')
    .action(async (o) => {
      let password: string = o.password ?? '';
      if (!o.password) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      }
      print(await withDb((db) => staffService({ db }).createUser({ email: o.email, name: o.name, role: o.role, password })), !!o.json);
    });
}
