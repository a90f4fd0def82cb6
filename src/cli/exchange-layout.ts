import { DirectoryReadCap, DirectoryWriteCap, type Cap } from '../cap/index.js';
import { AlreadyExistsError, InvalidInputError, PermissionError } from '../errors.js';
import type { Directory, Tree } from '../tree/api.js';
import { linkShared } from '../tree/index.js';

/**
 * The file-exchange layout (docs/operations.md, File exchange), built from
 * capabilities in the accounts' own roots:
 *
 *     SENDER root:     input/            write: the sender uploads here
 *                      output/           read-only link to PROCESSOR's outboxes/SENDER
 *     PROCESSOR root:  inboxes/SENDER/   write link to SENDER's input
 *                      outboxes/SENDER/  write: results for SENDER
 *                      processing/       where the processor claims files (rename)
 *
 * Every step looks first and writes only what is missing, so running it
 * again, or with one more sender, changes nothing that is already in place:
 * adding a sender writes to that sender's root and to the processor's
 * inboxes/ and outboxes/, no one else's tree. A name that exists and holds
 * something else is never replaced (AlreadyExistsError, naming the path).
 */

/** What one step did, as `ACCOUNT:/path` (no caps). */
export type Made = string[];

export interface ExchangeAccount {
  user: string;
  root: DirectoryWriteCap;
}

/** The directory write cap under `name`, made if missing. */
async function ensureDirectory(dir: Directory, name: string, where: string, made: Made): Promise<DirectoryWriteCap> {
  const entry = await dir.lookup(name);
  if (entry === undefined) {
    const now = Date.now();
    const cap = await dir.mkdir(name, { mtimeMs: now, ctimeMs: now });
    made.push(where);
    return cap;
  }
  if (entry.cap instanceof DirectoryWriteCap) return entry.cap;
  throw new AlreadyExistsError(`${where} exists and is not a writable directory; move it away first`);
}

/** `cap` linked under `name` (as its read cap when `readonly`), unless it is already there. */
async function ensureLink(
  tree: Tree,
  dir: Directory,
  name: string,
  cap: DirectoryWriteCap,
  readonly: boolean,
  where: string,
  made: Made,
): Promise<void> {
  const want: Cap = readonly ? cap.readonly() : cap;
  const entry = await dir.lookup(name);
  if (entry !== undefined) {
    if (entry.cap.toString() === want.toString()) return;
    throw new AlreadyExistsError(`${where} exists and links something else; move it away first`);
  }
  const now = Date.now();
  await linkShared(dir, name, cap, { size: 0, mtimeMs: now, ctimeMs: now }, (c) => tree.directory(c), {
    overwrite: false,
    readonly,
  });
  made.push(where);
}

/** Sets up (or completes) the layout for `senders` around `processor`; returns, per sender, what was made. */
export async function buildExchange(
  tree: Tree,
  processor: ExchangeAccount,
  senders: readonly ExchangeAccount[],
): Promise<{ processor: Made; senders: Map<string, Made> }> {
  const p = processor.user;
  const proc = tree.directory(processor.root);
  const processorMade: Made = [];
  const inboxes = tree.directory(await ensureDirectory(proc, 'inboxes', `${p}:/inboxes`, processorMade));
  const outboxes = tree.directory(await ensureDirectory(proc, 'outboxes', `${p}:/outboxes`, processorMade));
  await ensureDirectory(proc, 'processing', `${p}:/processing`, processorMade);
  const made = new Map<string, Made>();
  for (const sender of senders) {
    const s = sender.user;
    const steps: Made = [];
    const root = tree.directory(sender.root);
    const input = await ensureDirectory(root, 'input', `${s}:/input`, steps);
    const outbox = await ensureDirectory(outboxes, s, `${p}:/outboxes/${s}`, steps);
    await ensureLink(tree, inboxes, s, input, false, `${p}:/inboxes/${s}`, steps);
    await ensureLink(tree, root, 'output', outbox, true, `${s}:/output`, steps);
    made.set(s, steps);
  }
  return { processor: processorMade, senders: made };
}

/** An account's root as a directory write cap, or why it cannot take part. */
export function writableRoot(user: string, rootCap: Cap): DirectoryWriteCap {
  if (rootCap instanceof DirectoryWriteCap) return rootCap;
  if (rootCap instanceof DirectoryReadCap) throw new PermissionError(`${user} has a read-only root; the exchange needs a writable one`);
  throw new InvalidInputError(`${user}'s root is not a directory`);
}
