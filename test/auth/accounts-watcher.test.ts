import { chmod, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccountsFile, type AccountsFileOptions } from '../../src/auth/accounts-watcher.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { waitFor } from '../helpers/wait.js';
import { CAP_A, CAP_B, CAP_C, captureLogger, makeKey, tempDir, type TestKey } from './helpers.js';

let ed: TestKey, rsa: TestKey, hash: string;
let dir: string, cleanup: () => Promise<void>, path: string;
const open: AccountsFile[] = [];

beforeAll(async () => {
  [ed, rsa] = [makeKey('ed25519'), makeKey('rsa')];
  hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
});
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  path = join(dir, 'accounts');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
  await cleanup();
});

async function start(text: string, extra: Partial<AccountsFileOptions> = {}) {
  await writeFile(path, text, { mode: 0o600 });
  const log = captureLogger();
  const file = await AccountsFile.open(path, { logger: log.logger, debounceMs: 50, pollIntervalMs: 300, ...extra });
  open.push(file);
  return { file, log };
}

/** The way editors and our CLI replace a file: write a temp file, rename it over. */
async function replaceByRename(text: string): Promise<void> {
  const tmp = join(dir, `.accounts.${Math.random().toString(16).slice(2)}.tmp`);
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

const aliceLine = () => `alice ${ed.type} ${ed.base64} ${CAP_A}`;
const bobLine = () => `bob ${hash} ${CAP_B}`;

describe('AccountsFile', () => {
  it('loads at open, and refuses to start on a missing file', async () => {
    const { file } = await start(`${aliceLine()}\n${bobLine()}\n`);
    expect([...file.accounts.keys()]).toEqual(['alice', 'bob']);
    expect(file.get('alice')!.rootCap).toBe(CAP_A);
    expect(file.generation).toBe(1);
    await expect(AccountsFile.open(join(dir, 'nope'), { logger: captureLogger().logger })).rejects.toMatchObject({
      name: 'InvalidInputError',
    });
  });

  it('sees a rename-into-place edit within a few seconds', async () => {
    const { file } = await start(`${aliceLine()}\n`);
    await replaceByRename(`${aliceLine()}\n${bobLine()}\n`);
    await waitFor(() => file.get('bob') !== undefined);
    expect(file.get('bob')!.rootCap).toBe(CAP_B);
  });

  it('sees an in-place rewrite, and a removed user goes away', async () => {
    const { file } = await start(`${aliceLine()}\n${bobLine()}\n`);
    await writeFile(path, `${bobLine()}\n`);
    await waitFor(() => file.get('alice') === undefined);
    expect(file.get('bob')).toBeDefined();
  });

  it('the periodic stat alone notices changes when fs.watch is off', async () => {
    const { file } = await start(`${aliceLine()}\n`, { useFsWatch: false });
    await replaceByRename(`${bobLine()}\n`);
    await waitFor(() => file.get('bob') !== undefined && file.get('alice') === undefined);
  });

  it('an edit with no valid line keeps the last good accounts and logs each line number', async () => {
    const { file, log } = await start(`${aliceLine()}\n${bobLine()}\n`);
    await replaceByRename(`# broken\nalice hunter2 ${CAP_A}\ngarbage\n`);
    await waitFor(() => log.lines.some((l) => String(l.msg).includes('no valid line')));
    expect([...file.accounts.keys()]).toEqual(['alice', 'bob']);
    expect(file.generation).toBe(1);
    const refused = log.lines.filter((l) => String(l.msg).includes('refused')).map((l) => l.line);
    expect(refused).toEqual([2, 3]);
    expect(log.text()).not.toContain('hunter2');
    expect(log.text()).not.toContain(CAP_A);
  });

  it('an emptied (truncated) file keeps the last good accounts', async () => {
    const { file, log } = await start(`${aliceLine()}\n`);
    await writeFile(path, '');
    await waitFor(() => log.lines.some((l) => String(l.msg).includes('no valid line')));
    expect(file.get('alice')).toBeDefined();
  });

  it("a refused line keeps its user's previous account; other users take the new text", async () => {
    const { file, log } = await start(`${aliceLine()}\n${bobLine()}\n`);
    await replaceByRename(
      [
        `alice ${rsa.type} ${rsa.base64} ${CAP_A}`, // alice swaps her key ...
        `alice ssh-ed25519 AAAAtypo ${CAP_A}`, // ... but mistypes a line: keeps her old account whole
        `bob ${hash} ${CAP_C}`, // bob's root changes
        `carol ${rsa.type} ${rsa.base64} ${CAP_C}`, // new user, with one good and one bad line
        `carol plaintext ${CAP_C}`,
      ].join('\n'),
    );
    await waitFor(() => file.get('carol') !== undefined);
    expect(file.get('alice')!.keys.map((k) => k.type)).toEqual(['ssh-ed25519']);
    expect(file.get('bob')!.rootCap).toBe(CAP_C);
    expect(file.get('carol')!.keys.map((k) => k.type)).toEqual(['ssh-rsa']);
    expect(log.lines.filter((l) => String(l.msg).includes('refused:')).map((l) => l.line)).toEqual([2, 5]);
    expect(log.lines.some((l) => l.user === 'alice' && String(l.msg).includes('keeping its previous account'))).toBe(true);
  });

  it('an unreadable or deleted file keeps everything, and its return is loaded', async () => {
    const { file, log } = await start(`${aliceLine()}\n`);
    await unlink(path);
    await waitFor(() => log.lines.some((l) => String(l.msg).includes('unreadable')));
    expect(file.get('alice')).toBeDefined();
    await writeFile(path, `${bobLine()}\n`);
    await waitFor(() => file.get('bob') !== undefined);
    expect(file.get('alice')).toBeUndefined();
    if (process.getuid?.() !== 0) {
      // root reads anything, so the permission case only means something for other users
      await chmod(path, 0o000);
      await file.reload();
      expect(file.get('bob')).toBeDefined();
    }
  });

  it('a file over the size bound is refused, keeping the accounts', async () => {
    const { file, log } = await start(`${aliceLine()}\n`, { maxBytes: 4096 });
    await replaceByRename(`${aliceLine()}\n${'#'.repeat(5000)}\n${bobLine()}\n`);
    await waitFor(() => log.lines.some((l) => String(l.msg).includes('larger than')));
    expect(file.get('bob')).toBeUndefined();
  });

  it('close() stops watching', async () => {
    const { file } = await start(`${aliceLine()}\n`);
    await file.close();
    await replaceByRename(`${bobLine()}\n`);
    // Proving that nothing happens needs time to pass: 800 ms is two poll intervals (300 ms) and the
    // debounce (50 ms) over, after which a file still watching would have reloaded.
    await new Promise((r) => setTimeout(r, 800));
    expect(file.get('bob')).toBeUndefined();
    expect(file.generation).toBe(1);
  });
});
