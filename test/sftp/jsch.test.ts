import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKeyLine } from '../../src/auth/index.js';
import type { DirectoryWriteCap } from '../../src/cap/index.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, skipNotice } from '../helpers/openssh.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * JSch 0.1.55 (Debian's libjsch-java), the Java SSH library of Ant's
 * scp/sftp tasks, Jenkins plugins and many integration tools. It knows no
 * Ed25519 and no rsa-sha2 signatures: it needs the RSA host key `capstan
 * init` makes next to the Ed25519 one, signed with SHA-1 (ssh-rsa), and
 * negotiates ECDH on NIST P-256 with AES-CTR and HMAC. test/helpers/JschClient.java
 * runs under the JDK's single-file launcher; what it stored is read back
 * through OpenSSH's sftp.
 */
const SUITE = 'JSch against a gateway';
const SOURCE = fileURLToPath(new URL('../helpers/JschClient.java', import.meta.url));
const JAR = '/usr/share/java/jsch.jar';

const jschMissing = (): string | undefined => (existsSync(JAR) ? undefined : `not installed: ${JAR} (libjsch-java)`);
const skip = peersOrSkip(SUITE, 'sftp', 'ssh-keygen', 'java') ?? skipNotice(jschMissing(), SUITE);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
let hostKeys: string[];

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp', 'ssh-keygen', 'java'); // under CI=true a missing jsch.jar already failed the file at load
  // As `capstan init` makes them: an Ed25519 host key and an RSA one.
  hostKeys = [generateSshKeyPair('ed25519').private, generateSshKeyPair('rsa').private];
  peer = await startPeerGateway('capstan-jsch-', { server: { hostKeys } });
  ({ gw, work } = peer);
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('logs in with its own algorithms; put, get, APPEND and RESUME, streams, setMtime, symlink, rename, ls; failures as SFTP codes', async () => {
    const data = randomBytes(700_000);
    const input = join(work, 'in.bin');
    const output = join(work, 'out.bin');
    await writeFile(input, data);
    const args = ['-cp', JAR, SOURCE, String(gw.port), 'alice', gw.password, input, output];
    const r = must(await run('java', args, { timeoutMs: 120_000 }), 'java JschClient.java');
    const NO_SUCH_FILE = 2;
    const FAILURE = 4;
    expect(JSON.parse(r.stdout)).toEqual({
      hostKey: 'ssh-rsa',
      version: '3',
      appended: 'hello world',
      resumed: '0123456789abcdef',
      streamSize: 1_000_000,
      skipped: 'abcdef',
      mtime: 1_000_000_000,
      readlink: 'up.bin',
      linkIsLink: true,
      throughLinkSize: data.length,
      ls: ['.', '..', 'link', 'renamed.txt', 'resume.txt', 'stream.bin', 'up.bin'],
      pwd: '/js',
      getMissing: NO_SUCH_FILE,
      rmdirNotEmpty: FAILURE,
      mkdirExisting: FAILURE,
      putInMissingDir: NO_SUCH_FILE,
      afterRm: true,
    });
    expect(sha(await readFile(output))).toBe(sha(data));
    expect(sha(await peer.stored('/js/up.bin'))).toBe(sha(data));
    expect((await peer.stored('/js/renamed.txt')).toString()).toBe('hello world');
    const listed = await peer.listing('/js');
    expect(listed).toMatch(/^l.* link -> up\.bin$/m);
  });

  it('an RSA key, which JSch signs with SHA-1: refused by default with the reason logged, accepted with [sftpd] rsa_sha1; an ECDSA key logs in', async () => {
    const key = async (type: string, bits: string) => {
      const file = join(work, `jsch_${type}`);
      must(await run('ssh-keygen', ['-q', '-t', type, '-b', bits, '-m', 'PEM', '-N', '', '-f', file]), 'ssh-keygen');
      return { file, publicLine: (await readFile(`${file}.pub`, 'utf8')).trim() };
    };
    const rsa = await key('rsa', '3072');
    const ecdsa = await key('ecdsa', '256');
    const options = {
      server: { hostKeys },
      accounts: (root: DirectoryWriteCap) => [
        formatKeyLine('rsa', rsa.publicLine, root.toString()),
        formatKeyLine('ec', ecdsa.publicLine, root.toString()),
      ],
    };
    const args = (g: Gateway, user = 'rsa', file = rsa.file) => ['-cp', JAR, SOURCE, String(g.port), user, `key=${file}`];

    const strict = await startPeerGateway('capstan-jsch-strict-', options);
    try {
      const refused = await run('java', args(strict.gw), { timeoutMs: 120_000 });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/Auth fail/);
      expect(strict.gw.logs).toContainEqual(
        expect.objectContaining({ event: 'auth_failed', user: 'rsa', reason: 'RSA signature over SHA-1' }),
      );
      const ec = must(
        await run('java', args(strict.gw, 'ec', ecdsa.file), { timeoutMs: 120_000 }),
        'java JschClient.java with an ECDSA key',
      );
      expect(JSON.parse(ec.stdout)).toEqual({ hostKey: 'ssh-rsa', version: '3', pwd: '/' });
    } finally {
      await strict.close();
    }
    const allowing = await startPeerGateway('capstan-jsch-sha1-', { ...options, allowRsaSha1: true });
    try {
      const r = must(await run('java', args(allowing.gw), { timeoutMs: 120_000 }), 'java JschClient.java with an RSA key');
      expect(JSON.parse(r.stdout)).toEqual({ hostKey: 'ssh-rsa', version: '3', pwd: '/' });
    } finally {
      await allowing.close();
    }
  });
});
