import type { Argv, CommandModule } from 'yargs';
import { parseCapPath, resolveCapPath } from '../cap-path.js';
import { out, withNode, type GlobalArgs } from '../context.js';

interface ReadonlyArgs extends GlobalArgs {
  target: string;
}

export const readonlyCommand: CommandModule<GlobalArgs, ReadonlyArgs> = {
  command: 'readonly <target>',
  describe: 'Print the read cap of a write cap (or of what CAP/PATH names)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'CAP or CAP/PATH' })
      .example('$0 readonly "$ROOT"', 'a cap that lists and reads but cannot change the directory')
      .example('$0 readonly "$ROOT/shared"', 'the read cap of the shared subdirectory') as unknown as Argv<ReadonlyArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    if (target.components.length === 0) {
      // No store needed: the derivation is pure.
      await out(`${target.cap.readonly().toString()}\n`);
      return;
    }
    await withNode(args, async ({ tree }) => {
      const node = await resolveCapPath(tree, target);
      await out(`${node.cap.readonly().toString()}\n`);
    });
  },
};
