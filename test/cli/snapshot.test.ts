import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCliBinary, startCli, stopAllCli, cliOk, cliFails } from '../helpers/cli.js';

/**
 * `capstan snapshot` (docs/spec/snapshots.md) on the embedded default: with
 * no gateway running (the command opens the node itself), and with one
 * running (the command reaches its stores through the node socket).
 */

let tmp: { dir: string; cleanup: () => Promise<void> };

async function getBytes(node: string, capPath: string): Promise<Buffer> {
  const r = await runCliBinary(['-d', node, 'get', capPath, '-']);
  if (r.code !== 0) throw new Error(`capstan get failed (${r.code}): ${r.stderr}`);
  return r.stdoutBytes;
}

beforeAll(async () => {
  tmp = await makeTempDir();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

async function scenario(node: string): Promise<void> {
  const root = (await cliOk(node, ['mkdir'])).trim();
  const v1 = randomBytes(300_000);
  const v2 = randomBytes(1_000);
  await cliOk(node, ['mkdir', `${root}/docs`]);
  await cliOk(node, ['put', '-', `${root}/docs/report.bin`], v1);
  const snap = (await cliOk(node, ['snapshot', 'create', root])).trim();
  expect(snap).toMatch(/^CS1:DIR-SNAP:[a-z2-7]{52}:[a-z2-7]{52}:[1-9][0-9]*$/);

  await cliOk(node, ['put', '-', `${root}/docs/report.bin`], v2);
  await cliOk(node, ['put', '-', `${root}/later.txt`], 'later');
  await cliOk(node, ['rm', `${root}/docs/report.bin`]);

  expect((await getBytes(node, `${snap}/docs/report.bin`)).equals(v1)).toBe(true);
  expect((await cliOk(node, ['ls', snap])).split('\n').filter(Boolean)).toEqual(['docs/']);
  await cliFails(node, ['put', '-', `${snap}/docs/new.txt`]);
  expect(await cliOk(node, ['check', '--verify', snap])).toMatch(/all well/);

  const second = (await cliOk(node, ['snapshot', 'create', root])).trim();
  const listed = (await cliOk(node, ['snapshot', 'list', root])).trim().split('\n');
  expect(listed.map((line) => line.split(/\s+/)[1])).toEqual([snap, second]);
  expect(listed[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(_\d+)?\s/);
  const json = (await cliOk(node, ['snapshot', 'list', '--json', root]))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(json.map((j) => j.cap)).toEqual([snap, second]);

  expect(await cliOk(node, ['snapshot', 'remove', snap])).toBe('removed\n');
  expect(await cliFails(node, ['get', `${snap}/docs/report.bin`, '-'])).toMatch(/no such|snapshot/i);
  await cliFails(node, ['snapshot', 'remove', snap]);
  await cliFails(node, ['snapshot', 'create', root.replace('CS1:DIR:', 'CS1:DIR-RO:')]);
  await cliFails(node, ['snapshot', 'remove', root]);
  expect((await cliOk(node, ['snapshot', 'list', root])).trim().split('\n')).toHaveLength(1);
}

describe('capstan snapshot', () => {
  it('with no gateway running: create, read the past, list, remove', async () => {
    const node = path.join(tmp.dir, 'offline');
    await cliOk(node, ['init']);
    await scenario(node);
  });

  it('beside a running gateway, through the node socket', async () => {
    const node = path.join(tmp.dir, 'online');
    await cliOk(node, ['init']);
    const gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    await gateway.waitFor(/^capstan listening on /m);
    await scenario(node);
    await gateway.stop();
  });
});
