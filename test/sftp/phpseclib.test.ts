import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKeyLine } from '../../src/auth/index.js';
import type { DirectoryWriteCap } from '../../src/cap/index.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, skipNotice } from '../helpers/openssh.js';
import { sha256Hex as sha, startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * phpseclib 1.0 (Debian 12's php-seclib), the pure-PHP SSH library under
 * PHP applications' SFTP (Flysystem's adapter, Drupal, WordPress plugins).
 * Its key exchanges are group exchange, which the gateway cannot perform,
 * and diffie-hellman-group14-sha1, offered only with [sftpd] kex_sha1; it
 * signs with rsa-sha2-256 and sends SYMLINK in the draft's order to any
 * server that is not OpenSSH. test/helpers/phpseclib-client.php drives it;
 * what it stored is read back through OpenSSH's sftp.
 */
const SUITE = 'phpseclib against a gateway';
const CLIENT = fileURLToPath(new URL('../helpers/phpseclib-client.php', import.meta.url));
const LIBRARY = '/usr/share/php/Net/SFTP.php';

const libraryMissing = (): string | undefined => (existsSync(LIBRARY) ? undefined : `not installed: ${LIBRARY} (php-seclib)`);
const skip = peersOrSkip(SUITE, 'sftp', 'ssh-keygen', 'php') ?? skipNotice(libraryMissing(), SUITE);

let peer: PeerGateway;
let keyDir: string;
let rsaKey: string;
// As `capstan init` makes them: an Ed25519 host key and an RSA one (phpseclib 1.0 knows no Ed25519).
const hostKeys = [generateSshKeyPair('ed25519').private, generateSshKeyPair('rsa').private];

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp', 'ssh-keygen', 'php'); // under CI=true a missing php-seclib already failed the file at load
  // A PEM (PKCS#1) key: what phpseclib 1.0's Crypt_RSA reads.
  keyDir = await mkdtemp(join(tmpdir(), 'capstan-phpseclib-key-'));
  rsaKey = join(keyDir, 'id_rsa');
  must(await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-m', 'PEM', '-N', '', '-f', rsaKey]), 'ssh-keygen');
  const rsaPublic = (await readFile(`${rsaKey}.pub`, 'utf8')).trim();
  peer = await startPeerGateway('capstan-phpseclib-', {
    server: { hostKeys, kexSha1: true },
    accounts: (root: DirectoryWriteCap) => [formatKeyLine('rsa', rsaPublic, root.toString())],
  });
});
afterAll(async () => {
  await peer?.close();
  if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
});

const php = (port: number, user: string, credential: string, input = '/dev/null', output = '/dev/null') =>
  run('php', [CLIENT, String(port), user, credential, input, output], { timeoutMs: 120_000 });

describe.skipIf(skip)(SUITE, () => {
  it('logs in with a password; put, get, a range, RESUME, a write at an offset, chmod, touch, rename, symlink, nlist, recursive delete', async () => {
    const { gw, work } = peer;
    const data = randomBytes(700_000);
    const input = join(work, 'in.bin');
    const output = join(work, 'out.bin');
    await writeFile(input, data);
    const r = must(await php(gw.port, 'alice', `password:${gw.password}`, input, output), 'php phpseclib-client.php');
    expect(JSON.parse(r.stdout)).toEqual({
      kex: 'diffie-hellman-group14-sha1',
      hostKey: 'rsa-sha2-256',
      mkdir: true,
      chdir: true,
      pwd: '/php',
      put: true,
      size: data.length,
      get: true,
      range: data.subarray(300_000, 300_008).toString('hex'),
      putString: true,
      resume: true,
      atOffset: true,
      note: 'Jello\nworld\n',
      // capstan keeps the execute bits of a mode; a file is rw-r--r-- plus them.
      chmod: 0o100755,
      touch: true,
      stat: { size: 12, mtime: 1_000_000_000, permissions: '755', type: 1 },
      rename: true,
      symlink: true,
      readlink: 'renamed.txt',
      nlist: ['.', '..', 'link', 'renamed.txt'],
      isDir: true,
      getMissing: false,
      missingError: 'NET_SFTP_STATUS_NO_SUCH_FILE: no such file or directory',
      rmdirNotEmpty: false,
      deleteTree: true,
      afterDelete: false,
    });
    expect(sha(await readFile(output))).toBe(sha(data));
    expect(sha(await peer.stored('/php/up.bin'))).toBe(sha(data));
    // The link made through phpseclib is the one `ln -s renamed.txt sub/link` makes (gone with sub/ now).
    expect(await peer.listing('/php')).not.toMatch(/renamed\.txt ->|link ->/);
  });

  it('logs in with an RSA key, signed with rsa-sha2-256', async () => {
    const r = must(await php(peer.gw.port, 'rsa', `key:${rsaKey}`), 'php phpseclib-client.php with an RSA key');
    expect(JSON.parse(r.stdout)).toMatchObject({ kex: 'diffie-hellman-group14-sha1', pwd: '/php', deleteTree: true });
  });

  it('without [sftpd] kex_sha1: refused during the key exchange, and the log line names what it offered and the key', async () => {
    const strict = await startPeerGateway('capstan-phpseclib-strict-', { server: { hostKeys } });
    try {
      const r = await php(strict.gw.port, 'alice', `password:${strict.gw.password}`);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/login failed/);
      const line = strict.gw.logs.find((l) => l['event'] === 'handshake_failed');
      expect(line).toMatchObject({
        reason: 'no matching key exchange algorithm',
        hint: '[sftpd] kex_sha1 = true would allow diffie-hellman-group14-sha1',
      });
      expect(String(line?.['offered']).split(',')).toEqual(
        expect.arrayContaining(['diffie-hellman-group-exchange-sha256', 'diffie-hellman-group14-sha1']),
      );
    } finally {
      await strict.close();
    }
  });
});
