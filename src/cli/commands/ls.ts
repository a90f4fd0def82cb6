import type { Argv, CommandModule } from 'yargs';
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
  type: 'directory' | 'file' | 'unknown';
  /** Bytes; null for a directory or when not recorded. */
  size: number | null;
  /** ISO 8601 UTC with milliseconds; null when not recorded. */
  mtime: string | null;
  readonly: boolean;
}

function jsonEntry(kind: string, metadata: EntryMetadata | undefined, size: number | undefined, name: string): LsJsonEntry {
  const mtime = metadata?.mtimeMs;
  return {
    name,
    type: kind === 'dir' ? 'directory' : kind === 'file' ? 'file' : 'unknown',
    size: kind === 'dir' ? null : (size ?? metadata?.size ?? null),
    mtime: mtime !== undefined && Number.isFinite(mtime) ? new Date(mtime).toISOString() : null,
    readonly: metadata?.noWrite === true,
  };
}

function isoSeconds(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function longLine(kind: string, metadata: EntryMetadata | undefined, size: number | undefined, name: string): string {
  const flag = metadata?.noWrite === true ? 'ro' : 'rw';
  const shownSize = kind === 'dir' ? '-' : String(size ?? metadata?.size ?? '-');
  return `${kind.padEnd(7)} ${flag} ${shownSize.padStart(14)} ${isoSeconds(metadata?.mtimeMs).padEnd(20)} ${name}\n`;
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
      .option('long', { alias: 'l', type: 'boolean', default: false, describe: 'kind, rw/ro, size, modification time (UTC), name' })
      .option('json', jsonOption('one line per entry, sorted by name (fields: docs/cli-json.md)'))
      .example('$0 ls "$ROOT"', 'names in the root directory')
      .example('$0 ls -l "$ROOT/photos"', 'with sizes and times')
      .example('$0 ls --json "$ROOT" | jq -r \'select(.type == "file") | .name\'', 'file names, for a script') as unknown as Argv<LsArgs>,
  handler: async (args) => {
    const target = parseCapPath(args.target);
    await withNode(args, async ({ tree }) => {
      const node = await resolveCapPath(tree, target);
      if (node.type !== 'directory') {
        const name = target.components[target.components.length - 1] ?? '-';
        const size = 'size' in node.cap ? (node.cap.size as number) : undefined;
        if (args.json) await outJson(jsonEntry(kindOf(node.cap), node.entry?.metadata, size, name));
        else await out(args.long ? longLine(kindOf(node.cap), node.entry?.metadata, size, name) : `${name}\n`);
        return;
      }
      // Sorted for people and diffs, which needs the whole listing in memory:
      // bounded by what is about to be printed anyway.
      const entries: DirEntry[] = [];
      for await (const entry of tree.directory(node.cap).list()) entries.push(entry);
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        if (args.json) await outJson(jsonEntry(kindOf(entry.cap), entry.metadata, undefined, entry.name));
        else await out(args.long ? longLine(kindOf(entry.cap), entry.metadata, undefined, shortName(entry)) : `${shortName(entry)}\n`);
      }
    });
  },
};
