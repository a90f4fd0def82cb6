import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatQuotaSize, parseQuotas, parseSize, setQuotaLine, UsageBook, type UsageLedger } from '../../src/quota/index.js';
import { usageLedgerConformance } from '../conformance/usage-ledger.js';

/** The quotas file grammar and edits, and the usage counters' file (src/quota). */

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'capstan-quota-'));
  dirs.push(d);
  return d;
}

describe('quotas file', () => {
  it('parses sizes with binary units and formats them back exactly', () => {
    expect(parseSize('10G')).toBe(10 * 2 ** 30);
    expect(parseSize('1536k')).toBe(1536 * 1024);
    expect(parseSize('5MiB')).toBe(5 * 2 ** 20);
    expect(parseSize('123')).toBe(123);
    expect(() => parseSize('1.5G')).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    expect(formatQuotaSize(10 * 2 ** 30)).toBe('10G');
    expect(formatQuotaSize(1536 * 1024)).toBe('1536K');
    expect(formatQuotaSize(1000)).toBe('1000');
  });

  it('parses lines, comments and 0 as no limit; names the faulty line', () => {
    const q = parseQuotas('# comment\n\nalice bytes=10G files=100000\nbob   bytes=500M\ncarol files=0\n');
    expect(q.get('alice')).toEqual({ bytes: 10 * 2 ** 30, files: 100_000 });
    expect(q.get('bob')).toEqual({ bytes: 500 * 2 ** 20 });
    expect(q.get('carol')).toEqual({});
    expect(() => parseQuotas('alice\nbob size=1\n')).toThrow(/quotas line 2: unknown option/);
    expect(() => parseQuotas('alice bytes=1\nalice files=2\n')).toThrow(/line 2: alice is listed twice/);
    expect(() => parseQuotas('bad/name bytes=1\n')).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
  });

  it('setQuotaLine adds, replaces and removes one line, keeping the others byte for byte', async () => {
    const file = join(await tempDir(), 'quotas');
    await writeFile(file, '# mine\nbob    bytes=1M\ndave files=3\n');
    await setQuotaLine(file, 'alice', { bytes: 2 ** 30 });
    await setQuotaLine(file, 'dave', { files: 4 });
    expect(await readFile(file, 'utf8')).toBe('# mine\nbob    bytes=1M\ndave files=4\nalice bytes=1G\n');
    await setQuotaLine(file, 'bob', {});
    expect(await readFile(file, 'utf8')).toBe('# mine\ndave files=4\nalice bytes=1G\n');
  });
});

const files = new WeakMap<UsageLedger, string>();
const openBook = async (file: string): Promise<UsageLedger> => {
  const book = await UsageBook.open(file, { owner: true, flushMs: 60_000 });
  files.set(book, file);
  return book;
};
usageLedgerConformance('UsageBook', {
  setup: async () => openBook(join(await tempDir(), 'usage.json')),
  teardown: (book) => book.close(),
  reopen: async (book) => {
    await book.close();
    return openBook(files.get(book) ?? '');
  },
});

describe('UsageBook', () => {
  it('persists counters and adopts a newer recount written by someone else', async () => {
    const file = join(await tempDir(), 'usage.json');
    // Only explicit flushes: a timer flush racing the CLI's write below would make this flaky.
    const book = await UsageBook.open(file, { flushMs: 60_000, owner: true });
    await book.set('alice', { bytes: 100, files: 2, countedAt: 1000 });
    await book.flush();
    // A CLI recount (newer countedAt) lands in the file; the gateway's next flush keeps it.
    const cli = await UsageBook.open(file);
    await cli.set('alice', { bytes: 42, files: 7, countedAt: 2000 });
    await cli.close();
    await book.add('alice', 1, 0);
    await book.flush();
    expect(await book.get('alice')).toEqual({ bytes: 42, files: 7, countedAt: 2000 });
    await book.close();
    const again = await UsageBook.open(file, { owner: true });
    expect(await again.get('alice')).toEqual({ bytes: 42, files: 7, countedAt: 2000 });
    await again.close();
  });

  it('a gateway that finds the counters left open (a crash) forgets them: every account is recounted', async () => {
    const file = join(await tempDir(), 'usage.json');
    const crashed = await UsageBook.open(file, { flushMs: 60_000, owner: true });
    await crashed.set('alice', { bytes: 100, files: 2, countedAt: 1000 });
    await crashed.flush(); // and then the process dies: no close
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ open: true });
    // A CLI's book does not judge: it keeps what it finds.
    expect(await (await UsageBook.open(file)).get('alice')).toEqual({ bytes: 100, files: 2, countedAt: 1000 });
    const next = await UsageBook.open(file, { owner: true });
    expect(await next.get('alice')).toBeUndefined();
    await next.close();
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ open: false });
  });

  it('starts empty from a missing or damaged file', async () => {
    const file = join(await tempDir(), 'usage.json');
    expect(await (await UsageBook.open(file)).get('alice')).toBeUndefined();
    await writeFile(file, '{not json');
    expect(await (await UsageBook.open(file)).get('alice')).toBeUndefined();
  });
});
