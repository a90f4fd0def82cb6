import type { Argv, CommandModule } from 'yargs';
import { type Cap, isDirectoryCap } from '../../cap/index.js';
import { NotADirectoryError, NotFoundError, PermissionError } from '../../errors.js';
import { holds } from '../../events/index.js';
import { parseCapPath, asDirectoryCap } from '../cap-path.js';
import { recordCliChange } from '../events.js';
import { out, withNode, type GlobalArgs } from '../context.js';

interface MkdirArgs extends GlobalArgs {
  target?: string;
  parents: boolean;
}

export const mkdirCommand: CommandModule<GlobalArgs, MkdirArgs> = {
  command: 'mkdir [target]',
  describe: 'Create a directory and print its write cap (a new unlinked one with no argument)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { type: 'string', describe: 'CAP/PATH of the directory to create' })
      .option('parents', {
        alias: 'p',
        type: 'boolean',
        default: false,
        describe: 'create missing parents; an existing directory is not an error',
      })
      .example('$0 mkdir', 'a new empty directory; prints its write cap')
      .example('$0 mkdir "$ROOT/photos/2024" -p', 'create photos/2024 below the directory $ROOT') as unknown as Argv<MkdirArgs>,
  handler: async (args) => {
    const target = args.target === undefined ? undefined : parseCapPath(args.target);
    await withNode(args, async (node) => {
      const { tree } = node;
      if (target === undefined) {
        await out(`${(await tree.createDirectory()).toString()}\n`);
        return;
      }
      if (target.components.length === 0) throw new NotFoundError('mkdir needs a path below the cap (or no argument for a new directory)');
      let current: Cap = asDirectoryCap(target.cap);
      const walked: string[] = [];
      for (const [i, name] of target.components.entries()) {
        const last = i === target.components.length - 1;
        const dir = tree.directory(asDirectoryCap(current));
        const entry = await dir.lookup(name);
        walked.push(name);
        if (entry !== undefined && (!last || args.parents)) {
          if (!isDirectoryCap(entry.cap)) {
            throw new NotADirectoryError(`${walked.join('/')} exists and is not a directory`);
          }
          current = entry.cap;
          continue;
        }
        if (entry === undefined && !last && !args.parents)
          throw new NotFoundError(`${walked.join('/')}: no such directory (use -p to create parents)`);
        if (!dir.writable) throw new PermissionError(`${walked.slice(0, -1).join('/') || 'the directory'} is read-only`);
        const now = Date.now();
        current = await recordCliChange(node, 'mkdir', { cap: target.cap, components: [...walked] }, (begin) =>
          dir.mkdir(name, { mtimeMs: now, ctimeMs: now }, { beforeLink: (child) => begin([holds(dir, name, child)]) }),
        );
      }
      await out(`${current.toString()}\n`);
    });
  },
};
