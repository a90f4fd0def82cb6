import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_GRACE_HOURS, collectGarbage } from '../../gc/index.js';
import { out, withNode, type GlobalArgs } from '../context.js';
import { ReportedFailure, UsageError } from '../errors.js';
import { formatBytes } from '../format.js';
import { startProgress } from '../progress.js';

interface GcArgs extends GlobalArgs {
  dryRun: boolean;
  grace: number;
  accountServerRootsPinned: boolean;
}

const HOUR_MS = 3_600_000;

export const gcCommand: CommandModule<GlobalArgs, GcArgs> = {
  command: 'gc',
  describe: 'Delete chunks no account root or pin reaches and nobody put within the grace period (safe while the gateway runs)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('dry-run', { type: 'boolean', default: false, describe: 'only report what would be freed' })
      .option('grace', {
        type: 'number',
        default: DEFAULT_GRACE_HOURS,
        describe: 'keep unreachable chunks put less than HOURS ago (protects uploads in flight); fractions allowed',
      })
      .option('account-server-roots-pinned', {
        type: 'boolean',
        default: false,
        describe: 'with [sftpd] accounts.url set: every root the account server hands out is pinned (else gc refuses)',
      })
      .example('$0 gc --dry-run', 'how much would a collection free?')
      .example('$0 gc', 'collect, keeping anything put in the last 24 hours') as unknown as Argv<GcArgs>,
  handler: async (args) => {
    if (!Number.isFinite(args.grace) || args.grace < 0) throw new UsageError('--grace: expected a number of hours >= 0');
    const failed = await withNode(args, async (node) => {
      // Neither phase knows its total in advance (the walk finds the tree, the listing the store): counts and rates, no ETA.
      const progress = startProgress('gc: mark', 'entries', undefined, args);
      let report: Awaited<ReturnType<typeof collectGarbage>>;
      try {
        report = await collectGarbage(node, {
          graceMs: args.grace * HOUR_MS,
          dryRun: args.dryRun,
          accountServerRootsPinned: args.accountServerRootsPinned,
          onProgress: (p) => {
            if (p.phase === 'mark') {
              progress.done = p.mark.directories + p.mark.files;
              progress.detail = `${p.mark.directories} directories, ${p.mark.files} files, ${p.mark.live.size} live chunks`;
              return;
            }
            if (progress.unit !== 'chunks') progress.phase('gc: sweep', 'chunks');
            progress.done = p.sweep.stored;
            progress.detail = `${args.dryRun ? 'would free' : 'freed'} ${p.sweep.freed} (${formatBytes(p.sweep.freedBytes)})`;
          },
        });
      } finally {
        progress.finish();
      }
      for (const p of report.problems) process.stderr.write(`capstan: gc: ${p.path}: ${p.detail}\n`);
      const walked = `walked ${report.roots} roots: ${report.directories} directories, ${report.files} files`;
      if (report.sweep === undefined) {
        process.stderr.write(`capstan: gc: ${walked}; nothing deleted: the walk was incomplete (run capstan check on the roots)\n`);
        return true;
      }
      const s = report.sweep;
      await out(
        `${walked}; ${s.stored} chunks stored, ${s.live} live, ${s.young} unreachable but younger than ${args.grace} h; ` +
          `${args.dryRun ? 'would free' : 'freed'} ${s.freed} chunks, ${s.freedBytes} bytes\n`,
      );
      return false;
    });
    if (failed) throw new ReportedFailure();
  },
};
