import { readFile } from 'node:fs/promises';
import { parseAccountsFile } from '../auth/accounts-file.js';
import { recordAround, type BeginChange, type ChangeInput } from '../events/api.js';
import type { OpenNode } from '../node/open.js';
import type { CapPath } from './cap-path.js';

/**
 * Events of CLI changes (docs/spec/events.md, Changes made by the CLI): the
 * same operations and the same intent → update → event order as through
 * SFTP, recorded into the drop box the gateway takes in.
 *
 * A CLI command names a cap, not an account. When the cap is an account's
 * root (as the accounts file has it), the event is that account's, with base `root`,
 * exactly as the same change through SFTP; otherwise the user is `capstan:cli`
 * (no account name has a colon) with base `uri`.
 */
export const CLI_EVENT_USER = 'capstan:cli';

async function accountOf(node: OpenNode, cap: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(node.config.sftpd.accountsFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const [user, account] of parseAccountsFile(text).accounts) if (account.rootCap === cap) return user;
  return undefined;
}

/** Makes `change` (which calls `begin` right before its slot update) and records it, when [events] is on. */
export async function recordCliChange<T>(
  node: OpenNode,
  operation: ChangeInput['operation'],
  target: CapPath,
  change: (begin: BeginChange) => Promise<T>,
  extra: Pick<ChangeInput, 'size' | 'mtimeMs' | 'checksums'> & { from?: CapPath } = {},
): Promise<T> {
  const recorder = node.events;
  if (recorder === undefined) return change(async () => {});
  const user = await accountOf(node, target.cap.toString());
  const { from, ...upload } = extra;
  const input: ChangeInput = {
    user: user ?? CLI_EVENT_USER,
    operation,
    base: user !== undefined ? 'root' : 'uri',
    path: target.components.join('/'),
    ...upload,
  };
  if (from !== undefined) input.fromPath = from.components.join('/');
  recorder.admit();
  return recordAround(recorder, input, change);
}
