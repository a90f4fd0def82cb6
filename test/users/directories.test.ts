import { randomBytes } from 'node:crypto';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticator.js';
import { HomeStore } from '../../src/homes/index.js';
import { MemorySlotStore } from '../../src/store/memory-slot-store.js';
import {
  AwsTransferDirectory,
  CachedUserDirectory,
  JsonClient,
  LimitedUserDirectory,
  LocalEgaDirectory,
  type Lookup,
  type LookupRequest,
  type UserDirectory,
} from '../../src/users/index.js';
import { captureLogger, makeKey } from '../auth/helpers.js';

/** A real directory write cap (test/vectors/dirs.json). */
const CAP_A = 'CS1:DIR:ugswy4dlr4cfhjz2ydxfedq3ofzc27h3z5onmdfh44x4zmonwxbq';
import { AwsIdentityProvider, CegaUsersServer } from '../helpers/user-directories.js';

/** Each contract against its test server (the same servers the OpenSSH tests use), and the wrappers with a fake clock. */

const alice = makeKey('ed25519', 'alice@test');
const offered = (k: typeof alice) => ({ algo: k.type, data: k.public.getPublicSSH() });

describe('LocalEgaDirectory', () => {
  const cega = new CegaUsersServer({ user: 'fega', password: 'testing' });
  const log = captureLogger();
  let dir: LocalEgaDirectory;
  beforeAll(async () => {
    await cega.start();
    dir = new LocalEgaDirectory({
      url: `${cega.url}/username/%s`,
      client: new JsonClient({ auth: { kind: 'basic', user: 'fega', password: 'testing' }, timeoutMs: 2000 }),
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await dir.close();
    await cega.stop();
  });

  it('asks GET <endpoint>/<name> with basic auth and reads the record', async () => {
    cega.users.set('alice', { username: 'alice', uid: 1, passwordHash: await bcryptHash('pw', 4), sshPublicKeys: [alice.publicLine] });
    const answer = await dir.lookup({ user: 'alice' });
    expect(answer.kind).toBe('found');
    if (answer.kind !== 'found') return;
    expect(answer.record.keys).toHaveLength(1);
    expect(answer.record.passwordHash?.format).toBe('bcrypt');
    expect(answer.record.home).toEqual({ kind: 'home', name: 'alice' });
    expect(cega.requests.at(-1)).toBe('/username/alice');
    expect(dir.urlFor('bob').href).toBe(`${cega.url}/username/bob`);
    const appended = new LocalEgaDirectory({
      url: `${cega.url}/username`,
      client: new JsonClient({ auth: { kind: 'none' }, timeoutMs: 1 }),
      logger: log.logger,
    });
    expect(appended.urlFor('bob@example.org').href).toBe(`${cega.url}/username/bob@example.org`);
  });

  it('tells no such user from an outage and from refused credentials', async () => {
    expect(await dir.lookup({ user: 'nobody' })).toEqual({ kind: 'absent' });
    const wrong = new LocalEgaDirectory({
      url: `${cega.url}/username/%s`,
      client: new JsonClient({ auth: { kind: 'basic', user: 'fega', password: 'nope' }, timeoutMs: 2000 }),
      logger: log.logger,
    });
    expect(await wrong.lookup({ user: 'alice' })).toMatchObject({ kind: 'unavailable', reason: expect.stringContaining('HTTP 401') });
    await wrong.close();
  });

  it('refuses records the contract does not allow, saying why and quoting nothing', async () => {
    const cases: [object, string][] = [
      [{ username: 'other', uid: 1, sshPublicKeys: [alice.publicLine] }, 'username is not the name asked for'],
      [{ username: 'mal', sshPublicKeys: [alice.publicLine] }, 'no positive integer uid'],
      [{ username: 'mal', uid: 0, sshPublicKeys: [alice.publicLine] }, 'no positive integer uid'],
      [{ username: 'mal', uid: 3, passwordHash: null, sshPublicKeys: [] }, 'neither passwordHash nor sshPublicKeys'],
      [{ username: 'mal', uid: 3, sshPublicKeys: 'ssh-ed25519 AAAA' }, 'sshPublicKeys is not an array'],
    ];
    for (const [record, reason] of cases) {
      cega.users.set('mal', record as never);
      expect(await dir.lookup({ user: 'mal' })).toEqual({ kind: 'unavailable', reason: `malformed answer: ${reason}` });
    }
    cega.users.set('mal', { username: 'mal', uid: 3, passwordHash: '$apr1$salt$0123456789abcdefghijkl' });
    expect(await dir.lookup({ user: 'mal' })).toMatchObject({ kind: 'found', record: { keys: [] } });
    expect(log.lines.find((l) => l['event'] === 'directory_hash_refused')).toMatchObject({ user: 'mal', format: '$apr1$' });
    expect(log.text()).not.toContain('0123456789abcdefghijkl');
  });

  it('a directory that does not answer in time, or answers too much, is unavailable', async () => {
    cega.delayMs = 500;
    const slow = new LocalEgaDirectory({
      url: `${cega.url}/username/%s`,
      client: new JsonClient({ auth: { kind: 'basic', user: 'fega', password: 'testing' }, timeoutMs: 100 }),
      logger: log.logger,
    });
    try {
      expect(await slow.lookup({ user: 'alice' })).toEqual({ kind: 'unavailable', reason: 'no answer within 100 ms' });
    } finally {
      cega.delayMs = 0;
      await slow.close();
    }
    cega.users.set('big', { username: 'big', uid: 9, sshPublicKeys: Array.from({ length: 2000 }, () => alice.publicLine) });
    expect(await dir.lookup({ user: 'big' })).toMatchObject({ kind: 'unavailable', reason: expect.stringContaining('larger than') });
  });
});

describe('AwsTransferDirectory', () => {
  const idp = new AwsIdentityProvider('s-1234567890abcdef0', { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret', region: 'us-east-1' });
  const log = captureLogger();
  let dir: AwsTransferDirectory;
  beforeAll(async () => {
    await idp.start();
    dir = new AwsTransferDirectory({
      url: idp.invokeUrl,
      serverId: idp.serverId,
      client: new JsonClient({
        auth: { kind: 'aws-sigv4', credentials: async () => idp.credentials, region: 'us-east-1' },
        timeoutMs: 2000,
      }),
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await dir.close();
    await idp.stop();
  });

  it('key lookups carry no Password header and read PublicKeys; password lookups are decided by the provider', async () => {
    idp.users.set('kim', {
      publicKeys: [alice.publicLine],
      passwordHash: await bcryptHash('kim pw', 4),
      homeDirectory: '/bucket/home/kim',
    });
    const before = idp.passwordHeaders;
    const keys = await dir.lookup({ user: 'kim', remoteAddress: '::ffff:192.0.2.7' });
    expect(keys).toMatchObject({ kind: 'found', record: { home: { kind: 'home', name: '/bucket/home/kim' } } });
    expect(idp.passwordHeaders).toBe(before);
    expect(idp.queries.at(-1)?.get('sourceIp')).toBe('192.0.2.7');
    expect(await dir.lookup({ user: 'kim', password: 'kim pw' })).toMatchObject({
      kind: 'found',
      record: { passwordAccepted: true, keys: [] },
    });
    expect(await dir.lookup({ user: 'kim', password: 'wrong' })).toEqual({ kind: 'absent' });
    expect(await dir.lookup({ user: 'stranger', password: 'x' })).toEqual({ kind: 'absent' });
  });

  it('LOGICAL homes, caps as HomeDirectory, and answers it refuses', async () => {
    const home = async (user: string) => {
      const a = await dir.lookup({ user });
      return a.kind === 'found' ? a.record.home : a;
    };
    idp.users.set('ned', { homeDirectoryType: 'LOGICAL', homeDirectoryDetails: JSON.stringify([{ Entry: '/', Target: '/b/ned' }]) });
    expect(await home('ned')).toEqual({ kind: 'home', name: '/b/ned' });
    idp.users.set('two', {
      homeDirectoryType: 'LOGICAL',
      homeDirectoryDetails: JSON.stringify([
        { Entry: '/a', Target: '/b/a' },
        { Entry: '/c', Target: '/b/c' },
      ]),
    });
    expect(await home('two')).toMatchObject({ kind: 'unavailable', reason: expect.stringContaining('exactly one mapping') });
    idp.users.set('capped', { homeDirectory: CAP_A });
    expect(await home('capped')).toEqual({ kind: 'cap', cap: CAP_A });
    idp.users.set('plain', {});
    expect(await home('plain')).toEqual({ kind: 'home', name: 'plain' });
    const unsigned = new AwsTransferDirectory({
      url: idp.invokeUrl,
      serverId: idp.serverId,
      client: new JsonClient({ auth: { kind: 'none' }, timeoutMs: 2000 }),
      logger: log.logger,
    });
    expect(await unsigned.lookup({ user: 'plain' })).toMatchObject({ kind: 'unavailable', reason: expect.stringContaining('HTTP 403') });
    await unsigned.close();
  });
});

/** A directory that answers what it is told, counting and holding requests. */
class ScriptedDirectory implements UserDirectory {
  readonly format = 'localega';
  calls: LookupRequest[] = [];
  release: (() => void)[] = [];
  hold = false;
  constructor(
    public answer: (r: LookupRequest) => Lookup,
    readonly passwordChecking = false,
  ) {}
  async lookup(r: LookupRequest): Promise<Lookup> {
    this.calls.push(r);
    if (this.hold) await new Promise<void>((resolve) => this.release.push(resolve));
    return this.answer(r);
  }
  async close(): Promise<void> {}
}

const found = (user: string): Lookup => ({ kind: 'found', record: { user, keys: [alice.public], home: { kind: 'home', name: user } } });

describe('CachedUserDirectory', () => {
  it('remembers users found for the TTL and failures for the negative TTL only', async () => {
    let now = 0;
    const inner = new ScriptedDirectory((r) =>
      r.user === 'alice' ? found('alice') : r.user === 'down' ? { kind: 'unavailable', reason: 'x' } : { kind: 'absent' },
    );
    const cache = new CachedUserDirectory(inner, { ttlMs: 3600_000, negativeTtlMs: 30_000, now: () => now });
    for (let i = 0; i < 3; i++) for (const user of ['alice', 'ghost', 'down']) await cache.lookup({ user });
    expect(inner.calls.map((c) => c.user)).toEqual(['alice', 'ghost', 'down']);
    expect([cache.knowledge('alice'), cache.knowledge('ghost'), cache.knowledge('down'), cache.knowledge('new')]).toEqual([
      'known',
      'unknown',
      'unavailable',
      undefined,
    ]);
    now = 30_001;
    for (const user of ['alice', 'ghost', 'down']) await cache.lookup({ user });
    expect(inner.calls.map((c) => c.user)).toEqual(['alice', 'ghost', 'down', 'ghost', 'down']);
    now = 3600_001;
    await cache.lookup({ user: 'alice' });
    expect(inner.calls).toHaveLength(6);
  });

  it('files password-checking answers under user and password, and never caches an aborted lookup', async () => {
    const inner = new ScriptedDirectory((r) => (r.password === 'right' ? found(r.user) : { kind: 'absent' }), true);
    const cache = new CachedUserDirectory(inner, { ttlMs: 60_000, negativeTtlMs: 0 });
    expect(await cache.lookup({ user: 'kim', password: 'right' })).toMatchObject({ kind: 'found' });
    expect(await cache.lookup({ user: 'kim', password: 'right' })).toMatchObject({ kind: 'found' });
    expect(await cache.lookup({ user: 'kim', password: 'wrong' })).toEqual({ kind: 'absent' });
    expect(await cache.lookup({ user: 'kim', password: 'wrong' })).toEqual({ kind: 'absent' });
    expect(inner.calls.map((c) => c.password)).toEqual(['right', 'wrong', 'wrong']);
    const aborted = new AbortController();
    aborted.abort();
    const other = new ScriptedDirectory(() => ({ kind: 'unavailable', reason: 'login ended before the answer' }));
    const c2 = new CachedUserDirectory(other, { ttlMs: 60_000, negativeTtlMs: 60_000 });
    await c2.lookup({ user: 'x', signal: aborted.signal });
    await c2.lookup({ user: 'x' });
    expect(other.calls).toHaveLength(2);
  });
});

describe('LimitedUserDirectory', () => {
  it('bounds lookups in flight, joins lookups of the same user, and lets a caller stop waiting', async () => {
    const inner = new ScriptedDirectory((r) => found(r.user));
    inner.hold = true;
    const limited = new LimitedUserDirectory(inner, 2);
    const a1 = limited.lookup({ user: 'a' });
    const a2 = limited.lookup({ user: 'a' });
    const b = limited.lookup({ user: 'b' });
    expect(await limited.lookup({ user: 'c' })).toEqual({ kind: 'unavailable', reason: '2 lookups already in flight' });
    const gone = new AbortController();
    const waiting = limited.lookup({ user: 'b', signal: gone.signal });
    gone.abort();
    expect(await waiting).toEqual({ kind: 'unavailable', reason: 'login ended before the answer' });
    expect(inner.calls.map((c) => c.user)).toEqual(['a', 'b']);
    for (const release of inner.release) release();
    expect((await Promise.all([a1, a2, b])).map((x) => x.kind)).toEqual(['found', 'found', 'found']);
    expect(limited.peak).toBe(2);
    expect(limited.inFlight).toBe(0);
  });
});

describe('authenticator with a user directory', () => {
  it('keys and passwords of looked-up users; the home opened only by openRoot, once; revoked homes refused', async () => {
    const log = captureLogger();
    const hash = await bcryptHash('pw', 4);
    const { parseCryptHash } = await import('../../src/auth/crypt-hash.js');
    const parsed = parseCryptHash(hash);
    if (!parsed.ok) throw new Error('hash');
    const inner = new ScriptedDirectory((r) =>
      r.user === 'alice'
        ? {
            kind: 'found',
            record: { user: 'alice', keys: [alice.public], passwordHash: parsed.hash, home: { kind: 'home', name: 'alice' } },
          }
        : { kind: 'unavailable', reason: 'down' },
    );
    let made = 0;
    const homes = new HomeStore({ slots: new MemorySlotStore(), secret: randomBytes(32), createRoot: async () => `CS1:DIR:made${made++}` });
    const auth = createAuthenticator({
      userDirectory: new CachedUserDirectory(inner, { ttlMs: 60_000, negativeTtlMs: 0 }),
      homes,
      logger: log.logger,
    });
    try {
      const byKey = await auth.acceptsPublicKey('alice', offered(alice));
      expect(byKey).toMatchObject({ user: 'alice', home: 'alice', method: 'publickey' });
      expect(made).toBe(0); // a key merely offered creates nothing
      expect(await auth.openRoot(byKey!)).toBe('CS1:DIR:made0');
      const byPassword = await auth.checkPassword('alice', 'pw');
      expect(await auth.openRoot(byPassword!)).toBe('CS1:DIR:made0');
      expect(await auth.checkPassword('alice', 'wrong')).toBeNull();
      expect(auth.knowsUser('alice')).toBe(true);
      expect(await auth.checkPassword('bob', 'pw')).toBeNull();
      expect(auth.knowsUser('bob')).toBeUndefined();
      expect(inner.calls.filter((c) => c.user === 'alice')).toHaveLength(1);
      await homes.revoke('alice');
      expect(await auth.openRoot(byKey!)).toBeNull();
      expect(log.lines.map((l) => l['event'])).toEqual(expect.arrayContaining(['home_created', 'home_revoked', 'directory_unavailable']));
      expect(log.text()).not.toContain('CS1:DIR:made');
      expect(log.text()).not.toContain(hash);
    } finally {
      await auth.close();
    }
  });
});
