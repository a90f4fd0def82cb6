import { describe, expect, it } from 'vitest';
import { storeLocations } from '../../src/cli/commands/status.js';
import { parseConfigText } from '../../src/config/index.js';

const rel = (p: string): string => p.replace(/^\/node\//, '');

describe('capstan status: where the stores are', () => {
  it('names the fs and LevelDB paths of the embedded default', () => {
    const { storage } = parseConfigText('/node', '');
    expect(storeLocations(storage, rel)).toEqual({ chunks: 'fs store/chunks', slots: 'leveldb store/slots' });
  });

  it('names the S3 endpoint, bucket, prefix and cache, and the PostgreSQL server, never a password', () => {
    const { storage } = parseConfigText(
      '/node',
      [
        '[storage]',
        'backend = s3',
        's3.endpoint = http://key:secret@127.0.0.1:9000/ignored?x=1',
        's3.bucket = capstan',
        's3.prefix = gw/',
        'slots.backend = postgres',
        'slots.postgres.url = postgres://capstan:hunter2@db.internal:5433/capstan?sslmode=require',
      ].join('\n'),
    );
    const where = storeLocations(storage, rel);
    expect(where.chunks).toMatch(/^s3 http:\/\/127\.0\.0\.1:9000 bucket capstan prefix gw\//);
    expect(where.slots).toBe('postgres db.internal:5433/capstan');
    expect(JSON.stringify(where)).not.toMatch(/secret|hunter2|key:/);
  });
});
