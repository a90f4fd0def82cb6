import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const run = promisify(execFile);

/**
 * src/crypto/ssh2.ts loads ssh2 with the pooled randomFillPooled in place of
 * node:crypto's randomFillSync, for the padding of every packet ssh2 sends.
 * A fresh process, since ssh2 is loaded once per process: this one's
 * other test files may have required it already.
 */
describe('ssh2, loaded by src/crypto/ssh2.ts', () => {
  it("pads its packets from the pool, and leaves node:crypto's randomFillSync as it was", async () => {
    const script = `
      import crypto from 'node:crypto';
      import { createRequire } from 'node:module';
      const own = crypto.randomFillSync;
      const { default: ssh2 } = await import(${JSON.stringify(path.join(REPO, 'dist/crypto/ssh2.js'))});
      const { pooledFillCount } = await import(${JSON.stringify(path.join(REPO, 'dist/crypto/random.js'))});
      const require = createRequire(${JSON.stringify(path.join(REPO, 'dist/crypto/ssh2.js'))});
      const { createCipher, CIPHER_INFO } = require('ssh2/lib/protocol/crypto.js');
      const before = pooledFillCount();
      const paddings = new Set();
      for (const name of ['aes128-gcm@openssh.com', 'aes256-ctr']) {
        const info = CIPHER_INFO[name];
        const cipher = createCipher({ outbound: {
          onWrite() {}, cipherInfo: info, cipherKey: Buffer.alloc(info.keyLen), cipherIV: Buffer.alloc(info.ivLen),
          seqno: 0, macInfo: { actualLen: 32, len: 32, sslName: 'sha256', isETM: false }, macKey: Buffer.alloc(32),
        } });
        for (let i = 0; i < 100; i++) {
          const packet = cipher.allocPacket(100);
          paddings.add(packet.subarray(5 + 100, 5 + 100 + packet[4]).toString('hex'));
        }
      }
      console.log(JSON.stringify({
        pooled: pooledFillCount() - before, distinct: paddings.size,
        restored: crypto.randomFillSync === own, server: typeof ssh2.Server,
      }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO });
    expect(JSON.parse(stdout)).toEqual({ pooled: 200, distinct: 200, restored: true, server: 'function' });
  });

  it('is the only way src loads ssh2 (other modules import its types only)', async () => {
    const offenders: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(file);
        else if (file.endsWith('.ts') && file !== path.join(REPO, 'src/crypto/ssh2.ts')) {
          const text = await readFile(file, 'utf8');
          if (/^import (?!type )[^;]*from 'ssh2'/m.test(text) || /require\('ssh2'\)|import\('ssh2'\)/.test(text)) offenders.push(file);
        }
      }
    };
    await walk(path.join(REPO, 'src'));
    expect(offenders).toEqual([]);
  });
});
