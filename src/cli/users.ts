import type { Command } from 'commander';
import { customerConsoleService } from '../customerConsole/customerConsole.service';
import { print, staffCommand, UsageError, withDb } from './shared';

/**
 * `mixroute users set-password <userId>`: the password a customer user signs
 * in to the customer console (/app) with, read from standard input (keeps it
 * out of the shell history), as `staff-users create` does. Ends the user's
 * open console sessions. Added to the `users` group of ./accounts.ts.
 */
export function registerUserPasswords(program: Command): void {
  const users = program.commands.find((c) => c.name() === 'users') ?? program.command('users').description('people of an account');
  staffCommand(users, 'set-password', 'set the password a user signs in to the customer console (/app) with, read from standard input; ends their sessions')
    .argument('<userId>', 'user id')
    .action(async (userId: string, o) => {
      if (process.stdin.isTTY) process.stderr.write('password (at least 12 characters), then Enter and Ctrl-D: ');
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      if (!password) throw new UsageError('no password on standard input');
      print(await withDb((db) => customerConsoleService({ db }).setPassword(userId, password)), !!o.json);
    });
}
