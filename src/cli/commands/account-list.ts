import type { Argv, CommandModule } from 'yargs';
import { listAccounts } from '../../auth/index.js';
import { loadNodeConfig, out, type GlobalArgs } from '../context.js';
import { jsonOption, outJson } from '../json.js';

interface AccountListArgs extends GlobalArgs {
  showCaps: boolean;
  json: boolean;
}

export const accountListCommand: CommandModule<GlobalArgs, AccountListArgs> = {
  command: 'list',
  describe: 'List accounts: one tab-separated line per key or password (root caps only with --show-caps)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('show-caps', { type: 'boolean', default: false, describe: 'also print each root cap (a secret: it is full access)' })
      .option('json', jsonOption('one line per account: user, keys, password, and rootCap with --show-caps (docs/cli-json.md)'))
      .example('$0 account list', 'USER<TAB>key<TAB>TYPE<TAB>FINGERPRINT, USER<TAB>password, USER<TAB>option<TAB>append-only|no-snapshots')
      .example('$0 account list --json | jq -r .user', 'just the user names') as unknown as Argv<AccountListArgs>,
  handler: async (args) => {
    const config = await loadNodeConfig(args);
    const { accounts, errors } = await listAccounts(config.sftpd.accountsFile, { includeCaps: args.showCaps });
    for (const e of errors) process.stderr.write(`capstan: accounts line ${e.line} refused: ${e.message}\n`);
    for (const account of accounts) {
      if (args.json) {
        await outJson({
          user: account.user,
          keys: account.keys.map((k) => ({ type: k.type, fingerprint: k.fingerprint })),
          password: account.hasPassword,
          appendOnly: account.appendOnly,
          noSnapshots: account.noSnapshots,
          // Only with --show-caps, as in the tab-separated form; undefined otherwise, which JSON leaves out.
          rootCap: account.rootCap,
        });
        continue;
      }
      for (const key of account.keys) await out(`${account.user}\tkey\t${key.type}\t${key.fingerprint}\n`);
      if (account.hasPassword) await out(`${account.user}\tpassword\n`);
      if (account.appendOnly) await out(`${account.user}\toption\tappend-only\n`);
      if (account.noSnapshots) await out(`${account.user}\toption\tno-snapshots\n`);
      if (account.rootCap !== undefined) await out(`${account.user}\troot\t${account.rootCap}\n`);
    }
  },
};
