import type { Argv, CommandModule } from 'yargs';
import { PINS_FILE, addPin, removePin } from '../../node/gc.js';
import { nodePath } from '../../node/layout.js';
import { out, nodeDirOf, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';

interface PinArgs extends GlobalArgs {
  cap: string;
  remove: boolean;
}

export const pinCommand: CommandModule<GlobalArgs, PinArgs> = {
  command: 'pin <cap>',
  describe: `Keep CAP (and all it reaches) alive through gc although no account reaches it (${PINS_FILE})`,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('cap', { type: 'string', demandOption: true, describe: 'a directory or file cap' })
      .option('remove', { type: 'boolean', default: false, describe: 'unpin CAP instead' })
      .example('$0 pin "$BACKUP"', 'gc keeps the backup directory although no account links it')
      .example('$0 pin --remove "$BACKUP"', 'let gc collect it once nothing else reaches it') as unknown as Argv<PinArgs>,
  handler: async (args) => {
    if (args.cap.includes('/')) throw new UsageError('pin takes a cap, not CAP/PATH');
    const file = nodePath(nodeDirOf(args), PINS_FILE);
    if (args.remove) {
      await out((await removePin(file, args.cap)) ? 'unpinned\n' : 'was not pinned\n');
    } else {
      await out((await addPin(file, args.cap)) ? 'pinned\n' : 'already pinned\n');
    }
  },
};
