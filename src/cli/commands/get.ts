import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Argv, CommandModule } from 'yargs';
import { IsADirectoryError, InvalidInputError } from '../../errors.js';
import { parseCapPath, resolveCapPath } from '../cap-path.js';
import { isStdio, withNode, type GlobalArgs } from '../context.js';
import { type Progress, startProgress } from '../progress.js';

interface GetArgs extends GlobalArgs {
  target: string;
  local?: string;
}

/** Passes `source` through, adding each piece's length to the progress line. */
async function* counted(source: AsyncIterable<Uint8Array>, progress: Progress): AsyncIterable<Uint8Array> {
  for await (const piece of source) {
    progress.add(piece.length);
    yield piece;
  }
}

export const getCommand: CommandModule<GlobalArgs, GetArgs> = {
  command: 'get <target> [local]',
  describe: 'Download a file to LOCAL, or to stdout with - or no LOCAL',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'CAP/PATH, or a file cap' })
      .positional('local', { type: 'string', describe: 'local file to write (replaced atomically), or -' })
      .example('$0 get "$ROOT/docs/report.pdf" report.pdf', 'download a file')
      .example('$0 get "$ROOT/backup.tar" | tar x', 'download to stdout') as unknown as Argv<GetArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    await withNode(args, async ({ tree }) => {
      const node = await resolveCapPath(tree, target);
      if (node.type === 'directory') throw new IsADirectoryError('that is a directory (use ls)');
      if (node.type !== 'file') throw new InvalidInputError('not a file this version can read');
      const reader = await tree.openFile(node.cap);
      const local = args.local === undefined || isStdio(args.local) ? undefined : path.resolve(args.local);
      const progress = startProgress('get', 'bytes', reader.size, args, { dataOnStdout: local === undefined });
      const source = Readable.from(counted(reader.stream(), progress));
      try {
        if (local === undefined) {
          await pipeline(source, process.stdout, { end: false });
          return;
        }
        // Into a temp file renamed over LOCAL: a failed download (an integrity
        // error half way) never leaves a truncated file under the real name.
        const temp = path.join(path.dirname(local), `.${path.basename(local)}.capstan-${randomBytes(4).toString('hex')}`);
        try {
          await pipeline(source, createWriteStream(temp, { flags: 'wx' }));
          await rename(temp, local);
        } catch (err) {
          await rm(temp, { force: true });
          throw err;
        }
      } finally {
        progress.finish();
      }
    });
  },
};
