import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseCap, UnknownCap } from '../cap/index.js';
import { parseAccountsFile } from '../auth/index.js';
import type { AbortOptions } from '../errors.js';
import type { CompactResult } from '../store/chunks/chunk-store.js';
import type { OpenNode } from './open.js';
import { HomeStore } from '../homes/index.js';
import { nodePath } from './layout.js';
import { readHomesSecret } from './secrets.js';
import { markLive, type MarkProblem, type MarkResult, type MarkRoot } from '../gc/mark.js';
import { PINS_FILE, readPins } from '../gc/pins.js';
import { canSweep, sweep, type SweepResult } from '../gc/sweep.js';

export { PINS_FILE, addPin, removePin, readPins } from '../gc/pins.js';
export { markLive, type MarkOptions, type MarkProblem, type MarkResult, type MarkRoot } from '../gc/mark.js';
export { canSweep, sweep, type SweepOptions, type SweepResult } from '../gc/sweep.js';

/** Default grace period: a day, far beyond any one file's chunk-and-link time. */
export const DEFAULT_GRACE_HOURS = 24;

export interface GcOptions extends AbortOptions {
  graceMs: number;
  dryRun: boolean;
  now?: number;
  /**
   * The operator vouches that every root the account server (`[sftpd]
   * accounts.url`) hands out is pinned or also in the accounts file; without
   * it gc refuses to sweep on a node that has an account server.
   */
  accountServerRootsPinned?: boolean;
  /** Progress of the two phases, for a progress line; called often, must be cheap. */
  onProgress?: (progress: GcProgress) => void;
}

/** Where gc is: marking (walking from the roots) or sweeping (listing the store). */
export type GcProgress = { phase: 'mark'; mark: Readonly<MarkResult> } | { phase: 'sweep'; sweep: Readonly<SweepResult> };

export interface GcReport {
  roots: number;
  directories: number;
  files: number;
  /** When non-empty nothing was swept (sweep is undefined): the mark was incomplete. */
  problems: MarkProblem[];
  sweep?: SweepResult;
  /** What the store's compaction gave back after the sweep (packs; absent for stores that free space chunk by chunk). */
  compact?: CompactResult;
}

/**
 * `capstan gc`: roots are every account's root cap (private/accounts, or the
 * configured accounts file), every live home of a user-directory user
 * (src/homes: found in the slot store with the homes secret) and every
 * pinned cap (private/pins). A refused line in either file might name a
 * root, and so might a home slot that does not open, so each is a problem
 * that stops the sweep, like any gap in the mark (see mark.ts).
 */
export async function collectGarbage(node: OpenNode, options: GcOptions): Promise<GcReport> {
  const roots: MarkRoot[] = [];
  const problems: MarkProblem[] = [];

  const accountsText = await readFile(node.config.sftpd.accountsFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const accounts = parseAccountsFile(accountsText);
  for (const e of accounts.errors) problems.push({ path: `accounts file line ${e.line}`, detail: 'refused line (might name a root)' });
  const rootCaps = new Set<string>();
  for (const [user, account] of accounts.accounts) {
    if (rootCaps.has(account.rootCap)) continue;
    rootCaps.add(account.rootCap);
    const cap = parseCap(account.rootCap);
    if (cap instanceof UnknownCap) problems.push({ path: `account ${user}`, detail: 'root cap of unknown kind' });
    else roots.push({ label: `account ${user}`, cap });
  }
  if (node.config.sftpd.accountsUrl !== undefined && node.config.sftpd.accountsUrl !== '' && !options.accountServerRootsPinned) {
    problems.push({
      path: '[sftpd] accounts.url',
      detail: 'the account server hands out roots gc cannot list; pin them, then pass --account-server-roots-pinned',
    });
  }
  if (node.config.sftpd.users?.format === 'aws-transfer' && !options.accountServerRootsPinned) {
    problems.push({
      path: '[sftpd] users.url',
      detail:
        'an identity provider may name caps as HomeDirectory, which gc cannot list; pin them, then pass --account-server-roots-pinned',
    });
  }
  if (existsSync(node.config.sftpd.homesSecretFile)) {
    const homes = new HomeStore({
      slots: node.slots,
      secret: await readHomesSecret(node.config.sftpd.homesSecretFile),
      createRoot: () => Promise.reject(new Error('gc creates nothing')),
    });
    const onUnreadable = (si: string): void => {
      problems.push({ path: `home slot ${si}`, detail: 'does not open with this homes secret (might name a root)' });
    };
    for await (const home of homes.list({ ...options, onUnreadable })) {
      if (home.state.kind !== 'live' || rootCaps.has(home.state.cap)) continue;
      rootCaps.add(home.state.cap);
      const cap = parseCap(home.state.cap);
      if (cap instanceof UnknownCap) problems.push({ path: `home ${home.name}`, detail: 'root cap of unknown kind' });
      else roots.push({ label: `home ${home.name}`, cap });
    }
  } else if (node.config.sftpd.users !== undefined) {
    problems.push({ path: '[sftpd] users.homes_secret', detail: 'the homes secret is missing, so the homes cannot be listed' });
  }
  const pins = await readPins(nodePath(node.config.nodeDir, PINS_FILE));
  for (const line of pins.badLines) problems.push({ path: `pins file line ${line}`, detail: 'not a cap this version understands' });
  for (const [i, cap] of pins.caps.entries()) roots.push({ label: `pin ${i + 1}`, cap });

  if (!canSweep(node.chunks)) {
    problems.push({ path: '(store)', detail: 'this chunk store cannot tell chunk ages; gc is not supported on it' });
  }
  const { onProgress, ...walkOptions } = options;
  // Versions kept for snapshots since removed go first (nothing else reads them).
  await node.slots.history?.prune(walkOptions);
  const snapshots = new Map<string, bigint[]>();
  for await (const pin of node.slots.history?.pins(undefined, walkOptions) ?? []) {
    const si = Buffer.from(pin.root).toString('hex');
    snapshots.set(si, [...(snapshots.get(si) ?? []), pin.epoch]);
  }
  const mark = await markLive(node.tree, roots, {
    ...walkOptions,
    snapshots,
    onProgress: (m: Readonly<MarkResult>) => onProgress?.({ phase: 'mark', mark: m }),
  });
  problems.push(...mark.problems);
  const report: GcReport = { roots: roots.length, directories: mark.directories, files: mark.files, problems };
  if (problems.length === 0) {
    report.sweep = await sweep(node.chunks, mark.live, {
      ...walkOptions,
      onProgress: (r: Readonly<SweepResult>) => onProgress?.({ phase: 'sweep', sweep: r }),
    });
    if (node.chunks.compact !== undefined) report.compact = await node.chunks.compact({ ...walkOptions, dryRun: options.dryRun });
  }
  return report;
}
