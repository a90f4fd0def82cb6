import type { Argv, CommandModule } from 'yargs';
import { DirectoryVerifyCap, UnknownCap } from '../../cap/index.js';
import { checkCap } from '../../node/check.js';
import { parseCapPath, resolveCapPath } from '../cap-path.js';
import { out, withNode, type GlobalArgs } from '../context.js';
import { jsonOption, outJson } from '../json.js';
import { ReportedFailure, UsageError } from '../errors.js';
import { startProgress } from '../progress.js';

interface CheckArgs extends GlobalArgs {
  target: string;
  verify: boolean;
  json: boolean;
}

export const checkCommand: CommandModule<GlobalArgs, CheckArgs> = {
  command: 'check <target>',
  describe: 'Walk everything reachable from a cap; report missing chunks (and with --verify, damaged ones). Exit 0 only when all is well',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'CAP or CAP/PATH (directory or file)' })
      .option('verify', { type: 'boolean', default: false, describe: 'read and re-hash every chunk instead of only checking it is there' })
      .option('json', jsonOption('one document with the counts and every problem, at the end (docs/cli-json.md)'))
      .example('$0 check "$ROOT"', 'is every chunk of every file present?')
      .example('$0 check --verify "$ROOT"', 'read everything back and verify it') as unknown as Argv<CheckArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    if (target.cap instanceof DirectoryVerifyCap || target.cap instanceof UnknownCap) {
      throw new UsageError('check needs a directory read or write cap, or a file cap');
    }
    const problems = await withNode(args, async ({ tree, chunks }) => {
      const node = await resolveCapPath(tree, target);
      // With --verify the line counts bytes read back (of the file's size when a file is checked); else chunks.
      const total = args.verify && 'size' in node.cap && typeof node.cap.size === 'number' ? node.cap.size : undefined;
      const progress = startProgress(args.verify ? 'verify' : 'check', args.verify ? 'bytes' : 'chunks', total, args);
      let report: Awaited<ReturnType<typeof checkCap>>;
      try {
        report = await checkCap(tree, chunks, node.cap, {
          verify: args.verify,
          // With --json the problems are in the document, not on stderr.
          onProblem: (p) => {
            if (!args.json) progress.log(`capstan: ${p.kind}: ${p.path === '' ? '(root)' : p.path}: ${p.detail}`);
          },
          onProgress: (r) => {
            progress.done = args.verify ? r.bytes : r.chunks;
            progress.detail = `${r.directories} directories, ${r.files} files${args.verify ? `, ${r.chunks} chunks` : ''}`;
          },
        });
      } finally {
        progress.finish();
      }
      if (args.json) {
        const { problems, ...counts } = report;
        await outJson({ ok: problems.length === 0, verified: args.verify, ...counts, problems });
        return problems.length;
      }
      const verb = args.verify ? 'verified' : 'checked';
      await out(
        `${verb} ${report.directories} directories, ${report.files} files, ${report.chunks} chunks` +
          `${report.unknown > 0 ? `, skipped ${report.unknown} entries of unknown kind` : ''}: ` +
          `${report.problems.length === 0 ? 'all well' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`}\n`,
      );
      return report.problems.length;
    });
    if (problems > 0) throw new ReportedFailure();
  },
};
