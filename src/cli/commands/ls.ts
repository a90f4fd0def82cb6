import type { Argv, CommandModule } from 'yargs';
import { SymlinkTarget, type Cap } from '../../cap/index.js';
import type { DirEntry, EntryMetadata } from '../../tree/api.js';
import { kindOf, parseCapPath, resolveCapPath } from '../cap-path.js';
import { out, withNode, type GlobalArgs } from '../context.js';
import { jsonOption, outJson } from '../json.js';

interface LsArgs extends GlobalArgs {
  target: string;
  long: boolean;
  json: boolean;
}

/** One entry as `ls --json` prints it (a line of JSON Lines; docs/cli-json.md). No cap. */
export interface LsJsonEntry {
  name: string;
  type: 'directory' | 'file' | 'symlink' | 'unknown';
  /** A symlink's target as stored (bytes that are not UTF-8 show as U+FFFD); absent for other types. */
  target?: string;
  /** Bytes; null for a directory or when not recorded. */
  size: number | null;
  /** ISO 8601 UTC with milliseconds; null when not recorded. */
  mtime: string | null;
  readonly: boolean;
  /** A file with its execute bits kept (listed 0755 over SFTP); false for everything else. */
  executable: boolean;
}

const TYPES: Record<string, LsJsonEntry['type']> = { dir: 'directory', file: 'file', link: 'symlink' };

function linkTarget(cap: Cap): string | undefined {
  return cap instanceof SymlinkTarget ? Buffer.from(cap.target).toString('utf8') : undefined;
}

function jsonEntry(cap: Cap, metadata: EntryMetadata | undefined, size: number | undefined, name: string): LsJsonEntry {
  const kind = kindOf(cap);
  const mtime = metadata?.mtimeMs;
  const target = linkTarget(cap);
  return {
    name,
    type: TYPES[kind] ?? 'unknown',
    ...(target !== undefined ? { target } : {}),
    size: kind === 'dir' ? null : cap instanceof SymlinkTarget ? cap.target.length : (size ?? metadata?.size ?? null),
    mtime: mtime !== undefined && Number.isFinite(mtime) ? new Date(mtime).toISOString() : null,
    readonly: metadata?.noWrite === true,
    executable: kind === 'file' && metadata?.executable === true,
  };
}

function isoSeconds(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function longLine(cap: Cap, metadata: EntryMetadata | undefined, size: number | undefined, name: string): string {
  const kind = kindOf(cap);
  // rw or ro, and x for a file whose execute bits are kept (listed 0755 or 0555 over SFTP).
  const flag = (metadata?.noWrite === true ? 'ro' : 'rw') + (kind === 'file' && metadata?.executable === true ? 'x' : '');
  const target = linkTarget(cap);
  const shownSize = kind === 'dir' ? '-' : String(target !== undefined ? Buffer.byteLength(target) : (size ?? metadata?.size ?? '-'));
  const shownName = target !== undefined ? `${name} -> ${target}` : name;
  return `${kind.padEnd(7)} ${flag.padEnd(3)} ${shownSize.padStart(14)} ${isoSeconds(metadata?.mtimeMs).padEnd(20)} ${shownName}\n`;
}

function shortName(entry: DirEntry): string {
  return kindOf(entry.cap) === 'dir' ? `${entry.name}/` : entry.name;
}

export const lsCommand: CommandModule<GlobalArgs, LsArgs> = {
  command: 'ls <target>',
  describe: 'List a directory (names; directories end in /)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'CAP or CAP/PATH' })
      .option('long', {
        alias: 'l',
        type: 'boolean',
        default: false,
        describe: 'kind, rw/ro (x: executable), size, modification time (UTC), name',
      })
      .option('json', jsonOption('one line per entry, sorted by name (fields: docs/cli-json.md)'))
      .example('$0 ls "$ROOT"', 'names in the root directory')
      .example('$0 ls -l "$ROOT/photos"', 'with sizes and times')
      .example('$0 ls --json "$ROOT" | jq -r \'select(.type == "file") | .name\'', 'file names, for a script') as unknown as Argv<LsArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    await withNode(args, async ({ tree }) => {
      // `ls -l` and `--json` of a link describe the link; a plain `ls` of one lists what it leads to.
      let node = await resolveCapPath(tree, target, false);
      if (node.cap instanceof SymlinkTarget && !args.long && !args.json) node = await resolveCapPath(tree, target);
      if (node.type !== 'directory') {
        const name = target.components[target.components.length - 1] ?? '-';
        const size = 'size' in node.cap ? (node.cap.size as number) : undefined;
        if (args.json) await outJson(jsonEntry(node.cap, node.entry?.metadata, size, name));
        else await out(args.long ? longLine(node.cap, node.entry?.metadata, size, name) : `${name}\n`);
        return;
      }
      // Sorted for people and diffs, which needs the whole listing in memory:
      // bounded by what is about to be printed anyway.
      const entries: DirEntry[] = [];
      for await (const entry of tree.directory(node.cap).list()) entries.push(entry);
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        if (args.json) await outJson(jsonEntry(entry.cap, entry.metadata, undefined, entry.name));
        else await out(args.long ? longLine(entry.cap, entry.metadata, undefined, shortName(entry)) : `${shortName(entry)}\n`);
      }
    });
  },
};
