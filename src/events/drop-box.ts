import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { ChangeInput, CommitCheck, EventRecorder, PendingChange } from './api.js';
import { INTENT_VERSION, type Outbox, type StoredIntent } from './outbox.js';
import { provesNothingCommitted } from '../errors.js';
import { buildEvent, type CommitResolver } from './recorder.js';

/**
 * The drop box: how processes other than the gateway (CLI commands) record
 * events (docs/spec/events.md, Changes made by the CLI). A folder beside the
 * outbox (`<outbox.dir>-incoming`), one file per change:
 *
 * - `<id>.intent`: written (atomically, synced) before the change's slot
 *   update; JSON as an outbox intent plus `pid`, the writer's process id;
 * - renamed to `<id>.event` (then the folder synced) once the change
 *   committed; deleted if it did not.
 *
 * The gateway (DropBoxIngester) appends each `.event` to its outbox and
 * deletes the file, and resolves each `.intent` whose writer is no longer
 * running as it resolves its own intents. Files, not the outbox's LevelDB,
 * because the gateway holds that database's lock while it runs, and a CLI
 * command must work whether a gateway runs or not, on every slot backend.
 */

export interface DropBoxIntent extends StoredIntent {
  pid: number;
}

export function dropBoxDir(outboxDir: string): string {
  return `${outboxDir}-incoming`;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The EventRecorder of a CLI command: intents and events as files in the drop box. No bound: a command records a handful. */
export class DropBoxRecorder implements EventRecorder {
  constructor(
    private readonly dir: string,
    private readonly gateway: string,
    private readonly resolver: CommitResolver,
  ) {}

  admit(): void {}

  async begin(change: ChangeInput, check: CommitCheck): Promise<PendingChange> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const event = buildEvent(change, this.gateway);
    const record: DropBoxIntent = { v: INTENT_VERSION, pid: process.pid, event, check };
    const intentFile = path.join(this.dir, `${event.id}.intent`);
    await writeFileAtomic(intentFile, JSON.stringify(record));
    const commit = async (): Promise<void> => {
      await rename(intentFile, path.join(this.dir, `${event.id}.event`));
      await syncDir(this.dir);
    };
    return {
      committed: commit,
      failed: async (cause) => {
        try {
          if (!provesNothingCommitted(cause) && (await this.resolver(check))) await commit();
          else await unlink(intentFile);
        } catch {
          // Left as an intent: the gateway resolves it once this process has exited.
        }
      },
    };
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves what CLI commands recorded into the outbox: every `.event` file is
 * appended (then deleted: a crash in between appends it again, with the same
 * id), every `.intent` of a process that is gone is resolved by its check.
 * Returns how many files are left for later (intents of running commands,
 * checks that could not run).
 */
export async function ingestDropBox(dir: string, outbox: Outbox, resolver: CommitResolver, log: Logger): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let left = 0;
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    const isEvent = name.endsWith('.event');
    if (!isEvent && !name.endsWith('.intent')) continue;
    let record: DropBoxIntent;
    try {
      record = JSON.parse(await readFile(file, 'utf8')) as DropBoxIntent;
    } catch (err) {
      // Renamed by its writer or taken by another pass meanwhile; anything else is logged and kept.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        log.error({ event: 'event_dropbox_unreadable', file: name, err: (err as Error).message }, 'cannot read a CLI event file');
        left++;
      }
      continue;
    }
    if (record.v !== INTENT_VERSION) {
      left++;
      continue;
    }
    if (!isEvent) {
      if (alive(record.pid)) {
        left++;
        continue;
      }
      let committed: boolean;
      try {
        committed = await resolver(record.check);
      } catch {
        left++;
        continue;
      }
      log.info(
        { event: 'event_intent_resolved', id: record.event.id, operation: record.event.operation, committed, source: 'cli' },
        committed ? 'change of an interrupted command was committed: event queued' : 'change of an interrupted command was not committed',
      );
      if (!committed) {
        await unlink(file);
        continue;
      }
    }
    await outbox.append(record.event);
    await unlink(file);
  }
  return left;
}
