import type { Argv, CommandModule } from 'yargs';
import { type DirectoryReadCap, DirectoryWriteCap, FileReadCap, LiteralCap, type Cap, isDirectoryCap } from '../../cap/index.js';
import { AlreadyExistsError, InvalidInputError, NotADirectoryError, NotFoundError, PermissionError } from '../../errors.js';
import type { Directory, EntryMetadata, Tree } from '../../tree/api.js';
import { linkShared } from '../../tree/index.js';
import { asDirectoryCap, kindOf, parseCapPath, resolveCapPath, type CapPath } from '../cap-path.js';
import { withNode, type GlobalArgs } from '../context.js';
import { jsonOption, outJson } from '../json.js';

interface LnArgs extends GlobalArgs {
  source: string;
  target: string;
  readonly: boolean;
  force: boolean;
  json: boolean;
}

/** What `ln --json` prints (docs/cli-json.md). No cap. */
export interface LnJsonResult {
  name: string;
  type: 'directory' | 'file';
  /** `write`: the new name can change the directory; `read`: it can only read. */
  access: 'write' | 'read';
  replaced: boolean;
}

/** The directory that will hold the new name, and the storage index of every directory walked to reach it. */
interface TargetParent {
  dir: Directory;
  name: string;
  walked: Set<string>;
}

const siHex = (cap: DirectoryWriteCap | DirectoryReadCap): string => cap.storageIndexHex;

/**
 * Walks TARGET's path down to the parent of its last name, remembering each
 * directory passed, so that linking a directory inside itself (a loop that
 * clients walking the tree, find or rsync over sshfs, would follow for ever;
 * check and gc visit each directory once) is refused when the loop is visible
 * from the target's own path. A loop through some other tree cannot be seen here.
 */
async function targetParent(tree: Tree, target: CapPath, sourceName: string | undefined): Promise<TargetParent> {
  let cap = asDirectoryCap(target.cap);
  const walked = new Set([siHex(cap)]);
  const path = [...target.components];
  const last = path.pop() ?? sourceName;
  if (last === undefined) throw new InvalidInputError('ln needs TARGET as DIRCAP/NAME when the source is a bare cap');
  for (const [i, name] of path.entries()) {
    const entry = await tree.directory(cap).lookup(name);
    const where = path.slice(0, i + 1).join('/');
    if (entry === undefined) throw new NotFoundError(`${where}: no such directory`);
    if (!isDirectoryCap(entry.cap)) {
      throw new NotADirectoryError(`${where} is not a directory`);
    }
    cap = entry.cap;
    walked.add(siHex(cap));
  }
  return { dir: tree.directory(cap), name: last, walked };
}

/** The new entry's metadata: the source entry's size and time when it has one, else what the cap knows. */
function metadataFor(cap: Cap, source: EntryMetadata | undefined): EntryMetadata {
  const now = Date.now();
  const size = cap instanceof FileReadCap || cap instanceof LiteralCap ? cap.size : 0;
  const metadata: EntryMetadata = { size: source?.size ?? size, mtimeMs: source?.mtimeMs ?? now, ctimeMs: now };
  if (source?.atimeMs !== undefined) metadata.atimeMs = source.atimeMs;
  return metadata;
}

export const lnCommand: CommandModule<GlobalArgs, LnArgs> = {
  command: 'ln <source> <target>',
  describe: 'Link an existing file or directory (CAP or CAP/PATH) under a new name DIRCAP/PATH; never a stronger cap than the source',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('source', { type: 'string', demandOption: true, describe: 'CAP or CAP/PATH of what to link' })
      .positional('target', {
        type: 'string',
        demandOption: true,
        describe: 'DIRCAP/PATH: the new name (a bare DIRCAP: the source name, in that directory)',
      })
      .option('readonly', {
        type: 'boolean',
        default: false,
        describe: 'link the read cap: the new name can list and read, never change',
      })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'replace an existing entry of that name' })
      .option('json', jsonOption('what was linked, without caps (fields: docs/cli-json.md)'))
      .example('$0 ln "$ALICE/input" "$PROC/inboxes/alice"', "alice's input folder, also in the processor's tree")
      .example(
        '$0 ln --readonly "$PROC/outboxes/alice" "$ALICE/output"',
        'a folder alice can read but not change',
      ) as unknown as Argv<LnArgs>,
  handler: async (args) => {
    const source = parseCapPath(args.source);
    const target = parseCapPath(args.target);
    await withNode(args, async ({ tree }) => {
      const node = await resolveCapPath(tree, source);
      if (node.type === 'unknown') throw new InvalidInputError('ln links file and directory caps (read or write), not this kind of cap');
      const parent = await targetParent(tree, target, source.components[source.components.length - 1]);
      if (!parent.dir.writable) throw new PermissionError('the target directory is read-only');
      if (node.type === 'directory' && parent.walked.has(siHex(node.cap))) {
        throw new InvalidInputError('cannot link a directory inside itself');
      }
      // Checked first for a clear message; the link below decides, atomically, if a racing writer takes the name.
      const existing = await parent.dir.lookup(parent.name);
      if (existing !== undefined && !args.force) throw new AlreadyExistsError(`${parent.name} exists (use --force to replace it)`);
      const replaced = await linkShared(
        parent.dir,
        parent.name,
        node.cap,
        metadataFor(node.cap, node.entry?.metadata),
        (cap) => tree.directory(cap),
        {
          overwrite: args.force,
          readonly: args.readonly,
        },
      );
      if (args.json) {
        const linked = args.readonly ? node.cap.readonly() : node.cap;
        const result: LnJsonResult = {
          name: parent.name,
          type: kindOf(linked) === 'dir' ? 'directory' : 'file',
          access: linked instanceof DirectoryWriteCap ? 'write' : 'read',
          replaced: replaced !== undefined,
        };
        await outJson(result);
      }
    });
  },
};
