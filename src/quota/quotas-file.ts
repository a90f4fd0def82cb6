import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isValidUserName } from '../auth/account-line.js';
import { InvalidInputError } from '../errors.js';

/**
 * The quotas file (`[quota] file`, default private/quotas): one line per
 * account with a quota, editable by hand or with `capstan account set`.
 *
 *   # USER [bytes=SIZE] [files=N]
 *   alice bytes=10G files=100000
 *   bob   bytes=500M
 *
 * SIZE is bytes, or a number with K, M, G or T (powers of 1024). A missing
 * or 0 limit is no limit; an account without a line has no quota. It is a
 * file of its own, not a field of the accounts file, because account-server
 * users have quotas too and are not in the accounts file, and so that the
 * accounts grammar (src/auth) stays as it is.
 */

export interface Quota {
  /** Logical bytes of the account's files; undefined: unlimited. */
  bytes?: number;
  /** Number of files; undefined: unlimited. */
  files?: number;
}

export const MAX_QUOTAS_FILE_BYTES = 4 * 1024 * 1024;
/** Binary multiples, largest first: the suffixes parseSize takes and formatQuotaSize gives. */
const UNITS = [
  ['T', 2 ** 40],
  ['G', 2 ** 30],
  ['M', 2 ** 20],
  ['K', 2 ** 10],
] as const;

/** `10G` → 10737418240. Throws InvalidInputError. */
export function parseSize(text: string): number {
  const m = /^([0-9]{1,15})([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (m === null) throw new InvalidInputError(`not a size (bytes, or a number with K, M, G or T): ${JSON.stringify(text)}`);
  const suffix = m[2]?.toUpperCase();
  const n = Number(m[1]) * (UNITS.find(([unit]) => unit === suffix)?.[1] ?? 1);
  if (!Number.isSafeInteger(n)) throw new InvalidInputError('size too large');
  return n;
}

/** The shortest exact form: 10737418240 → `10G`. */
export function formatQuotaSize(n: number): string {
  for (const [unit, f] of UNITS) if (n >= f && n % f === 0) return `${n / f}${unit}`;
  return String(n);
}

function parseCount(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw new InvalidInputError(`not a file count: ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parses the whole file; throws InvalidInputError naming the line. */
export function parseQuotas(text: string): Map<string, Quota> {
  const quotas = new Map<string, Quota>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [user, ...options] = line.split(/\s+/) as [string, ...string[]];
    const where = `quotas line ${i + 1}`;
    if (!isValidUserName(user)) throw new InvalidInputError(`${where}: invalid user name`);
    if (quotas.has(user)) throw new InvalidInputError(`${where}: ${user} is listed twice`);
    const quota: Quota = {};
    for (const option of options) {
      const [name, value] = option.split('=', 2);
      try {
        if (name === 'bytes' && value !== undefined) {
          const bytes = parseSize(value);
          if (bytes > 0) quota.bytes = bytes;
        } else if (name === 'files' && value !== undefined) {
          const files = parseCount(value);
          if (files > 0) quota.files = files;
        } else throw new InvalidInputError(`unknown option ${JSON.stringify(name)} (expected bytes=SIZE or files=N)`);
      } catch (err) {
        throw new InvalidInputError(`${where}: ${(err as Error).message}`);
      }
    }
    if (quota.bytes === undefined) delete quota.bytes;
    if (quota.files === undefined) delete quota.files;
    quotas.set(user, quota);
  });
  return quotas;
}

export function formatQuotaLine(user: string, quota: Quota): string {
  const parts = [user];
  if (quota.bytes !== undefined) parts.push(`bytes=${formatQuotaSize(quota.bytes)}`);
  if (quota.files !== undefined) parts.push(`files=${quota.files}`);
  return parts.join(' ');
}

/** The file's text, or undefined if it does not exist. */
export async function readQuotasText(path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    if (Buffer.byteLength(text) > MAX_QUOTAS_FILE_BYTES)
      throw new InvalidInputError(`quotas file larger than ${MAX_QUOTAS_FILE_BYTES} bytes`);
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readQuotas(path: string): Promise<Map<string, Quota>> {
  return parseQuotas((await readQuotasText(path)) ?? '');
}

/**
 * Sets (or, with an empty quota, removes) `user`'s line, keeping every other
 * line byte for byte; the file is replaced atomically (a running gateway
 * never reads half of it).
 */
export async function setQuotaLine(path: string, user: string, quota: Quota): Promise<void> {
  if (!isValidUserName(user)) throw new InvalidInputError('invalid user name');
  const text = (await readQuotasText(path)) ?? '# USER [bytes=SIZE] [files=N]   (SIZE: bytes or K, M, G, T; see docs/operations.md)\n';
  parseQuotas(text); // refuse to edit a file that does not parse: the operator must fix it first
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const empty = quota.bytes === undefined && quota.files === undefined;
  const at = lines.findIndex((l) => l.trim().split(/\s+/)[0] === user);
  if (at === -1 && !empty) lines.push(formatQuotaLine(user, quota));
  else if (at !== -1 && empty) lines.splice(at, 1);
  else if (at !== -1) lines[at] = formatQuotaLine(user, quota);
  await writeFileAtomic(path, lines.join('\n') + '\n');
}
