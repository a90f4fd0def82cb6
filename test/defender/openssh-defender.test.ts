import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Defender, DEFAULT_DEFENDER_OPTIONS } from '../../src/defender/index.js';
import { silentLogger } from '../../src/log.js';
import { missing, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { startGateway, type Gateway } from '../sftp/gateway-fixture.js';

/** OpenSSH's sftp and the defender: key logins are not scored; a banned address gets no session at all. */
const noSftp = skipNotice(missing('sftp', 'sshpass', 'ssh-keygen'), 'OpenSSH defender tests');

let gw: Gateway;
let defender: Defender;
let work: string;

beforeAll(async () => {
  if (noSftp !== undefined) return;
  defender = new Defender({ ...DEFAULT_DEFENDER_OPTIONS, threshold: 2, logger: silentLogger() });
  gw = await startGateway({ server: { defender, isKnownUser: (u) => u === 'alice' || u === 'reader' } });
  work = await mkdtemp(join(tmpdir(), 'capstan-defender-openssh-'));
});
afterAll(async () => {
  await gw?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(noSftp !== undefined)('defender with OpenSSH sftp', () => {
  it('key logins score nothing; wrong passwords ban; a banned address cannot even start', async () => {
    for (let i = 0; i < 3; i++) expect((await sftpBatch(gw.alice, work, ['pwd'])).code).toBe(0);
    expect(defender.bans()).toHaveLength(0);
    expect((await sftpBatch({ ...gw.alicePassword, password: 'wrong' }, work, ['pwd'])).code).not.toBe(0);
    expect((await sftpBatch({ ...gw.alicePassword, password: 'wrong' }, work, ['pwd'])).code).not.toBe(0);
    expect(defender.bans()).toHaveLength(1);
    const banned = await sftpBatch(gw.alice, work, ['pwd']);
    expect(banned.code).not.toBe(0);
    expect(banned.stderr).toMatch(/Connection (closed|reset)|kex_exchange_identification/);
  });
});
