import type { Argv, CommandModule } from 'yargs';
import { listAccounts } from '../../auth/index.js';
import { parseCap } from '../../cap/index.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { loadNodeConfig, out, withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';
import { buildExchange, writableRoot, type ExchangeAccount } from '../exchange-layout.js';
import { jsonOption, outJson } from '../json.js';

interface ExchangeArgs extends GlobalArgs {
  processor: string;
  senders: string[];
  json: boolean;
}

/** What `exchange --json` prints per account (docs/cli-json.md): paths made now, never caps. */
export interface ExchangeJsonLine {
  user: string;
  role: 'processor' | 'sender';
  created: string[];
}

export const exchangeCommand: CommandModule<GlobalArgs, ExchangeArgs> = {
  command: 'exchange <processor> <senders..>',
  describe:
    "Set up file exchange between accounts: each sender's input/ (write) and output/ (read-only), the processor's inboxes/SENDER/ and outboxes/SENDER/",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('processor', { type: 'string', demandOption: true, describe: 'the processing account (it must exist)' })
      .positional('senders', { type: 'string', array: true, demandOption: true, describe: 'sender accounts (they must exist)' })
      .option('json', jsonOption('one line per account with the paths made now (docs/cli-json.md)'))
      .example('$0 exchange proc alice bob', 'the layout for two senders and one processor')
      .example('$0 exchange proc carol', 'add a sender later: nobody else is touched') as unknown as Argv<ExchangeArgs>,
  handler: async (args) => {
    const senders = [...new Set(args.senders)];
    if (senders.includes(args.processor)) throw new UsageError(`${args.processor} cannot be both the processor and a sender`);
    const config = await loadNodeConfig(args);
    const { accounts } = await listAccounts(config.sftpd.accountsFile, { includeCaps: true });
    const account = (user: string): ExchangeAccount => {
      const found = accounts.find((a) => a.user === user);
      if (found?.rootCap === undefined) throw new NotFoundError(`no account ${user} (add it first: capstan account add ${user} …)`);
      return { user, root: writableRoot(user, parseCap(found.rootCap)) };
    };
    const processor = account(args.processor);
    const senderAccounts = senders.map(account);
    // An account whose root another account also has (account add --root) would share its input/ and output/,
    // or the processor's inboxes, with that account: refused before anything is made.
    for (const { user, root } of [processor, ...senderAccounts]) {
      const other = accounts.find((a) => a.user !== user && a.rootCap === root.toString());
      if (other !== undefined)
        throw new InvalidInputError(`${user} and ${other.user} have the same root directory; each needs one of its own`);
    }
    await withNode(args, async ({ tree }) => {
      const made = await buildExchange(tree, processor, senderAccounts);
      if (args.json) {
        const line = (user: string, role: ExchangeJsonLine['role'], created: string[]): ExchangeJsonLine => ({ user, role, created });
        await outJson(line(processor.user, 'processor', made.processor));
        for (const [user, created] of made.senders) await outJson(line(user, 'sender', created));
        return;
      }
      for (const path of made.processor) await out(`created ${path}\n`);
      for (const [user, created] of made.senders) {
        for (const path of created) await out(`created ${path}\n`);
        await out(`${user}: input/ and output/ ready; ${processor.user} sees them as inboxes/${user}/ and outboxes/${user}/\n`);
      }
    });
  },
};
