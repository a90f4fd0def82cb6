import { existsSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { isValidUserName, setAccountOptions, type AccountOptions } from '../../auth/index.js';
import { parseDirectoryCap } from '../../cap/index.js';
import { InvalidInputError } from '../../errors.js';
import { openUsageLedger } from '../../node/open.js';
import { countTree } from '../../quota/index.js';
import { loadNodeConfig, out, withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';
import { applyQuota, existingRoot } from '../accounts.js';
import { withHomes } from './account-homes.js';

interface AccountSetArgs extends GlobalArgs {
  user: string;
  quota?: string;
  maxFiles?: string;
  recount?: boolean;
  appendOnly?: boolean;
  snapshots?: boolean;
}

export const accountSetCommand: CommandModule<GlobalArgs, AccountSetArgs> = {
  command: 'set <user>',
  describe:
    "Set USER's quota (bytes and files) in the quotas file, make USER append-only or not, give USER /.snapshots/ or not, and/or recount USER's usage",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('user', { type: 'string', demandOption: true, describe: 'user name (need not be in the accounts file)' })
      .option('quota', { type: 'string', describe: 'byte quota: bytes or K, M, G, T (powers of 1024); none removes it' })
      .option('max-files', { type: 'string', describe: 'most files; none removes the limit' })
      .option('recount', {
        type: 'boolean',
        describe: "count USER's usage now by walking their tree (accounts file, or the home named USER)",
      })
      .option('append-only', {
        type: 'boolean',
        describe: "rewrite all of USER's accounts lines with (or, as --no-append-only, without) the append-only option",
      })
      .option('snapshots', {
        type: 'boolean',
        describe: "rewrite all of USER's accounts lines without (or, as --no-snapshots, with) the no-snapshots option",
      })
      .check((a) => {
        const options = a['append-only'] !== undefined || a.snapshots !== undefined;
        if (a.quota === undefined && a['max-files'] === undefined && a.recount !== true && !options)
          throw new UsageError('give --quota, --max-files, --[no-]append-only, --[no-]snapshots or --recount');
        return true;
      })
      .example('$0 account set alice --quota 10G --max-files 100000', 'set both limits')
      .example('$0 account set alice --quota none', 'remove the byte limit')
      .example('$0 account set backup --append-only', 'clients of backup can no longer change or remove existing files')
      .example('$0 account set mirror --no-snapshots', 'logins of mirror no longer see /.snapshots/')
      .example('$0 account set alice --recount', 'recount after changes made around the gateway') as unknown as Argv<AccountSetArgs>,
  handler: async (args) => {
    if (!isValidUserName(args.user)) throw new UsageError('invalid user name (allowed: A-Z a-z 0-9 . _ @ + -, 1 to 64 characters)');
    if (args.appendOnly !== undefined || args.snapshots !== undefined) {
      const config = await loadNodeConfig(args);
      const change: Partial<AccountOptions> = {};
      const said: string[] = [];
      if (args.appendOnly !== undefined) {
        change.appendOnly = args.appendOnly;
        said.push(args.appendOnly ? 'append-only' : 'not append-only');
      }
      if (args.snapshots !== undefined) {
        change.noSnapshots = !args.snapshots;
        said.push(args.snapshots ? '/.snapshots/ shown' : 'no /.snapshots/');
      }
      const changed = await setAccountOptions(config.sftpd.accountsFile, args.user, change);
      // Sessions already open keep the options they logged in with (as they keep their root).
      await out(
        `${args.user}: ${said.join(', ')} (${changed} line${changed === 1 ? '' : 's'} changed; open sessions keep what they logged in with)\n`,
      );
    }
    if (args.quota !== undefined || args.maxFiles !== undefined) await out(`${await applyQuota(args)}\n`);
    if (args.recount === true) {
      const config = await loadNodeConfig(args);
      let rootCap = await existingRoot(config.sftpd.accountsFile, args.user);
      if (rootCap === undefined && existsSync(config.sftpd.homesSecretFile)) {
        const home = await withHomes(args, (homes) => homes.get(args.user));
        if (home.kind === 'live') rootCap = home.cap;
      }
      if (rootCap === undefined) {
        throw new InvalidInputError(
          `${args.user} is neither in the accounts file nor the name of a live home; the gateway counts other users at their next upload`,
        );
      }
      const root = parseDirectoryCap(rootCap);
      const usage = await withNode(args, ({ tree }) => countTree(tree, root));
      // A newer countedAt than the gateway's: a running gateway adopts this count at its next look.
      const ledger = await openUsageLedger(config);
      try {
        await ledger.set(args.user, { ...usage, countedAt: Date.now() });
      } finally {
        await ledger.close();
      }
      await out(`${args.user}: ${usage.bytes} bytes in ${usage.files} files\n`);
    }
  },
};
