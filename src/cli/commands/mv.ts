import type { Argv, CommandModule } from 'yargs';
import { DirectoryReadCap, DirectoryWriteCap, isDirectoryCap } from '../../cap/index.js';
import { IsADirectoryError } from '../../errors.js';
import { moveEntry } from '../../tree/index.js';
import { asDirectoryCap, parseCapPath, resolveParent } from '../cap-path.js';
import { withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';

interface MvArgs extends GlobalArgs {
  source: string;
  destination: string;
}

export const mvCommand: CommandModule<GlobalArgs, MvArgs> = {
  command: 'mv <source> <destination>',
  describe: 'Move or rename an entry; into DESTINATION if it is a directory. An existing file at DESTINATION is replaced',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('source', { type: 'string', demandOption: true, describe: 'CAP/PATH of the entry to move' })
      .positional('destination', { type: 'string', demandOption: true, describe: 'CAP/PATH: the new name, or a directory to move into' })
      .example('$0 mv "$ROOT/draft.txt" "$ROOT/final.txt"', 'rename (one atomic update)')
      .example('$0 mv "$ROOT/final.txt" "$ROOT/archive"', 'move into the archive directory') as unknown as Argv<MvArgs>,
  handler: async (args) => {
    const source = parseCapPath(args.source);
    const destination = parseCapPath(args.destination);
    if (source.components.length === 0) throw new UsageError('mv needs a CAP/PATH source: a directory cap and the name to move');
    await withNode(args, async ({ tree }) => {
      const src = await resolveParent(tree, source);
      let dst: Awaited<ReturnType<typeof resolveParent>>;
      if (destination.components.length === 0) {
        dst = { dir: tree.directory(asDirectoryCap(destination.cap)), name: src.name };
      } else {
        dst = await resolveParent(tree, destination);
        const existing = await dst.dir.lookup(dst.name);
        if (isDirectoryCap(existing?.cap)) {
          dst = { dir: tree.directory(existing.cap), name: src.name };
          const inside = await dst.dir.lookup(dst.name);
          if (isDirectoryCap(inside?.cap)) {
            throw new IsADirectoryError(`${destination.components.join('/')}/${dst.name} is an existing directory`);
          }
        }
      }
      await moveEntry(src.dir, src.name, dst.dir, dst.name, { overwrite: true });
    });
  },
};
