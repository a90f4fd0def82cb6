import { beforeAll, describe, expect, it } from 'vitest';
import type { Account } from '../../src/auth/accounts-file.js';
import { parseAccountsFile } from '../../src/auth/accounts-file.js';
import {
  createAuthenticator,
  type AccountSource,
  type AuthenticatorOptions,
  type PasswordAuthority,
} from '../../src/auth/authenticator.js';
import { hashPassword, verifyPassword, type ParsedPasswordHash } from '../../src/auth/password-hash.js';
import { keyFingerprint } from '../../src/auth/ssh-key.js';
import { CAP_A, CAP_B, CAP_C, captureLogger, makeKey, type TestKey } from './helpers.js';

let ed: TestKey, rsa: TestKey, ec: TestKey, stranger: TestKey;
let bobHash: string;
let source: AccountSource & { closed: boolean };

function memorySource(text: string): AccountSource & { closed: boolean } {
  const { accounts, errors } = parseAccountsFile(text);
  if (errors.length > 0) throw new Error(`test accounts refused: ${JSON.stringify(errors)}`);
  return {
    closed: false,
    accounts: accounts as ReadonlyMap<string, Account>,
    get: (user) => accounts.get(user),
    async close() {
      this.closed = true;
    },
  };
}

function fakeServer(answers: Record<string, string>): PasswordAuthority & { asked: string[]; closed: boolean } {
  return {
    asked: [],
    closed: false,
    async authenticate(user, password) {
      this.asked.push(user);
      return answers[`${user}:${password}`] ?? null;
    },
    async close() {
      this.closed = true;
    },
  };
}

/** Wraps the real scrypt check to record which hashes it ran against. */
function countingVerify() {
  const calls: ParsedPasswordHash[] = [];
  const verify = (password: string, hash: ParsedPasswordHash) => {
    calls.push(hash);
    return verifyPassword(password, hash);
  };
  return { calls, verify };
}

beforeAll(async () => {
  [ed, rsa, ec, stranger] = [makeKey('ed25519'), makeKey('rsa'), makeKey('ecdsa256'), makeKey('ed25519')];
  bobHash = await hashPassword('bob secret');
});

const text = () =>
  [
    `alice ${ed.type} ${ed.base64} ${CAP_A}`,
    `alice ${rsa.type} ${rsa.base64} ${CAP_A}`,
    `alice ${ec.type} ${ec.base64} ${CAP_A}`,
    `bob ${bobHash} ${CAP_B}`,
    `bob ${ed.type} ${ed.base64} ${CAP_B}`,
  ].join('\n');

function make(extra: Partial<AuthenticatorOptions> = {}) {
  source = memorySource(text());
  const log = captureLogger();
  const auth = createAuthenticator({ accountsFile: source, logger: log.logger, ...extra });
  return { auth, log };
}

const offered = (k: TestKey) => ({ algo: k.type, data: k.public.getPublicSSH() });

describe('authenticator: public keys', () => {
  it('accepts a listed key for its user, with the fingerprint', async () => {
    const { auth } = make();
    for (const k of [ed, rsa, ec]) {
      expect(await auth.acceptsPublicKey('alice', offered(k))).toEqual({
        user: 'alice',
        rootCap: CAP_A,
        method: 'publickey',
        keyFingerprint: keyFingerprint(k.public),
        appendOnly: false,
      });
    }
    expect(await auth.acceptsPublicKey('bob', offered(ed))).toMatchObject({ user: 'bob', rootCap: CAP_B });
  });

  it("refuses an unlisted key, another user's key, an unknown user and a mismatched algorithm", async () => {
    const { auth } = make();
    expect(await auth.acceptsPublicKey('alice', offered(stranger))).toBeNull();
    expect(await auth.acceptsPublicKey('bob', offered(rsa))).toBeNull();
    expect(await auth.acceptsPublicKey('nobody', offered(ed))).toBeNull();
    expect(await auth.acceptsPublicKey('alice', { algo: 'ssh-rsa', data: ed.public.getPublicSSH() })).toBeNull();
    expect(await auth.acceptsPublicKey('al ice', offered(ed))).toBeNull();
  });

  it('verifies signatures made by the private key, and nothing else', () => {
    const { auth } = make();
    const blob = Buffer.from('session id and userauth request');
    const other = Buffer.from('something else');
    expect(auth.verifyPublicKeySignature(offered(ed), blob, ed.private.sign(blob))).toBe(true);
    expect(auth.verifyPublicKeySignature(offered(ec), blob, ec.private.sign(blob))).toBe(true);
    expect(auth.verifyPublicKeySignature(offered(rsa), blob, rsa.private.sign(blob, 'sha256'), 'sha256')).toBe(true);
    expect(auth.verifyPublicKeySignature(offered(rsa), blob, rsa.private.sign(blob, 'sha512'), 'sha512')).toBe(true);
    expect(auth.verifyPublicKeySignature(offered(ed), other, ed.private.sign(blob))).toBe(false);
    expect(auth.verifyPublicKeySignature(offered(stranger), blob, ed.private.sign(blob))).toBe(false);
    expect(auth.verifyPublicKeySignature({ algo: 'ssh-ed25519', data: Buffer.from('garbage') }, blob, Buffer.alloc(64))).toBe(false);
    expect(auth.verifyPublicKeySignature(offered(ed), blob, Buffer.alloc(3))).toBe(false);
  });

  it('refuses RSA/SHA-1 signatures unless allowed', () => {
    const blob = Buffer.from('request');
    const sig = rsa.private.sign(blob, 'sha1');
    expect(make().auth.verifyPublicKeySignature(offered(rsa), blob, sig)).toBe(false);
    expect(make({ allowRsaSha1: true }).auth.verifyPublicKeySignature(offered(rsa), blob, sig)).toBe(true);
  });
});

describe('authenticator: passwords', () => {
  it('accepts the right password and refuses a wrong one, logging neither password nor cap', async () => {
    const { auth, log } = make();
    expect(await auth.checkPassword('bob', 'bob secret', { remoteAddress: '192.0.2.7' })).toEqual({
      user: 'bob',
      rootCap: CAP_B,
      method: 'password',
      appendOnly: false,
    });
    expect(await auth.checkPassword('bob', 'bob secreT')).toBeNull();
    expect(log.lines.some((l) => l.user === 'bob' && l.remoteAddress === '192.0.2.7')).toBe(true);
    expect(log.text()).not.toMatch(/bob secre|CS1:|\$scrypt\$ln/);
  });

  it("an unknown user, a key-only user and a wrong password each cost exactly one scrypt, with the file's parameters", async () => {
    const { calls, verify } = countingVerify();
    const { auth } = make({ verifyPassword: verify });
    expect(await auth.checkPassword('nobody', 'x')).toBeNull();
    expect(await auth.checkPassword('alice', 'x')).toBeNull();
    expect(await auth.checkPassword('bob', 'x')).toBeNull();
    expect(await auth.checkPassword('not a user name!', 'x')).toBeNull();
    expect(calls).toHaveLength(4);
    for (const c of calls) {
      expect(c.params).toEqual({ ln: 15, r: 8, p: 1 });
      expect(c.hash.length).toBe(32);
      expect(c.salt.length).toBe(16);
    }
  });

  it('the dummy follows the parameters of the hashes in the file', async () => {
    const fastHash = await hashPassword('pw', { ln: 11, r: 4, p: 2 });
    const { calls, verify } = countingVerify();
    const auth = createAuthenticator({
      accountsFile: memorySource(`carol ${fastHash} ${CAP_C}`),
      logger: captureLogger().logger,
      verifyPassword: verify,
    });
    expect(await auth.checkPassword('nobody', 'pw')).toBeNull();
    expect(calls[0]!.params).toEqual({ ln: 11, r: 4, p: 2 });
  });

  it('asks the account server only about users the file does not name', async () => {
    const server = fakeServer({ 'dora@example.com:dora pw': CAP_C, 'bob:bob secret': CAP_A });
    const { calls, verify } = countingVerify();
    const { auth } = make({ accountServer: server, verifyPassword: verify });
    expect(await auth.checkPassword('dora@example.com', 'dora pw')).toEqual({
      user: 'dora@example.com',
      rootCap: CAP_C,
      method: 'password',
      // The account server's answer is a cap and nothing else: it cannot make an account append-only.
      appendOnly: false,
    });
    expect(await auth.checkPassword('dora@example.com', 'wrong')).toBeNull();
    expect(await auth.checkPassword('bob', 'wrong')).toBeNull(); // file user: file decides
    expect(await auth.checkPassword('alice', 'x')).toBeNull(); // key-only file user: not shadowed by the server
    expect(await auth.checkPassword('bob', 'bob secret')).toMatchObject({ rootCap: CAP_B });
    expect(server.asked).toEqual(['dora@example.com', 'dora@example.com']);
    expect(calls).toHaveLength(5); // every attempt, server users too, costs one scrypt
  });

  it('works with only an account server', async () => {
    const server = fakeServer({ 'dora:pw': CAP_C });
    const auth = createAuthenticator({ accountServer: server, logger: captureLogger().logger });
    expect(await auth.checkPassword('dora', 'pw')).toMatchObject({ rootCap: CAP_C });
    expect(await auth.acceptsPublicKey('dora', offered(ed))).toBeNull();
  });

  it('sheds load beyond the hash queue bound instead of queueing without limit', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { auth, log } = make({
      hashConcurrency: 1,
      maxQueuedHashes: 0,
      verifyPassword: async () => {
        await gate;
        return false;
      },
    });
    const first = auth.checkPassword('bob', 'a');
    expect(await auth.checkPassword('bob', 'b')).toBeNull();
    expect(log.lines.some((l) => String(l.msg).includes('too many password checks'))).toBe(true);
    release();
    expect(await first).toBeNull();
  });

  it('never throws, even if a source does', async () => {
    const broken: PasswordAuthority = { authenticate: () => Promise.reject(new Error('boom')), close: async () => undefined };
    const auth = createAuthenticator({ accountServer: broken, logger: captureLogger().logger });
    expect(await auth.checkPassword('dora', 'pw')).toBeNull();
  });

  it('close() closes the sources', async () => {
    const server = fakeServer({});
    const { auth } = make({ accountServer: server });
    await auth.close();
    expect(source.closed).toBe(true);
    expect(server.closed).toBe(true);
  });
});
