import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { accountAddCommand } from './account-add.js';
import { accountHashPasswordCommand } from './account-hash-password.js';
import { accountListCommand } from './account-list.js';
import { accountRemoveCommand } from './account-remove.js';
import { accountSetCommand } from './account-set.js';

export const accountCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'account <command>',
  aliases: ['accounts'],
  describe: 'Manage the accounts file and quotas: add, list, remove, set, hash-password',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(accountAddCommand)
      .command(accountListCommand)
      .command(accountRemoveCommand)
      .command(accountSetCommand)
      .command(accountHashPasswordCommand)
      .demandCommand(1, 'name an account command: add, list, remove, set or hash-password'),
  handler: () => undefined,
};
