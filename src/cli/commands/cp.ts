import type { Argv, CommandModule } from 'yargs';
import { type FileCap, isDirectoryCap } from '../../cap/index.js';
import { InvalidInputError, IsADirectoryError, PermissionError } from '../../errors.js';
import type { Directory, EntryMetadata } from '../../tree/api.js';
import { asDirectoryCap, parseCapPath, resolveCapPath, resolveParent } from '../cap-path.js';
import { withNode, type GlobalArgs } from '../context.js';
import { jsonOption, outJson } from '../json.js';

interface CpArgs extends GlobalArgs {
  source: string;
  destination: string;
  json: boolean;
}

/** What `cp --json` prints (docs/cli-json.md). No cap. */
export interface CpJsonResult {
  name: string;
  size: number;
  replaced: boolean;
}

/**
 * `capstan cp SOURCE DESTINATION`: a file under a second name, as a new file
 * (its own entry, time and read-only mark), in O(1) whatever its size. A
 * capstan file is immutable, so the copy is the same file cap linked again,
 * exactly what `sftp cp` gets from the gateway (copy-data); no byte is read
 * or stored. The name then changes independently: writing either one makes
 * a new file under that name only.
 *
 * Directories are refused: `rm -r` only unlinks one entry, so there is no
 * recursive walk to follow here, and a deep copy (new directories all the
 * way down) is a different operation; `ln` shares a directory under a second
 * name in O(1).
 */
export const cpCommand: CommandModule<GlobalArgs, CpArgs> = {
  command: 'cp <source> <destination>',
  describe: 'Copy a file to a new name in O(1) (the same immutable file, linked again); into DESTINATION if it is a directory',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('source', { type: 'string', demandOption: true, describe: 'CAP/PATH of a file, or a file cap' })
      .positional('destination', {
        type: 'string',
        demandOption: true,
        describe: 'CAP/PATH: the new name (an existing file is replaced), or a directory to copy into',
      })
      .option('json', jsonOption('the name copied to, size and whether a file was replaced, without caps (docs/cli-json.md)'))
      .example('$0 cp "$ROOT/big.iso" "$ROOT/backup/big.iso"', 'a second, independent copy, instantly') as unknown as Argv<CpArgs>,
  handler: async (args) => {
    const source = parseCapPath(args.source);
    const destination = parseCapPath(args.destination);
    await withNode(args, async ({ tree }) => {
      const node = await resolveCapPath(tree, source);
      if (node.type === 'directory') {
        throw new IsADirectoryError('the source is a directory: cp copies files (capstan ln shares a directory under a second name)');
      }
      if (node.type !== 'file') throw new InvalidInputError('cp copies files, not this kind of cap');
      const sourceName = source.components[source.components.length - 1];
      let dir: Directory;
      let name: string;
      if (destination.components.length === 0) {
        if (sourceName === undefined) throw new InvalidInputError('cp needs DESTINATION as DIRCAP/NAME when the source is a bare file cap');
        [dir, name] = [tree.directory(asDirectoryCap(destination.cap)), sourceName];
      } else {
        ({ dir, name } = await resolveParent(tree, destination));
        const existing = await dir.lookup(name);
        if (isDirectoryCap(existing?.cap)) {
          if (sourceName === undefined)
            throw new InvalidInputError('cp needs DESTINATION as DIRCAP/NAME when the source is a bare file cap');
          [dir, name] = [tree.directory(existing.cap), sourceName];
        }
      }
      if (!dir.writable) throw new PermissionError('the destination directory is read-only');
      if (sourceName !== undefined) {
        // As cp(1): relinking a name onto itself would only touch its time; say so instead.
        const from = await resolveParent(tree, source);
        if (from.name === name && sameDirectory(from.dir, dir)) throw new InvalidInputError('SOURCE and DESTINATION are the same file');
      }
      const cap: FileCap = node.cap;
      const now = Date.now();
      const metadata: EntryMetadata = { size: cap.size, mtimeMs: now, ctimeMs: now };
      // Checked inside the atomic update, so a directory or a read-only file made meanwhile is never replaced.
      const replaced = await dir.link(name, cap, metadata, {
        overwrite: true,
        replacing: (entry) => {
          if (isDirectoryCap(entry.cap)) throw new IsADirectoryError(`${name} is an existing directory`);
          if (entry.metadata.noWrite === true) throw new PermissionError(`${name} is read-only`);
        },
      });
      if (args.json) {
        const result: CpJsonResult = { name, size: metadata.size, replaced: replaced !== undefined };
        await outJson(result);
      }
    });
  },
};

function sameDirectory(a: Directory, b: Directory): boolean {
  return Buffer.compare(Buffer.from(a.cap.storageIndex), Buffer.from(b.cap.storageIndex)) === 0;
}
