import type { Argv, CommandModule } from 'yargs';
import { removeUser } from '../../auth/index.js';
import { NotFoundError } from '../../errors.js';
import { loadNodeConfig, out, type GlobalArgs } from '../context.js';

interface AccountRemoveArgs extends GlobalArgs {
  user: string;
}

export const accountRemoveCommand: CommandModule<GlobalArgs, AccountRemoveArgs> = {
  command: 'remove <user>',
  aliases: ['rm'],
  describe: 'Remove every line of USER from the accounts file (a running gateway notices without a restart)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('user', { type: 'string', demandOption: true })
      .example('$0 account remove alice', 'alice can no longer log in; her files stay') as unknown as Argv<AccountRemoveArgs>,
  handler: async (args) => {
    const config = await loadNodeConfig(args);
    const removed = await removeUser(config.sftpd.accountsFile, args.user);
    if (removed === 0) throw new NotFoundError(`no account named ${args.user}`);
    await out(`removed ${removed} line${removed === 1 ? '' : 's'} of ${args.user}\n`);
  },
};
