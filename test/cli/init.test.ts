import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, oneErrorLine, runCli, stopAllCli } from '../helpers/cli.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('capstan init', () => {
  it('creates the node directory with private files 0600 in a 0700 folder', async () => {
    const node = path.join(tmp.dir, 'node');
    const r = await runCli(['init', '-d', node, '--listen', '127.0.0.1:2222']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^created capstan node in /);
    expect(r.stdout).toMatch(/host key ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\n/);
    expect(r.stdout).toMatch(/host key ssh-rsa SHA256:[A-Za-z0-9+/]{43}\n/);
    expect(r.stdout).toContain('127.0.0.1:2222');

    expect(await mode(node)).toBe(0o700);
    expect(await mode(path.join(node, 'private'))).toBe(0o700);
    for (const f of ['ssh_host_ed25519_key', 'ssh_host_rsa_key', 'convergence.secret', 'accounts']) {
      expect(await mode(path.join(node, 'private', f)), f).toBe(0o600);
    }
    expect(await readFile(path.join(node, 'private/ssh_host_ed25519_key'), 'utf8')).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(await readFile(path.join(node, 'private/ssh_host_ed25519_key.pub'), 'utf8')).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ /);
    expect(await readFile(path.join(node, 'private/ssh_host_rsa_key.pub'), 'utf8')).toMatch(/^ssh-rsa AAAA/);
    expect(await readFile(path.join(node, 'private/convergence.secret'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);

    const accounts = await readFile(path.join(node, 'private/accounts'), 'utf8');
    const active = accounts.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    expect(active).toEqual([]);
    expect(accounts).toMatch(/^# alice ssh-ed25519 /m);
    expect(accounts).toMatch(/^# bob \$scrypt\$/m);

    const cfg = await readFile(path.join(node, 'capstan.cfg'), 'utf8');
    expect(cfg).toMatch(/^listen = 127\.0\.0\.1:2222$/m);
    expect((await stat(path.join(node, 'store/chunks'))).isDirectory()).toBe(true);
    expect((await stat(path.join(node, 'store/slots'))).isDirectory()).toBe(true);

    const status = await runCli(['status', '-d', node]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^accounts\s+0 in private\/accounts$/m);
  });

  it('refuses an existing node and leaves it untouched', async () => {
    const node = path.join(tmp.dir, 'again');
    expect((await runCli(['init', '-d', node])).code).toBe(0);
    const before = await readFile(path.join(node, 'private/convergence.secret'), 'utf8');
    const r = await runCli(['init', '-d', node]);
    expect(r.code).not.toBe(0);
    expect(oneErrorLine(r)).toMatch(/is already a capstan node/);
    expect(await readFile(path.join(node, 'private/convergence.secret'), 'utf8')).toBe(before);
  });

  it('refuses a non-empty directory, accepts an empty one, honours $CAPSTAN_NODE_DIR', async () => {
    const busy = path.join(tmp.dir, 'busy');
    await mkdir(busy);
    await writeFile(path.join(busy, 'notes.txt'), 'mine');
    const r = await runCli(['init', '-d', busy]);
    expect(r.code).not.toBe(0);
    expect(oneErrorLine(r)).toMatch(/is not empty/);

    const empty = path.join(tmp.dir, 'empty');
    await mkdir(empty);
    const e = await runCli(['init'], { env: { CAPSTAN_NODE_DIR: empty } });
    expect(e.code).toBe(0);
    expect(await mode(empty)).toBe(0o700);
  });
});
