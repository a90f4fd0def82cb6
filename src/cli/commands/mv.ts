import type { Argv, CommandModule } from 'yargs';
import { isDirectoryCap } from '../../cap/index.js';
import { IsADirectoryError, NotFoundError } from '../../errors.js';
import { holds, lacks } from '../../events/index.js';
import { moveEntry } from '../../tree/index.js';
import { asDirectoryCap, parseCapPath, resolveParent, type CapPath } from '../cap-path.js';
import { recordCliChange } from '../events.js';
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
    await withNode(args, async (node) => {
      const { tree } = node;
      const src = await resolveParent(tree, source);
      let dst: Awaited<ReturnType<typeof resolveParent>>;
      // The path the entry ends up at, as its event names it.
      let final: CapPath = destination;
      if (destination.components.length === 0) {
        dst = { dir: tree.directory(asDirectoryCap(destination.cap)), name: src.name };
        final = { cap: destination.cap, components: [src.name] };
      } else {
        dst = await resolveParent(tree, destination);
        const existing = await dst.dir.lookup(dst.name);
        if (isDirectoryCap(existing?.cap)) {
          dst = { dir: tree.directory(existing.cap), name: src.name };
          final = { cap: destination.cap, components: [...destination.components, src.name] };
          const inside = await dst.dir.lookup(dst.name);
          if (isDirectoryCap(inside?.cap)) {
            throw new IsADirectoryError(`${destination.components.join('/')}/${dst.name} is an existing directory`);
          }
        }
      }
      const entry = await src.dir.lookup(src.name);
      if (entry === undefined) throw new NotFoundError(`${source.components.join('/')}: no such file or directory`);
      await recordCliChange(
        node,
        'rename',
        final,
        async (begin) => {
          await begin([holds(dst.dir, dst.name, entry.cap), lacks(src.dir, src.name, entry.cap)]);
          await moveEntry(src.dir, src.name, dst.dir, dst.name, { overwrite: true });
        },
        { from: source },
      );
    });
  },
};
