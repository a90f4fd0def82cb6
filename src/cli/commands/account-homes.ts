import { existsSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { listAccounts } from '../../auth/index.js';
import { NotFoundError } from '../../errors.js';
import { HomeStore, MAX_HOME_NAME_BYTES } from '../../homes/index.js';
import type { OpenNode } from '../../node/open.js';
import { readHomesSecret } from '../../node/secrets.js';
import { formatQuotaLine, readQuotas } from '../../quota/index.js';
import { out, withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';

/**
 * The homes a user directory's users get on first login (src/homes), seen
 * from the command line: `account show` (never a cap), `account export`
 * (the cap: a secret, on stdout only) and `account revoke` (logins refused,
 * or with --new-home a fresh, empty root). They work while gateways run:
 * homes live in the slot store, reached as every command reaches it.
 */

/** Runs `fn` with the node open and its homes (the homes secret must exist). */
export async function withHomes<T>(args: GlobalArgs, fn: (homes: HomeStore, node: OpenNode) => Promise<T>): Promise<T> {
  return withNode(args, async (node) => {
    const homes = new HomeStore({
      slots: node.slots,
      secret: await readHomesSecret(node.config.sftpd.homesSecretFile),
      createRoot: async (options) => (await node.tree.createDirectory(options)).toString(),
    });
    return fn(homes, node);
  });
}

/** A home's name: a user name, or (aws-transfer) the HomeDirectory its users' answers name. */
function checkName(name: string): string {
  if (name === '' || Buffer.byteLength(name) > MAX_HOME_NAME_BYTES)
    throw new UsageError(`a home name is 1 to ${MAX_HOME_NAME_BYTES} bytes`);
  return name;
}

interface NameArgs extends GlobalArgs {
  name: string;
}

export const accountShowCommand: CommandModule<GlobalArgs, NameArgs> = {
  command: 'show <name>',
  describe: 'Show a user: accounts-file lines, auto-created home (state and date, never the cap) and quota',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'user name, or a home name (an AWS HomeDirectory)' })
      .example('$0 account show alice', 'accounts file, home, quota') as unknown as Argv<NameArgs>,
  handler: async (args) => {
    const name = checkName(args.name);
    await withNode(args, async (node) => {
      const { config } = node;
      const lines: string[] = [`name          ${name}`];
      const { accounts } = await listAccounts(config.sftpd.accountsFile).catch(() => ({ accounts: [] }));
      const account = accounts.find((a) => a.user === name);
      lines.push(
        `accounts file ${account === undefined ? 'not named' : `${account.keys.length} key${account.keys.length === 1 ? '' : 's'}${account.hasPassword ? ', password' : ''}${account.appendOnly ? ', append-only' : ''}${account.noSnapshots ? ', no-snapshots' : ''}`}`,
      );
      if (existsSync(config.sftpd.homesSecretFile)) {
        const homes = new HomeStore({
          slots: node.slots,
          secret: await readHomesSecret(config.sftpd.homesSecretFile),
          createRoot: () => Promise.reject(new Error('show creates nothing')),
        });
        const home = await homes.get(name);
        lines.push(
          `home          ${
            home.kind === 'absent'
              ? 'none (made at first login through a user directory)'
              : home.kind === 'live'
                ? `live since ${home.since.toISOString()} (version ${home.seq})`
                : `revoked at ${home.since.toISOString()} (logins refused; capstan account revoke --new-home gives a fresh one)`
          }`,
        );
      } else lines.push(`home          none (no homes secret at ${config.sftpd.homesSecretFile})`);
      const quota = (await readQuotas(config.quota.file)).get(name);
      lines.push(`quota         ${quota === undefined ? 'none' : formatQuotaLine(name, quota).slice(name.length + 1) || 'none'}`);
      await out(lines.join('\n') + '\n');
    });
  },
};

interface ExportArgs extends GlobalArgs {
  name?: string;
  all: boolean;
}

export const accountExportCommand: CommandModule<GlobalArgs, ExportArgs> = {
  command: 'export [name]',
  describe: "Print an auto-created home's root cap (a secret: full access), or with --all every live home as NAME<TAB>CAP",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', describe: 'home name (the user name; for aws-transfer the HomeDirectory)' })
      .option('all', { type: 'boolean', default: false, describe: 'every live home, one NAME<TAB>CAP line each' })
      .check((a) => {
        if ((a.name === undefined) === (a.all !== true)) throw new UsageError('give a home name or --all');
        return true;
      })
      .example('$0 account export alice', "alice's root cap, e.g. for capstan pin or an accounts line")
      .example(
        '$0 account export --all > homes.txt',
        'every live home (keep the file as secret as private/)',
      ) as unknown as Argv<ExportArgs>,
  handler: async (args) => {
    await withHomes(args, async (homes) => {
      if (args.all) {
        const unreadable: string[] = [];
        for await (const home of homes.list({ onUnreadable: (si) => unreadable.push(si) })) {
          if (home.state.kind === 'live') await out(`${home.name}\t${home.state.cap}\n`);
        }
        for (const si of unreadable) process.stderr.write(`capstan: home slot ${si} does not open with this homes secret\n`);
        return;
      }
      const name = checkName(args.name!);
      const home = await homes.get(name);
      if (home.kind === 'absent') throw new NotFoundError(`no home named ${name}`);
      if (home.kind === 'revoked') throw new NotFoundError(`the home ${name} is revoked; its cap is gone`);
      await out(`${home.cap}\n`);
    });
  },
};

interface RevokeArgs extends GlobalArgs {
  name: string;
  newHome: boolean;
}

export const accountRevokeCommand: CommandModule<GlobalArgs, RevokeArgs> = {
  command: 'revoke <name>',
  describe: 'Revoke an auto-created home: logins through the user directory are refused (or, with --new-home, get a fresh, empty root)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'home name (the user name; for aws-transfer the HomeDirectory)' })
      .option('new-home', { type: 'boolean', default: false, describe: 'give the home a fresh, empty root instead of refusing logins' })
      .example('$0 account export alice >> private/pins && $0 account revoke alice', 'keep her files (pinned), refuse her logins')
      .example('$0 account revoke alice --new-home', 'her next login starts from an empty root') as unknown as Argv<RevokeArgs>,
  handler: async (args) => {
    const name = checkName(args.name);
    await withHomes(args, async (homes) => {
      if (args.newHome) {
        await homes.renew(name);
        await out(`${name}: a fresh, empty home; the previous root is no longer reachable through it\n`);
        return;
      }
      if (!(await homes.revoke(name))) throw new NotFoundError(`no home named ${name}`);
      await out(`${name}: home revoked; logins through the user directory are refused\n`);
    });
    process.stderr.write(
      'capstan: the previous root is forgotten: unless its cap was exported and pinned (capstan pin), capstan gc frees its files\n',
    );
  },
};
