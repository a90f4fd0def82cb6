import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { accountAddCommand } from './account-add.js';
import { accountExportCommand, accountRevokeCommand, accountShowCommand } from './account-homes.js';
import { accountHashPasswordCommand } from './account-hash-password.js';
import { accountListCommand } from './account-list.js';
import { accountRemoveCommand } from './account-remove.js';
import { accountSetCommand } from './account-set.js';

export const accountCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'account <command>',
  aliases: ['accounts'],
  describe: 'Manage the accounts file, quotas and auto-created homes: add, list, remove, set, hash-password, show, export, revoke',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(accountAddCommand)
      .command(accountListCommand)
      .command(accountRemoveCommand)
      .command(accountSetCommand)
      .command(accountHashPasswordCommand)
      .command(accountShowCommand)
      .command(accountExportCommand)
      .command(accountRevokeCommand)
      .demandCommand(1, 'name an account command: add, list, remove, set, hash-password, show, export or revoke'),
  handler: () => undefined,
};
