import type { Argv, CommandModule } from 'yargs';
import { DirectoryReadCap, DirectoryWriteCap } from '../../cap/index.js';
import { InvalidInputError } from '../../errors.js';
import { snapshotNames } from '../../tree/index.js';
import { asDirectoryCap, parseCapPath, resolveCapPath } from '../cap-path.js';
import { out, withNode, type GlobalArgs } from '../context.js';
import { recordCliChange } from '../events.js';
import { jsonOption, outJson } from '../json.js';

interface TargetArgs extends GlobalArgs {
  target: string;
  json: boolean;
}

/** What `snapshot list --json` prints per snapshot (docs/cli-json.md). */
export interface SnapshotJsonLine {
  /** Its name under /.snapshots/: the UTC second it was taken. */
  name: string;
  createdMs: number;
  /** The DIR-SNAP cap: the human output shows it too. */
  cap: string;
}

const positional = { type: 'string', demandOption: true } as const;

const createCommand: CommandModule<GlobalArgs, TargetArgs> = {
  command: 'create <target>',
  describe: 'Take a snapshot of the tree under a directory (DIRCAP or DIRCAP/PATH, a write cap) in O(1); print its read-only cap',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { ...positional, describe: 'the directory, by its write cap' })
      .option('json', jsonOption('{name, createdMs, cap}'))
      .example('$0 snapshot create "$ROOT"', 'prints CS1:DIR-SNAP:…, the tree as it is now, for ever') as unknown as Argv<TargetArgs>,
  handler: async (args) => {
    await withNode(args, async (node) => {
      const { tree } = node;
      const cap = asDirectoryCap((await resolveCapPath(tree, parseCapPath(args.target))).cap);
      if (!(cap instanceof DirectoryWriteCap)) throw new InvalidInputError('a snapshot is taken with the directory’s write cap');
      const snapshot = await tree.createSnapshot(cap);
      // Its name as /.snapshots/ shows it: a second snapshot in the same second is NAME_2.
      const named = snapshotNames(await tree.listSnapshots(cap)).find((n) => n.snapshot.epoch === snapshot.epoch);
      const name = named?.name ?? snapshotNames([snapshot])[0]!.name;
      // Recorded once the pin is durable: a snapshot has no intent (docs/spec/events.md).
      await recordCliChange(node, 'snapshot-create', { cap, components: ['.snapshots', name] }, (begin) => begin([]));
      if (args.json) await outJson({ name, createdMs: snapshot.createdMs, cap: snapshot.cap.toString() } satisfies SnapshotJsonLine);
      else await out(`${snapshot.cap.toString()}\n`);
    });
  },
};

const listCommand: CommandModule<GlobalArgs, TargetArgs> = {
  command: 'list <target>',
  aliases: ['ls'],
  describe: 'List the snapshots of a directory (any cap that reads it), oldest first: name (UTC time) and cap',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { ...positional, describe: 'DIRCAP or DIRCAP/PATH' })
      .option('json', jsonOption('one {name, createdMs, cap} per line')) as unknown as Argv<TargetArgs>,
  handler: async (args) => {
    await withNode(args, async ({ tree }) => {
      const cap = asDirectoryCap((await resolveCapPath(tree, parseCapPath(args.target))).cap);
      for (const { name, snapshot } of snapshotNames(await tree.listSnapshots(cap))) {
        if (args.json) await outJson({ name, createdMs: snapshot.createdMs, cap: snapshot.cap.toString() } satisfies SnapshotJsonLine);
        else await out(`${name}  ${snapshot.cap.toString()}\n`);
      }
    });
  },
};

const removeCommand: CommandModule<GlobalArgs, TargetArgs> = {
  command: 'remove <target>',
  aliases: ['rm'],
  describe: 'Remove a snapshot (its DIR-SNAP cap); gc can then free what only it kept',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('target', { ...positional, describe: 'the CS1:DIR-SNAP:… cap' })
      .option('json', jsonOption('{removed: true}')) as unknown as Argv<TargetArgs>,
  handler: async (args) => {
    const { cap, components } = parseCapPath(args.target);
    if (!(cap instanceof DirectoryReadCap) || cap.epoch === undefined || components.length > 0) {
      throw new InvalidInputError('snapshot remove takes a snapshot cap (CS1:DIR-SNAP:…)');
    }
    await withNode(args, async (node) => {
      const { tree } = node;
      const named = snapshotNames(await tree.listSnapshots(cap)).find((n) => n.snapshot.epoch === cap.epoch);
      await tree.removeSnapshot(cap);
      if (named !== undefined) {
        await recordCliChange(node, 'snapshot-remove', { cap: cap.at(undefined), components: ['.snapshots', named.name] }, (begin) =>
          begin([]),
        );
      }
      if (args.json) await outJson({ removed: true });
      else await out('removed\n');
    });
  },
};

export const snapshotCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'snapshot <command>',
  aliases: ['snapshots'],
  describe: 'Snapshots of a directory tree, made in O(1) and read through ordinary read-only caps: create, list, remove',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(createCommand)
      .command(listCommand)
      .command(removeCommand)
      .demandCommand(1, 'name a snapshot command: create, list or remove'),
  handler: () => undefined,
};
