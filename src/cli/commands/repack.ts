import type { Argv, CommandModule } from 'yargs';
import { out, withNode, type GlobalArgs } from '../context.js';
import { ReportedFailure } from '../errors.js';

interface RepackArgs extends GlobalArgs {
  dryRun: boolean;
}

export const repackCommand: CommandModule<GlobalArgs, RepackArgs> = {
  command: 'repack',
  describe: 'Move the loose chunk files of an older store layout into packs (storage engine v3; safe while the gateway runs)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('dry-run', { type: 'boolean', default: false, describe: 'only count what would move' })
      .example('$0 repack --dry-run', 'how many loose chunks does this node still have?')
      .example('$0 repack', 'move them into packs') as unknown as Argv<RepackArgs>,
  handler: async (args) => {
    const failed = await withNode(args, async (node) => {
      if (node.chunks.repack === undefined) {
        await out('nothing to repack: this node does not keep objects in packs on its own disk (only the embedded default does)\n');
        return false;
      }
      const r = await node.chunks.repack({ dryRun: args.dryRun });
      if (r.moved + r.dropped + r.skipped === 0) {
        await out('nothing to repack: no loose chunk files of an older layout\n');
        return false;
      }
      const verb = args.dryRun ? 'would move' : 'moved';
      await out(
        `${verb} ${r.moved} loose chunks (${r.movedBytes} bytes) into packs; ` +
          `${args.dryRun ? 'would remove' : 'removed'} ${r.dropped} loose copies of chunks already packed\n`,
      );
      if (r.skipped > r.damaged) {
        process.stderr.write(
          `capstan: repack: ${r.skipped - r.damaged} chunks were being uploaded again meanwhile; run repack once more\n`,
        );
      }
      if (r.damaged > 0) {
        process.stderr.write(
          `capstan: repack: ${r.damaged} loose chunks failed their check and stay where they are (capstan check --verify names the files)\n`,
        );
        return true;
      }
      return false;
    });
    if (failed) throw new ReportedFailure();
  },
};
