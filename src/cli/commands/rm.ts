import type { Argv, CommandModule } from 'yargs';
import { isDirectoryCap } from '../../cap/index.js';
import { IsADirectoryError, NotFoundError } from '../../errors.js';
import { lacks } from '../../events/index.js';
import { parseCapPath, resolveParent } from '../cap-path.js';
import { recordCliChange } from '../events.js';
import { withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';

interface RmArgs extends GlobalArgs {
  target: string;
  recursive: boolean;
}

export const rmCommand: CommandModule<GlobalArgs, RmArgs> = {
  command: 'rm <target>',
  describe: 'Unlink CAP/PATH from its directory (data stays reachable through any other cap to it)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'CAP/PATH to remove' })
      .option('recursive', {
        alias: 'r',
        type: 'boolean',
        default: false,
        describe: 'allow removing a directory (with everything below it)',
      })
      .example('$0 rm "$ROOT/old.txt"', 'remove a file')
      .example('$0 rm -r "$ROOT/old-photos"', 'remove a directory') as unknown as Argv<RmArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    if (target.components.length === 0) throw new UsageError('rm needs CAP/PATH: a directory cap and the name to remove');
    await withNode(args, async (node) => {
      const { tree } = node;
      const { dir, name } = await resolveParent(tree, target);
      const entry = await dir.lookup(name);
      if (entry === undefined) throw new NotFoundError(`${target.components.join('/')}: no such file or directory`);
      if (isDirectoryCap(entry.cap) && !args.recursive) {
        // An empty directory goes without -r, like rmdir.
        if ((await tree.directory(entry.cap).count()) > 0) {
          throw new IsADirectoryError(`${target.components.join('/')} is a non-empty directory (use -r)`);
        }
      }
      await recordCliChange(node, isDirectoryCap(entry.cap) ? 'rmdir' : 'remove', target, async (begin) => {
        await begin([lacks(dir, name, entry.cap)]);
        await dir.unlink(name);
      });
    });
  },
};
