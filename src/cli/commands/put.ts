import { createReadStream, fstatSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { isDirectoryCap } from '../../cap/index.js';
import { IsADirectoryError, PermissionError } from '../../errors.js';
import type { FileWriter } from '../../tree/api.js';
import { holds } from '../../events/index.js';
import { parseCapPath, resolveParent } from '../cap-path.js';
import { recordCliChange } from '../events.js';
import { isStdio, out, withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';
import { startProgress } from '../progress.js';

interface PutArgs extends GlobalArgs {
  local: string;
  target: string;
}

/** Read size per chunk of input; the writer applies backpressure, so memory stays a few of these. */
const READ_CHUNK = 1024 * 1024;

/** The size of stdin when it is a regular file (`put - < file`), for the progress line's total; else unknown. */
function stdinFileSize(): number | undefined {
  try {
    const st = fstatSync(0);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

export const putCommand: CommandModule<GlobalArgs, PutArgs> = {
  command: 'put <local> <target>',
  describe: 'Upload a local file (or stdin with -) to CAP/PATH, replacing a file of that name; prints the file cap',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('local', { type: 'string', demandOption: true, describe: 'local file, or - for stdin' })
      .positional('target', { type: 'string', demandOption: true, describe: 'CAP/PATH to create or replace' })
      .example('$0 put report.pdf "$ROOT/docs/report.pdf"', 'upload a file')
      .example('tar c . | $0 put - "$ROOT/backup.tar"', 'upload from stdin') as unknown as Argv<PutArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    if (target.components.length === 0) throw new UsageError('put needs CAP/PATH: a directory cap and the name to create');
    let size: number | undefined;
    if (!isStdio(args.local)) {
      const st = await stat(args.local);
      if (!st.isFile()) throw new UsageError(`${args.local} is not a regular file`);
      size = st.size;
    } else {
      size = stdinFileSize();
    }
    await withNode(args, async (node) => {
      const { dir, name } = await resolveParent(node.tree, target);
      if (!dir.writable) throw new PermissionError('the target directory is read-only');
      const existing = await dir.lookup(name);
      if (isDirectoryCap(existing?.cap)) {
        throw new IsADirectoryError(`${target.components.join('/')} is a directory`);
      }
      if (existing?.metadata.noWrite === true) throw new PermissionError(`${target.components.join('/')} is read-only`);

      const input: AsyncIterable<Uint8Array> = isStdio(args.local)
        ? process.stdin
        : createReadStream(args.local, { highWaterMark: READ_CHUNK });
      const writer: FileWriter = node.tree.createFileWriter(node.convergence());
      const progress = startProgress('put', 'bytes', size, args);
      let result: Awaited<ReturnType<FileWriter['finish']>>;
      try {
        for await (const chunk of input) {
          await writer.write(chunk);
          progress.add(chunk.length);
        }
        result = await writer.finish();
      } catch (err) {
        writer.abort();
        throw err;
      } finally {
        progress.finish();
      }
      const now = Date.now();
      const upload = { size: result.size, mtimeMs: now, checksums: result.checksums };
      await recordCliChange(
        node,
        'upload',
        target,
        async (begin) => {
          await begin([holds(dir, name, result.cap, now)]);
          // A new version keeps the execute bits of the file it replaces, as an SFTP upload does.
          await dir.link(name, result.cap, { size: result.size, mtimeMs: now, ctimeMs: now }, { overwrite: true, keepExecutable: true });
        },
        upload,
      );
      await out(`${result.cap.toString()}\n`);
    });
  },
};
