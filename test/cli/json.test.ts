import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint } from '../../src/auth/ssh-key.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import { CAP_IN_TEXT, makeTempDir, REPO, runCli, stopAllCli, cliAt } from '../helpers/cli.js';
import { loseObject, packedObjects } from '../helpers/packs.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;

const { ok } = cliAt(() => node, { quiet: true });

/** JSON Lines: every line one object. */
function jsonLines(text: string): Record<string, unknown>[] {
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** One document on one line. */
function jsonDocument(text: string): Record<string, unknown> {
  expect(text.split('\n')).toHaveLength(2);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Field paths of `value` as docs/cli-json.md writes them: `a.b`, `list[].c`. */
function fieldPaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => fieldPaths(v, `${prefix}[]`));
  if (value === null || typeof value !== 'object') return prefix === '' ? [] : [prefix];
  return Object.entries(value).flatMap(([k, v]) => {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    // An empty list, or a list of strings or numbers, is one field (`created`), documented by its own row.
    const scalarList = Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object');
    return scalarList ? [p] : v !== null && typeof v === 'object' ? fieldPaths(v, p) : [p];
  });
}

/** The fields docs/cli-json.md lists in the table of the section whose heading starts with `heading`. */
async function documentedFields(heading: string): Promise<Set<string>> {
  const doc = await readFile(path.join(REPO, 'docs/cli-json.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith(heading));
  if (section === undefined) throw new Error(`no section ${heading} in docs/cli-json.md`);
  return new Set([...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!));
}

async function expectDocumented(heading: string, values: unknown[]): Promise<void> {
  const documented = await documentedFields(heading);
  const printed = new Set(values.flatMap((v) => fieldPaths(v)));
  // An empty list documents its element fields, not itself.
  for (const field of printed)
    if (!documented.has(field) && ![...documented].some((d) => d.startsWith(`${field}[].`))) {
      throw new Error(`${heading}: field ${field} is printed but not in docs/cli-json.md`);
    }
}

beforeAll(async () => {
  tmp = await makeTempDir('capstan-json-');
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  root = (await ok(['mkdir'])).trim();
  await ok(['mkdir', `${root}/sub`]);
  await ok(['put', '-', `${root}/b.bin`], randomBytes(200_000));
  await ok(['put', '-', `${root}/a.txt`], 'hello\n');
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('--json', () => {
  it('ls prints one object per entry, sorted by name, with no cap; a file path gives its one line', async () => {
    const before = Date.now();
    const text = await ok(['ls', '--json', root]);
    expect(text).not.toMatch(CAP_IN_TEXT);
    const entries = jsonLines(text);
    expect(entries.map((e) => e['name'])).toEqual(['a.txt', 'b.bin', 'sub']);
    expect(entries[0]).toMatchObject({ type: 'file', size: 6, readonly: false });
    expect(entries[1]).toMatchObject({ type: 'file', size: 200_000 });
    expect(entries[2]).toMatchObject({ type: 'directory', size: null });
    for (const e of entries) {
      expect(Object.keys(e).sort()).toEqual(['executable', 'mtime', 'name', 'readonly', 'size', 'type']);
      expect(Date.parse(e['mtime'] as string)).toBeLessThanOrEqual(Date.now());
      expect(Date.parse(e['mtime'] as string)).toBeGreaterThan(before - 600_000);
    }
    expect(jsonLines(await ok(['ls', '--json', `${root}/b.bin`]))).toEqual([entries[1]]);
    expect(await ok(['ls', '--json', `${root}/sub`])).toBe('');
    await expectDocumented('`capstan ls --json', entries);
  });

  it('status prints one document with every figure of the human form and no cap', async () => {
    const text = await ok(['status', '--json']);
    expect(text).not.toMatch(CAP_IN_TEXT);
    const status = jsonDocument(text);
    expect(status).toMatchObject({
      nodeDir: node,
      nickname: '',
      gatewayRunning: false,
      sftp: { enabled: true, listen: '127.0.0.1:8022' },
      accounts: { file: path.join(node, 'private/accounts'), count: 0, refusedLines: 0, error: null },
      accountServer: null,
      http: null,
      convergence: 'per-account',
      logLevel: 'info',
      chunkStore: { backend: 'fs', dir: path.join(node, 'store/chunks') },
      slotStore: { backend: 'level', dir: path.join(node, 'store/slots'), directories: 2 },
      chunkSize: 1024 * 1024,
    });
    const chunkStore = status['chunkStore'] as { chunks: number; bytes: number };
    expect(chunkStore.chunks).toBeGreaterThan(0);
    expect(chunkStore.bytes).toBeGreaterThan(200_000);
    const hostKeys = status['hostKeys'] as { type: string; fingerprint: string }[];
    expect(hostKeys.map((k) => k.type).sort()).toEqual(['ssh-ed25519', 'ssh-rsa']);
    for (const k of hostKeys) expect(k.fingerprint).toMatch(/^SHA256:/);
    // The human form says the same.
    const human = await ok(['status']);
    expect(human).toContain(`${chunkStore.chunks} chunks`);
    expect(human).toMatch(/^slot store\s+leveldb store\/slots: 2 directories, 0 homes$/m);
    await expectDocumented('`capstan status --json', [status]);
  });

  it('account list prints one object per account; the root cap only with --show-caps', async () => {
    const pair = generateSshKeyPair('ed25519', { comment: 'alice@test' });
    const keyFile = path.join(tmp.dir, 'alice.pub');
    await writeFile(keyFile, `${pair.public}\n`);
    const parsed = utils.parseKey(pair.public);
    if (parsed instanceof Error) throw parsed;
    const aliceRoot = (await ok(['account', 'add', 'alice', '--key', keyFile])).trim();
    await ok(['account', 'add', 'bob', '--password-stdin', '--append-only', '--no-snapshots'], 'correct horse\n');

    const text = await ok(['account', 'list', '--json']);
    expect(text).not.toMatch(CAP_IN_TEXT);
    const accounts = jsonLines(text);
    expect(accounts).toEqual([
      {
        user: 'alice',
        keys: [{ type: 'ssh-ed25519', fingerprint: keyFingerprint(parsed) }],
        password: false,
        appendOnly: false,
        noSnapshots: false,
      },
      { user: 'bob', keys: [], password: true, appendOnly: true, noSnapshots: true },
    ]);
    const withCaps = jsonLines(await ok(['account', 'list', '--json', '--show-caps']));
    expect(withCaps[0]).toMatchObject({ user: 'alice', rootCap: aliceRoot });
    expect(withCaps[1]?.['rootCap']).toMatch(/^CS1:DIR:/);
    await expectDocumented('`capstan account list --json', withCaps);
    expect(jsonDocument(await ok(['status', '--json']))['accounts']).toMatchObject({ count: 2 });
  });

  it('check prints one document; problems go into it, not onto stderr, and the exit status is still 1', async () => {
    const good = jsonDocument(await ok(['check', '--json', '--verify', root]));
    expect(good).toMatchObject({ ok: true, verified: true, directories: 2, files: 2, unknown: 0, problems: [] });
    expect(good['chunks']).toBeGreaterThan(0);
    expect(good['bytes']).toBeGreaterThan(200_000);
    expect(jsonDocument(await ok(['check', '--json', root]))).toMatchObject({ ok: true, verified: false, bytes: 0 });

    // Lose the largest object: a data chunk of b.bin.
    await loseObject(node, (await packedObjects(node))[0]!);

    const bad = await runCli(['-d', node, 'check', '--json', root]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('');
    expect(bad.stdout).not.toMatch(CAP_IN_TEXT);
    const report = jsonDocument(bad.stdout);
    expect(report).toMatchObject({ ok: false, problems: [{ path: 'b.bin', kind: 'missing' }] });
    expect((report['problems'] as { detail: string }[])[0]!.detail).toMatch(/^chunk 1 of 1 \(/);
    await expectDocumented('`capstan check --json', [good, report]);
  });

  it('ln and cp print one document and exchange one line per account, without caps', async () => {
    const src = (await ok(['mkdir', `${root}/shared`])).trim();
    const linked = jsonDocument(await ok(['ln', '--json', '--readonly', src, `${root}/shared-ro`]));
    expect(linked).toEqual({ name: 'shared-ro', type: 'directory', access: 'read', replaced: false });
    await expectDocumented('`capstan ln --json', [linked]);
    await ok(['put', '-', `${root}/to-copy.txt`], 'copy me');
    const copied = jsonDocument(await ok(['cp', '--json', `${root}/to-copy.txt`, `${root}/copied.txt`]));
    expect(copied).toEqual({ name: 'copied.txt', size: 7, replaced: false });
    await expectDocumented('`capstan cp --json', [copied]);

    const text = await ok(['exchange', '--json', 'alice', 'bob']);
    expect(text).not.toMatch(CAP_IN_TEXT);
    const lines = jsonLines(text);
    expect(lines).toEqual([
      { user: 'alice', role: 'processor', created: ['alice:/inboxes', 'alice:/outboxes', 'alice:/processing'] },
      { user: 'bob', role: 'sender', created: ['bob:/input', 'alice:/outboxes/bob', 'alice:/inboxes/bob', 'bob:/output'] },
    ]);
    const again = jsonLines(await ok(['exchange', '--json', 'alice', 'bob']));
    await expectDocumented('`capstan exchange --json', [...lines, ...again]);
  });
});
