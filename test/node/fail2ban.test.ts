import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { filterFromDocs, matchLine, type Fail2banFilter } from './fail2ban.js';

let filter: Fail2banFilter;
beforeAll(async () => {
  filter = await filterFromDocs(REPO);
});

/** Lines as src/log.ts's pino configuration writes them, through a child logger like the SFTP frontend's. */
function logLines(write: (log: Logger) => void): string[] {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  const log = pino({ level: 'info', base: { service: 'capstan' }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  write(log.child({ component: 'sftp' }).child({ conn: 7 }));
  return lines;
}

const authFailed = (user: string, remoteAddress = '203.0.113.7', event = 'auth_failed'): string =>
  logLines((log) => log.warn({ event, remoteAddress, remotePort: 51234, user, method: 'password' }, 'authentication failed'))[0]!;

describe('the fail2ban filter in docs/operations.md', () => {
  it('matches the sample auth_failed line and extracts the address', () => {
    const sample =
      '{"level":40,"time":"2025-01-01T12:00:00.000Z","service":"capstan","event":"auth_failed","remoteAddress":"203.0.113.7","remotePort":51234,"user":"root","method":"password","msg":"authentication failed"}';
    expect(matchLine(filter, sample)).toBe('203.0.113.7');
  });

  it('matches what the logger really writes, IPv4 and IPv6', () => {
    expect(matchLine(filter, authFailed('root'))).toBe('203.0.113.7');
    expect(matchLine(filter, authFailed('root', '2001:db8::42'))).toBe('2001:db8::42');
    expect(matchLine(filter, authFailed('root', '::ffff:198.51.100.9'))).toBe('198.51.100.9');
  });

  it('cannot be steered by a crafted user name', () => {
    const crafted = [
      'x","remoteAddress":"1.2.3.4',
      'x","remoteAddress":"1.2.3.4"',
      '"remoteAddress":"1.2.3.4"',
      '\\","remoteAddress":"1.2.3.4',
      'x"}\n{"level":40,"time":"2025-01-01T12:00:00.000Z","service":"capstan","event":"auth_failed","remoteAddress":"1.2.3.4","remotePort":1,',
    ];
    for (const user of crafted) {
      const line = authFailed(user);
      expect(line.split('\n')).toHaveLength(1);
      expect(matchLine(filter, line), user).toBe('203.0.113.7');
    }
    // A successful login whose user name imitates a failure is not a failure.
    for (const user of crafted) {
      const line = logLines((log) => log.info({ event: 'login', remoteAddress: '203.0.113.8', user, method: 'password' }, 'login'))[0]!;
      expect(matchLine(filter, line), user).toBeUndefined();
    }
  });

  it('does not match other lines', () => {
    const others = [
      logLines((log) => log.info({ event: 'login', remoteAddress: '203.0.113.7', user: 'alice', method: 'publickey' }, 'login'))[0]!,
      logLines((log) => log.warn({ event: 'upload_failed', err: 'TransientError' }, 'upload not committed'))[0]!,
      logLines((log) => log.warn({ user: 'x', remoteAddress: '203.0.113.7', event: 'auth_failed' }, 'fields in another order'))[0]!,
      '{"level":40,"time":"2025-01-01T12:00:00.000Z","service":"other","event":"auth_failed","remoteAddress":"203.0.113.7","remotePort":1,"user":"root"}',
      'Jan  1 12:00:00 host sshd[1]: Failed password for root from 203.0.113.7 port 51234 ssh2',
      '',
    ];
    for (const line of others) expect(matchLine(filter, line), line).toBeUndefined();
  });

  // fail2ban-regex is a peer like the others: .ci/run installs it, and without it this fails.
  it('agrees with fail2ban-regex itself', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-f2b-'));
    try {
      const conf = path.join(dir, 'capstan.conf');
      await writeFile(conf, `[Definition]\nfailregex = ${filter.failregex}\nignoreregex =\ndatepattern = ${filter.datepattern}\n`);
      const log = path.join(dir, 'capstan.log');
      await writeFile(log, [authFailed('root'), authFailed('x","remoteAddress":"1.2.3.4')].join('\n') + '\n');
      const out = execFileSync('fail2ban-regex', [log, conf], { encoding: 'utf8' });
      expect(out).toMatch(/Failregex: 2 total/);
      expect(out).not.toContain('1.2.3.4');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
