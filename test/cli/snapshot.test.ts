import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAP_IN_TEXT, makeTempDir, oneErrorLine, runCli, runCliBinary, startCli, stopAllCli } from '../helpers/cli.js';

/**
 * `capstan snapshot` (docs/spec/snapshots.md) on the embedded default: with
 * no gateway running (the command opens the node itself), and with one
 * running (the command reaches its stores through the node socket).
 */

let tmp: { dir: string; cleanup: () => Promise<void> };

async function ok(node: string, args: string[], input?: string | Buffer): Promise<string> {
  const r = await runCli(['-d', node, ...args], input !== undefined ? { input } : {});
  if (r.code !== 0) throw new Error(`capstan ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function getBytes(node: string, capPath: string): Promise<Buffer> {
  const r = await runCliBinary(['-d', node, 'get', capPath, '-']);
  if (r.code !== 0) throw new Error(`capstan get failed (${r.code}): ${r.stderr}`);
  return r.stdoutBytes;
}

/** A failing command: exit 1, one `capstan: …` line, and no cap in it. */
async function fails(node: string, args: string[]): Promise<string> {
  const r = await runCli(['-d', node, ...args]);
  expect(r.code).toBe(1);
  const line = oneErrorLine(r);
  expect(line).not.toMatch(CAP_IN_TEXT);
  return line;
}

beforeAll(async () => {
  tmp = await makeTempDir();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

async function scenario(node: string): Promise<void> {
  const root = (await ok(node, ['mkdir'])).trim();
  const v1 = randomBytes(300_000);
  const v2 = randomBytes(1_000);
  await ok(node, ['mkdir', `${root}/docs`]);
  await ok(node, ['put', '-', `${root}/docs/report.bin`], v1);
  const snap = (await ok(node, ['snapshot', 'create', root])).trim();
  expect(snap).toMatch(/^CS1:DIR-SNAP:[a-z2-7]{52}:[a-z2-7]{52}:[1-9][0-9]*$/);

  await ok(node, ['put', '-', `${root}/docs/report.bin`], v2);
  await ok(node, ['put', '-', `${root}/later.txt`], 'later');
  await ok(node, ['rm', `${root}/docs/report.bin`]);

  expect((await getBytes(node, `${snap}/docs/report.bin`)).equals(v1)).toBe(true);
  expect((await ok(node, ['ls', snap])).split('\n').filter(Boolean)).toEqual(['docs/']);
  await fails(node, ['put', '-', `${snap}/docs/new.txt`]);
  expect(await ok(node, ['check', '--verify', snap])).toMatch(/all well/);

  const second = (await ok(node, ['snapshot', 'create', root])).trim();
  const listed = (await ok(node, ['snapshot', 'list', root])).trim().split('\n');
  expect(listed.map((line) => line.split(/\s+/)[1])).toEqual([snap, second]);
  expect(listed[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(_\d+)?\s/);
  const json = (await ok(node, ['snapshot', 'list', '--json', root]))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(json.map((j) => j.cap)).toEqual([snap, second]);

  expect(await ok(node, ['snapshot', 'remove', snap])).toBe('removed\n');
  expect(await fails(node, ['get', `${snap}/docs/report.bin`, '-'])).toMatch(/no such|snapshot/i);
  await fails(node, ['snapshot', 'remove', snap]);
  await fails(node, ['snapshot', 'create', root.replace('CS1:DIR:', 'CS1:DIR-RO:')]);
  await fails(node, ['snapshot', 'remove', root]);
  expect((await ok(node, ['snapshot', 'list', root])).trim().split('\n')).toHaveLength(1);
}

describe('capstan snapshot', () => {
  it('with no gateway running: create, read the past, list, remove', async () => {
    const node = path.join(tmp.dir, 'offline');
    await ok(node, ['init']);
    await scenario(node);
  });

  it('beside a running gateway, through the node socket', async () => {
    const node = path.join(tmp.dir, 'online');
    await ok(node, ['init']);
    const gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    await gateway.waitFor(/^capstan listening on /m);
    await scenario(node);
    await gateway.stop();
  });
});
