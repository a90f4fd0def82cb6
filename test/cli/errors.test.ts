import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAP_IN_TEXT, makeTempDir, oneErrorLine, runCli, stopAllCli } from '../helpers/cli.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  expect((await runCli(['init', '-d', node])).code).toBe(0);
  root = (await runCli(['mkdir', '-d', node])).stdout.trim();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('bad input: one line on stderr, non-zero exit, no stack trace, no cap', () => {
  it('unknown flags and commands, missing arguments (exit 2)', async () => {
    for (const args of [['ls', '--bogus', 'x'], ['frobnicate'], [], ['ls'], ['put', 'only-one'], ['account']]) {
      const r = await runCli(['-d', node, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneErrorLine(r), args.join(' ')).toMatch(/see capstan --help|capstan --help lists them/);
      expect(r.stdout).toBe('');
    }
  });

  it('a cap given where yargs did not expect it is not echoed', async () => {
    const r = await runCli(['-d', node, 'ls', root, root]);
    expect(r.code).toBe(2);
    expect(oneErrorLine(r)).toMatch(/Unknown argument/);
    expect(r.stderr).not.toMatch(CAP_IN_TEXT);
    expect(r.stderr).not.toContain(root.split(':')[2]!);
  });

  it('a missing node directory says how to make one', async () => {
    const r = await runCli(['-d', path.join(tmp.dir, 'nowhere'), 'status']);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r)).toMatch(/^capstan: node directory .*nowhere does not exist \(create one with "capstan init/);
    const notNode = await runCli(['-d', tmp.dir, 'ls', root]);
    expect(oneErrorLine(notNode)).toMatch(/is not a capstan node directory \(no capstan\.cfg/);
  });

  it('an unparsable or wrong-kind cap', async () => {
    const cases: [string[], RegExp][] = [
      [['ls', 'CS1:DIR:tooshort'], /malformed DIR cap: bad write secret/],
      [['ls', 'not-a-cap'], /expected CAP\/PATH, where CAP is a capstan cap/],
      [['ls', '/etc/passwd'], /expected CAP\/PATH/],
      [['ls', `${root}/../x`], /"\." and "\.\." are not allowed/],
      [['get', `${root}/nothing`], /nothing: no such file or directory/],
      [['get', root], /is a directory/],
      [['readonly', 'CS1:CHK:zz:zz:12'], /malformed CHK cap/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['-d', node, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(oneErrorLine(r), args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(CAP_IN_TEXT);
    }
  });

  it('a missing local file', async () => {
    const r = await runCli(['-d', node, 'put', path.join(tmp.dir, 'absent.txt'), `${root}/a.txt`]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r)).toMatch(/ENOENT: no such file or directory/);
    expect(r.stderr).not.toMatch(CAP_IN_TEXT);
  });

  it('a malformed capstan.cfg stops every command with the line and key', async () => {
    const broken = path.join(tmp.dir, 'broken');
    expect((await runCli(['init', '-d', broken])).code).toBe(0);
    const cfg = path.join(broken, 'capstan.cfg');
    const text = await readFile(cfg, 'utf8');
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith('listen = 127.0.0.1:8022'));
    lines[at] = 'listen = abc';
    await writeFile(cfg, lines.join('\n'));
    for (const args of [['status'], ['ls', root], ['mkdir']]) {
      const r = await runCli(['-d', broken, ...args]);
      expect(r.code).toBe(1);
      expect(oneErrorLine(r)).toBe(`capstan: capstan.cfg line ${at + 1}: [sftpd] listen: expected HOST:PORT, got "abc"`);
    }
  });

  it('--debug adds the stack trace, still without caps', async () => {
    const r = await runCli(['-d', node, '--debug', 'get', `${root}/nothing`]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe('capstan: nothing: no such file or directory');
    expect(r.stderr).toMatch(/\n\s+at /);
    expect(r.stderr).not.toMatch(CAP_IN_TEXT);
  });

  it('--help lists options with examples, for the CLI and each command', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/--node-dir/);
    expect(top.stdout).toMatch(/Examples:/);
    for (const cmd of ['init', 'run', 'demo', 'mkdir', 'ls', 'put', 'get', 'rm', 'mv', 'readonly', 'check', 'status']) {
      const r = await runCli([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(/Examples:/);
      expect(r.stdout, cmd).toMatch(/-d, --node-dir/);
    }
    for (const sub of ['add', 'list', 'remove', 'hash-password']) {
      const r = await runCli(['account', sub, '--help']);
      expect(r.code, sub).toBe(0);
      expect(r.stdout, sub).toMatch(/Examples:/);
    }
  });
});
