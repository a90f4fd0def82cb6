import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAccountsFile, type Account } from '../../src/auth/accounts-file.js';
import { createAuthenticator, type Authenticator, type LoginResult } from '../../src/auth/authenticator.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { keyFingerprint } from '../../src/auth/ssh-key.js';
import { CAP_A, CAP_B, captureLogger, makeKey, tempDir, type TestKey } from './helpers.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';

/**
 * Real SSH logins against an ssh2 server whose authentication handler is the
 * one the SFTP frontend is meant to write: the signatures come off the wire,
 * converted by ssh2, not made up by the test. OpenSSH's own client is used
 * when installed (reported skipped otherwise).
 */
const { Server, Client, utils } = ssh2;
const SSH = '/usr/bin/ssh';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';

let server: ssh2.Server;
let port: number;
let auth: Authenticator;
const logins: LoginResult[] = [];
let keys: Record<'ed25519' | 'rsa' | 'ecdsa256' | 'ecdsa521', TestKey>;
let stranger: TestKey;
let dir: string, cleanup: () => Promise<void>;

function handleAuth(ctx: ssh2.AuthContext): void {
  void (async () => {
    if (ctx.method === 'publickey') {
      const result = await auth.acceptsPublicKey(ctx.username, ctx.key);
      if (result === null) return ctx.reject(['publickey', 'password']);
      if (ctx.signature === undefined) return ctx.accept(); // the client is only asking whether the key would do
      if (!auth.verifyPublicKeySignature(ctx.key, ctx.blob!, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey', 'password']);
      logins.push(result);
      return ctx.accept();
    }
    if (ctx.method === 'password') {
      const result = await auth.checkPassword(ctx.username, ctx.password);
      if (result === null) return ctx.reject(['publickey', 'password']);
      logins.push(result);
      return ctx.accept();
    }
    ctx.reject(['publickey', 'password']);
  })();
}

beforeAll(async () => {
  keys = { ed25519: makeKey('ed25519'), rsa: makeKey('rsa'), ecdsa256: makeKey('ecdsa256'), ecdsa521: makeKey('ecdsa521') };
  stranger = makeKey('ed25519');
  ({ dir, cleanup } = await tempDir());
  const hash = await hashPassword('bob pw');
  const text = [...Object.values(keys).map((k) => `alice ${k.type} ${k.base64} ${CAP_A}`), `bob ${hash} ${CAP_B}`].join('\n');
  const { accounts } = parseAccountsFile(text);
  auth = createAuthenticator({
    accountsFile: { get: (u) => accounts.get(u), accounts: accounts as ReadonlyMap<string, Account>, close: async () => undefined },
    logger: captureLogger().logger,
  });
  const hostKey = generateSshKeyPair('ed25519').private;
  server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', handleAuth);
    client.on('ready', () => client.end());
    client.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await cleanup();
});

function ssh2Login(cfg: Partial<ssh2.ConnectConfig>): Promise<boolean> {
  return new Promise((resolve) => {
    const c = new Client();
    c.on('ready', () => {
      c.end();
      resolve(true);
    });
    c.on('error', () => resolve(false));
    c.connect({ host: '127.0.0.1', port, readyTimeout: 20_000, ...cfg });
  });
}

describe('real SSH logins', () => {
  it.each(['ed25519', 'rsa', 'ecdsa256', 'ecdsa521'] as const)('ssh2 client, %s key', async (kind) => {
    logins.length = 0;
    const k = keys[kind];
    expect(await ssh2Login({ username: 'alice', privateKey: k.privateText })).toBe(true);
    expect(logins).toEqual([
      { user: 'alice', rootCap: CAP_A, method: 'publickey', keyFingerprint: keyFingerprint(k.public), appendOnly: false },
    ]);
  });

  it('ssh2 client: an unlisted key and a wrong password fail, the right password works', async () => {
    logins.length = 0;
    expect(await ssh2Login({ username: 'alice', privateKey: stranger.privateText })).toBe(false);
    expect(await ssh2Login({ username: 'bob', password: 'wrong' })).toBe(false);
    expect(await ssh2Login({ username: 'bob', password: 'bob pw' })).toBe(true);
    expect(logins).toEqual([{ user: 'bob', rootCap: CAP_B, method: 'password', appendOnly: false }]);
  });

  it.skipIf(!existsSync(SSH)).each(['ed25519', 'rsa', 'ecdsa256'] as const)('OpenSSH client, %s key', async (kind) => {
    logins.length = 0;
    const keyPath = join(dir, `id_${kind}`);
    await writeFile(keyPath, keys[kind].privateText, { mode: 0o600 });
    await new Promise<void>((resolve) => {
      execFile(
        SSH,
        [
          '-F',
          '/dev/null',
          '-i',
          keyPath,
          '-p',
          String(port),
          '-o',
          'BatchMode=yes',
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'PreferredAuthentications=publickey',
          '-o',
          'ConnectTimeout=20',
          'alice@127.0.0.1',
          'true',
        ],
        { timeout: 30_000 },
        () => resolve(),
      ); // the server ends the connection after auth, so ssh's exit status says nothing
    });
    expect(logins).toEqual([
      { user: 'alice', rootCap: CAP_A, method: 'publickey', keyFingerprint: keyFingerprint(keys[kind].public), appendOnly: false },
    ]);
  });

  it.skipIf(!existsSync(SSH_KEYGEN))('fingerprints are the ones ssh-keygen -l prints', async () => {
    for (const k of Object.values(keys)) {
      const pubPath = join(dir, 'fp.pub');
      await writeFile(pubPath, k.publicLine + '\n');
      const out = await new Promise<string>((resolve, reject) =>
        execFile(SSH_KEYGEN, ['-l', '-E', 'sha256', '-f', pubPath], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      expect(out.split(' ')[1]).toBe(keyFingerprint(k.public));
    }
  });
});
