import { describe, expect, it } from 'vitest';
import { parseConfigText, parseHostPort, renderConfigFile, schemaEntries, formatHostPort } from '../../src/config/index.js';
import { DEFAULT_CHUNK_SIZE } from '../../src/tree/index.js';

const NODE = '/srv/node';

function configError(text: string): string {
  try {
    parseConfigText(NODE, text);
  } catch (err) {
    expect((err as Error).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config schema', () => {
  it('every default parses with its own type', () => {
    for (const { section, key, spec } of schemaEntries()) {
      const result = spec.type.parse(spec.default);
      expect(result.ok, `[${section}] ${key} default ${JSON.stringify(spec.default)}`).toBe(true);
      expect(spec.description.length).toBeGreaterThan(10);
    }
  });

  it('an empty file gives the defaults, with paths resolved against the node directory', () => {
    const c = parseConfigText(NODE, '');
    expect(c.node).toEqual({ nickname: '', logLevel: 'info', logFormat: 'auto', convergence: 'per-account' });
    expect(c.sftpd).toEqual({
      enabled: true,
      listen: { host: '127.0.0.1', port: 8022 },
      hostKeyFiles: ['/srv/node/private/ssh_host_ed25519_key', '/srv/node/private/ssh_host_rsa_key'],
      accountsFile: '/srv/node/private/accounts',
      accountsUrlCacheTtlSeconds: 3600,
      accountsUrlTimeoutSeconds: 10,
      homesSecretFile: '/srv/node/private/homes.secret',
      idleTimeoutSeconds: 900,
      legacyScp: true,
      rsaSha1: false,
      kexSha1: false,
      proxyProtocolFrom: [],
    });
    expect(c.storage).toEqual({
      backend: 'fs',
      fsDir: '/srv/node/store/chunks',
      fsFsync: true,
      slotsDir: '/srv/node/store/slots',
      chunkSize: DEFAULT_CHUNK_SIZE,
      checksums: ['sha256'],
      slots: { backend: 'level' },
      s3: {
        region: 'us-east-1',
        bucket: '',
        prefix: '',
        addressing: 'path',
        concurrency: 8,
        timeoutSeconds: 30,
        retries: 4,
        credentialsFile: '/srv/node/private/s3-credentials',
        cacheDir: '/srv/node/store/s3-cache',
        cacheBytes: 1024 * 1024 * 1024,
      },
    });
    expect(c.http).toEqual({});
  });

  it('slots.backend = postgres takes the postgres keys; a bad URL is never echoed', () => {
    const c = parseConfigText(
      NODE,
      '[storage]\nslots.backend = postgres\nslots.postgres.url = postgres://u:pw@db:5432/x\nslots.postgres.schema = gw_1\n',
    );
    expect(c.storage.slots).toEqual({
      backend: 'postgres',
      url: 'postgres://u:pw@db:5432/x',
      passwordFile: '/srv/node/private/postgres-password',
      schema: 'gw_1',
      poolSize: 10,
    });
    expect(() => parseConfigText(NODE, '[storage]\nslots.postgres.url = http://u:secretpw@db/\n')).toThrow(
      /slots\.postgres\.url: expected empty or a postgres/,
    );
    expect(() => parseConfigText(NODE, '[storage]\nslots.postgres.url = http://u:secretpw@db/\n')).not.toThrow(/secretpw/);
    expect(() => parseConfigText(NODE, '[storage]\nslots.postgres.schema = Bad-Name\n')).toThrow(/slots\.postgres\.schema/);
  });

  it('the file init writes parses back to the defaults', () => {
    expect(parseConfigText(NODE, renderConfigFile())).toEqual(parseConfigText(NODE, ''));
    const c = parseConfigText(NODE, renderConfigFile({ 'sftpd.listen': '0.0.0.0:2222' }));
    expect(c.sftpd.listen).toEqual({ host: '0.0.0.0', port: 2222 });
  });

  it('reads every kind of value', () => {
    const c = parseConfigText(
      NODE,
      [
        '[node]',
        'nickname = edge-1',
        'log_level = debug',
        'convergence = per-gateway',
        '[sftpd]',
        'enabled = no',
        'listen = [::]:22',
        'host_key_files = /etc/capstan/key1, keys/key2',
        'accounts.url = https://accounts.example/api',
        'accounts.url.cache_ttl = 0',
        'idle_timeout = 0',
        '[storage]',
        'fs.fsync = false',
        'chunk_size = 256KiB',
        'fs.dir = /data/chunks',
        '[http]',
        'listen = 127.0.0.1:9100',
      ].join('\n'),
    );
    expect(c.node).toEqual({ nickname: 'edge-1', logLevel: 'debug', logFormat: 'auto', convergence: 'per-gateway' });
    expect(c.sftpd.enabled).toBe(false);
    expect(c.sftpd.listen).toEqual({ host: '::', port: 22 });
    expect(c.sftpd.hostKeyFiles).toEqual(['/etc/capstan/key1', '/srv/node/keys/key2']);
    expect(c.sftpd.accountsUrl).toBe('https://accounts.example/api');
    expect(c.sftpd.accountsUrlCacheTtlSeconds).toBe(0);
    expect(c.storage.fsFsync).toBe(false);
    expect(c.storage.chunkSize).toBe(256 * 1024);
    expect(c.storage.fsDir).toBe('/data/chunks');
    expect(c.http.listen).toEqual({ host: '127.0.0.1', port: 9100 });
  });

  it('backend = s3 takes the s3 keys', () => {
    const c = parseConfigText(
      NODE,
      '[storage]\nbackend = s3\ns3.endpoint = http://127.0.0.1:9000\ns3.bucket = chunks\ns3.addressing = virtual\ns3.cache.size = 0\n',
    );
    expect(c.storage.backend).toBe('s3');
    expect(c.storage.s3).toMatchObject({ endpoint: 'http://127.0.0.1:9000', bucket: 'chunks', addressing: 'virtual', cacheBytes: 0 });
  });

  it('names the line, section and key of a bad value', () => {
    expect(configError('[node]\nnickname = x\n\n\n\n[sftpd]\nlisten = abc')).toBe(
      'capstan.cfg line 7: [sftpd] listen: expected HOST:PORT, got "abc"',
    );
    expect(configError('[sftpd]\nlisten = 1.2.3.4:70000')).toMatch(/^capstan\.cfg line 2: \[sftpd\] listen: expected HOST:PORT/);
    expect(configError('[node]\nlog_level = loud')).toBe(
      'capstan.cfg line 2: [node] log_level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    );
    expect(configError('[storage]\nfs.fsync = maybe')).toMatch(/line 2: \[storage\] fs\.fsync: expected true or false/);
    expect(configError('[sftpd]\nidle_timeout = -1')).toMatch(/line 2: \[sftpd\] idle_timeout: expected an integer from 0 to/);
    expect(configError('[storage]\nchunk_size = 1GiB')).toMatch(/line 2: \[storage\] chunk_size: expected a size from 4KiB/);
    for (const bad of ['md5,sha1', 'sha256,crc32', 'sha256,md5,md5', '', 'SHA256']) {
      expect(configError(`[storage]\nchecksums = ${bad}`)).toBe(
        `capstan.cfg line 2: [storage] checksums: expected a comma-separated list of sha256, md5, sha1 that includes sha256, got "${bad}"`,
      );
    }
    expect(parseConfigText('/n', '[storage]\nchecksums = sha256 , sha1').storage.checksums).toEqual(['sha256', 'sha1']);
    expect(configError('[storage]\nbackend = nfs')).toMatch(/line 2: \[storage\] backend: expected one of fs, s3/);
    expect(configError('[storage]\nbackend = s3')).toBe('capstan.cfg: [storage] backend = s3 needs s3.endpoint and s3.bucket');
    expect(configError('[sftpd]\nhost_key_files = a,,b')).toMatch(/line 2: \[sftpd\] host_key_files:/);
  });

  it('refuses unknown sections and keys', () => {
    expect(configError('[node]\nnick = x')).toBe('capstan.cfg line 2: [node] nick: unknown key');
    // The known list is every schema section, in schema order (other sections are added over time).
    const known = [...new Set(schemaEntries().map((e) => `[${e.section}]`))].join(', ');
    expect(configError('\n[client]\n')).toBe(`capstan.cfg line 2: unknown section [client] (known: ${known})`);
  });

  it('allows the HTTP listener on loopback only', () => {
    for (const ok of ['127.0.0.1:9100', '127.1.2.3:1', 'localhost:9100', '[::1]:9100']) {
      expect(parseConfigText(NODE, `[http]\nlisten = ${ok}`).http.listen).toBeDefined();
    }
    expect(configError('[http]\nlisten = 0.0.0.0:9100')).toMatch(/\[http\] listen: expected a loopback address/);
    expect(configError('[http]\nlisten = 192.168.1.5:9100')).toMatch(/\[http\] listen: expected a loopback address/);
  });

  it('takes a user directory, not together with an account server, and aws-transfer only with a server id', () => {
    const c = parseConfigText(NODE, '[sftpd]\nusers.url = https://cega.example/username/%s\nusers.auth = basic\nusers.negative_ttl = 5\n');
    expect(c.sftpd.users).toEqual({
      url: 'https://cega.example/username/%s',
      format: 'localega',
      auth: 'basic',
      credentialsFile: '/srv/node/private/users-credentials',
      awsServerId: '',
      awsRegion: 'us-east-1',
      timeoutMs: 10_000,
      cacheTtlMs: 3_600_000,
      negativeTtlMs: 5_000,
      maxLookups: 16,
    });
    expect(() => parseConfigText(NODE, '[sftpd]\nusers.url = https://a.example/\naccounts.url = https://b.example/\n')).toThrow(/set one/);
    expect(() => parseConfigText(NODE, '[sftpd]\nusers.url = https://a.example/\nusers.format = aws-transfer\n')).toThrow(/server_id/);
    expect(() => parseConfigText(NODE, '[sftpd]\nusers.url = https://u:secret@a.example/\nusers.format = ldap\n')).toThrow(/users.format/);
    expect(() => parseConfigText(NODE, '[sftpd]\nusers.url = ftp://u:secret@a.example/\n')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('secret') }),
    );
  });

  it('does not echo an account server URL, which may hold credentials', () => {
    const message = configError('[sftpd]\naccounts.url = ftp://user:s3cret@host/');
    expect(message).toMatch(/\[sftpd\] accounts\.url: expected empty or an http/);
    expect(message).not.toContain('s3cret');
  });

  it('parses and prints HOST:PORT', () => {
    expect(parseHostPort('example.com:22')).toEqual({ host: 'example.com', port: 22 });
    expect(parseHostPort('[2001:db8::1]:2222')).toEqual({ host: '2001:db8::1', port: 2222 });
    expect(parseHostPort('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    for (const bad of ['abc', ':22', 'host:', 'host:port', '2001:db8::1:22', '[nothex]:22', 'a b:22', 'host:123456']) {
      expect(parseHostPort(bad), bad).toBeUndefined();
    }
    expect(formatHostPort({ host: '::1', port: 8022 })).toBe('[::1]:8022');
    expect(formatHostPort({ host: '127.0.0.1', port: 8022 })).toBe('127.0.0.1:8022');
  });
});
