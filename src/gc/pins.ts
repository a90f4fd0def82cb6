import { readFile } from 'node:fs/promises';
import { parseCap, UnknownCap, type Cap } from '../cap/index.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { InvalidInputError } from '../errors.js';

/**
 * The pins file (`<node>/private/pins`, 0600): caps that gc keeps alive
 * although no account's root reaches them, e.g. a directory shared out of
 * band, or a backup someone holds only the cap of. One cap per line; blank
 * lines and lines starting with `#` are comments. The file holds caps, so it
 * is as secret as the accounts file and is written atomically, 0600.
 */
export const PINS_FILE = 'private/pins';

/** Bound on the file read: ~10^5 caps. */
export const MAX_PINS_FILE_BYTES = 16 * 1024 * 1024;

export interface PinsFile {
  caps: Cap[];
  /** 1-based numbers of lines that are neither comments nor caps this version understands. */
  badLines: number[];
}

export async function readPins(file: string): Promise<PinsFile> {
  const text = await readIfExists(file);
  const caps: Cap[] = [];
  const badLines: number[] = [];
  if (text === undefined) return { caps, badLines };
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      const cap = parseCap(line);
      if (cap instanceof UnknownCap) badLines.push(i + 1);
      else caps.push(cap);
    } catch {
      badLines.push(i + 1);
    }
  });
  return { caps, badLines };
}

/** Adds `cap` (a line of its own) unless it is already pinned; answers whether the file changed. */
export async function addPin(file: string, cap: string): Promise<boolean> {
  checkPinnable(cap);
  const text = (await readIfExists(file)) ?? '# caps kept alive by `capstan gc`; one per line (capstan pin CAP)\n';
  if (lines(text).some((l) => l.trim() === cap)) return false;
  await writeFileAtomic(file, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${cap}\n`);
  return true;
}

/** Removes every line that is exactly `cap`; answers whether the file changed. */
export async function removePin(file: string, cap: string): Promise<boolean> {
  const text = await readIfExists(file);
  if (text === undefined) return false;
  const kept = lines(text).filter((l) => l.trim() !== cap);
  if (kept.length === lines(text).length) return false;
  await writeFileAtomic(file, kept.length === 0 ? '' : `${kept.join('\n')}\n`);
  return true;
}

function checkPinnable(cap: string): void {
  let parsed: Cap;
  try {
    parsed = parseCap(cap);
  } catch {
    throw new InvalidInputError('not a cap');
  }
  if (parsed instanceof UnknownCap) throw new InvalidInputError('not a cap this version understands');
}

function lines(text: string): string[] {
  const all = text.split(/\r?\n/);
  if (all.at(-1) === '') all.pop();
  return all;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_PINS_FILE_BYTES) throw new InvalidInputError(`pins file over ${MAX_PINS_FILE_BYTES} bytes`);
    return buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
