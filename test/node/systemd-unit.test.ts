import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { makeTempDir, REPO } from '../helpers/cli.js';
import { missing, skipNotice } from '../helpers/openssh.js';

/**
 * The systemd unit in docs/operations.md, taken from the doc itself (between
 * its markers) so the doc cannot drift from what is checked, verified by
 * systemd's own `systemd-analyze verify` (Debian package systemd; .ci/run
 * installs it).
 */
const SKIP = skipNotice(missing('systemd-analyze'), 'systemd unit verification');
const BLOCK = /<!-- systemd-unit:begin[^>]*-->\n```ini\n([\s\S]*?)```\n<!-- systemd-unit:end -->/;

async function unitFromDocs(): Promise<string> {
  const doc = await readFile(path.join(REPO, 'docs/operations.md'), 'utf8');
  const m = BLOCK.exec(doc);
  if (!m?.[1]) throw new Error('docs/operations.md has no systemd-unit block');
  return m[1];
}

/** Key=value settings of the unit, comments left out, in order. */
function settings(unit: string): [string, string][] {
  return unit
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('capstan-unit-');
});
afterAll(async () => {
  await tmp.cleanup();
});

/**
 * Runs `systemd-analyze verify` on `text` as capstan.service. verify exits 0
 * even for unknown keys or bad values (it warns and goes on), so every line
 * it prints about the file counts as a failure. ExecStart's binary must
 * exist: where node is not /usr/bin/node (nvm), this node stands in for it.
 */
function verify(text: string, name = 'capstan.service'): { status: number | null; complaints: string[] } {
  const file = path.join(tmp.dir, name);
  const unit = existsSync('/usr/bin/node') ? text : text.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
  writeFileSync(file, unit);
  const run = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 30_000 });
  const complaints = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.includes(path.basename(file)));
  return { status: run.status, complaints };
}

describe.skipIf(SKIP)('the systemd unit in docs/operations.md', () => {
  it('passes systemd-analyze verify with no complaint', async () => {
    const result = verify(await unitFromDocs());
    expect(result.complaints).toEqual([]);
    expect(result.status).toBe(0);
  });

  it('is checked for real: a bad value in it would be reported', async () => {
    const broken = (await unitFromDocs()).replace('ProtectSystem=strict', 'ProtectSystem=stricter');
    expect(verify(broken, 'broken.service').complaints.join('\n')).toMatch(/ProtectSystem|protect system/i);
  });

  it('starts node with the flags of the shebang, as a dedicated user, hardened, restarting on failure', async () => {
    const unit = await unitFromDocs();
    const all = settings(unit);
    const get = (key: string): string[] => all.filter(([k]) => k === key).map(([, v]) => v);
    const [exec] = get('ExecStart');
    expect(exec).toMatch(new RegExp(`^/usr/bin/node ${NODE_FLAGS.join(' ')} \\S+/dist/cli/main\\.js run$`));
    expect(get('User')).toEqual(['capstan']);
    expect(get('Restart')).toEqual(['on-failure']);
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['CapabilityBoundingSet', ''],
    ] as const) {
      expect(get(key), key).toEqual([value]);
    }
    // The node directory is the one writable place, and it is the one the unit names.
    const nodeDir = get('Environment')
      .map((e) => /^CAPSTAN_NODE_DIR=(.+)$/.exec(e)?.[1])
      .find((d) => d !== undefined);
    expect(nodeDir).toBeDefined();
    expect(get('ReadWritePaths')).toEqual([nodeDir]);
    // V8's JIT needs writable-then-executable memory: this would kill the gateway at start.
    expect(get('MemoryDenyWriteExecute')).toEqual([]);
  });
});
