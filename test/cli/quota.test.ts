import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCli, stopAllCli, cliAt } from '../helpers/cli.js';

/** `capstan account add/set --quota --max-files --recount`, against a real node directory (dist build). */

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let quotasFile: string;

const { ok } = cliAt(() => node);

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  quotasFile = path.join(node, 'private/quotas');
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('capstan account quotas', () => {
  it('add --quota/--max-files writes the quotas file; set changes one limit and keeps the other', async () => {
    await ok(['account', 'add', 'alice', '--password-stdin', '--quota', '1M', '--max-files', '10'], 'pw\n');
    expect(await readFile(quotasFile, 'utf8')).toMatch(/^alice bytes=1M files=10$/m);
    expect(await ok(['account', 'set', 'alice', '--quota', '2G'])).toBe('alice bytes=2G files=10\n');
    expect(await ok(['account', 'set', 'alice', '--max-files', 'none'])).toBe('alice bytes=2G\n');
    // An account-server user (not in the accounts file) may have a quota too; other lines are kept as they are.
    await ok(['account', 'set', 'carol@example.com', '--quota', '1536K']);
    const text = await readFile(quotasFile, 'utf8');
    expect(text).toMatch(/^alice bytes=2G$/m);
    expect(text).toMatch(/^carol@example\.com bytes=1536K$/m);
    expect(await ok(['account', 'set', 'carol@example.com', '--quota', 'none'])).toBe('carol@example.com (no quota)\n');
    expect(await readFile(quotasFile, 'utf8')).not.toContain('carol');
  });

  it('refuses a bad size, no change at all, and an unparsable quotas file', async () => {
    expect((await runCli(['-d', node, 'account', 'set', 'alice', '--quota', '12Q'])).code).toBe(2);
    expect((await runCli(['-d', node, 'account', 'set', 'alice'])).code).toBe(2);
    const before = await readFile(quotasFile, 'utf8');
    await writeFile(quotasFile, before + 'alice bytes=1G\n'); // listed twice
    const r = await runCli(['-d', node, 'account', 'set', 'alice', '--quota', '3G']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/listed twice/);
    await writeFile(quotasFile, before);
  });

  it('--recount walks the account tree and stores the count', async () => {
    const root = (await ok(['account', 'list', '--show-caps'])).match(/^alice\troot\t(\S+)$/m)![1]!;
    const local = path.join(tmp.dir, 'f');
    await writeFile(local, Buffer.alloc(3000, 1));
    await ok(['mkdir', `${root}/sub`]);
    await ok(['put', local, `${root}/a`]);
    await ok(['put', local, `${root}/sub/b`]);
    expect(await ok(['account', 'set', 'alice', '--recount'])).toBe('alice: 6000 bytes in 2 files\n');
    const usage = JSON.parse(await readFile(path.join(node, 'store/quota-usage.json'), 'utf8')) as {
      users: Record<string, { bytes: number; files: number }>;
    };
    expect(usage.users.alice).toMatchObject({ bytes: 6000, files: 2 });
    const r = await runCli(['-d', node, 'account', 'set', 'nobody', '--recount']);
    expect(r.code).toBe(1);
  });
});
