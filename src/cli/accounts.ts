import { listAccounts, type AccountSummary } from '../auth/index.js';
import { NotFoundError } from '../errors.js';
import { formatQuotaLine, parseSize, readQuotas, setQuotaLine, type Quota } from '../quota/index.js';
import { loadNodeConfig, type GlobalArgs } from './context.js';
import { UsageError } from './errors.js';

/** What the account commands share (so that none imports another): a user's current root, and quota changes. */

/** The root cap `user` already has in the accounts file, if any. */
export async function existingRoot(accountsFile: string, user: string): Promise<string | undefined> {
  return (await existingAccount(accountsFile, user))?.rootCap;
}

/** `user` as the accounts file defines it (root cap included), if it does. */
export async function existingAccount(accountsFile: string, user: string): Promise<AccountSummary | undefined> {
  try {
    const { accounts } = await listAccounts(accountsFile, { includeCaps: true });
    return accounts.find((a) => a.user === user);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** `--quota 10G` / `--max-files 1000`; `none` or 0 removes that limit. */
export function quotaChange(args: { quota?: string | undefined; maxFiles?: string | undefined }, current: Quota = {}): Quota {
  const next: Quota = { ...current };
  const off = (v: string) => v === 'none' || v === '0';
  if (args.quota !== undefined) {
    if (off(args.quota)) delete next.bytes;
    else {
      try {
        next.bytes = parseSize(args.quota);
      } catch (err) {
        throw new UsageError(`--quota: ${(err as Error).message}`);
      }
    }
  }
  if (args.maxFiles !== undefined) {
    if (off(args.maxFiles)) delete next.files;
    else if (/^[0-9]{1,15}$/.test(args.maxFiles)) next.files = Number(args.maxFiles);
    else throw new UsageError(`--max-files: expected a number or none, got ${JSON.stringify(args.maxFiles)}`);
  }
  return next;
}

/** Writes USER's quota line (after merging the change) to the node's quotas file; returns the line. */
export async function applyQuota(
  args: GlobalArgs & { user: string; quota?: string | undefined; maxFiles?: string | undefined },
): Promise<string> {
  const config = await loadNodeConfig(args);
  const current = (await readQuotas(config.quota.file)).get(args.user);
  const next = quotaChange(args, current);
  await setQuotaLine(config.quota.file, args.user, next);
  return next.bytes === undefined && next.files === undefined ? `${args.user} (no quota)` : formatQuotaLine(args.user, next);
}
