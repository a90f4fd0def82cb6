import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CAP_IN_TEXT, CLI, makeTempDir, runCli, stopAllCli, cliAt } from '../helpers/cli.js';
import { missing, skipNotice } from '../helpers/openssh.js';

/**
 * The progress line as a person sees it: the CLI runs under a real pty
 * (util-linux script(1)), and the test paces the data through named pipes,
 * so the command is still running, provably, when the line is looked for:
 * no guess about how long a transfer takes. The same commands with stderr
 * on a pipe print no progress at all.
 */
const SKIP = skipNotice(missing('script', 'mkfifo', 'stty'), 'progress line under a pty');

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;
/** A second node for the command run beside another: a node's slot database serves one command at a time. */
let otherNode: string;
let otherRoot: string;
const children = new Set<ChildProcess>();

const { ok } = cliAt(() => node);

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('close', () => children.delete(child));
  return child;
}

async function mkfifo(name: string): Promise<string> {
  const file = path.join(tmp.dir, name);
  const made = spawn('mkfifo', [file]);
  const [code] = await once(made, 'close');
  if (code !== 0) throw new Error('mkfifo failed');
  return file;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `shellCommand` on a pty of 120 columns; `output` is everything the pty showed (stdout and stderr). */
function underPty(shellCommand: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = track(spawn('script', ['-qfec', `stty cols 120; ${shellCommand}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** What a terminal shows after `raw`: \r returns to column 0 and later text overwrites. */
function screen(raw: string): string[] {
  const lines: string[][] = [[]];
  let col = 0;
  for (const ch of raw) {
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      lines.push([]);
      col = 0;
    } else {
      lines[lines.length - 1]![col++] = ch;
    }
  }
  return lines.map((l) => l.join('').trimEnd()).filter((l) => l !== '');
}

async function write(stream: WriteStream | NodeJS.WritableStream, bytes: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => stream.write(bytes, (err) => (err ? reject(err) : resolve())));
}

const count = (text: string, pattern: RegExp): number => text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;

beforeAll(async () => {
  tmp = await makeTempDir('capstan-tty-');
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  root = (await ok(['mkdir'])).trim();
  otherNode = path.join(tmp.dir, 'other');
  expect((await runCli(['-d', otherNode, 'init'])).code).toBe(0);
  otherRoot = (await runCli(['-d', otherNode, 'mkdir'])).stdout.trim();
});
afterAll(async () => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  await stopAllCli();
  await tmp.cleanup();
});

describe.skipIf(SKIP)('progress on a terminal', () => {
  it('put draws bytes and rate on the terminal, clears them before the cap; with stderr on a pipe, nothing', async () => {
    const fifo = await mkfifo('put-in');
    const tty = underPty(
      `exec ${quote(process.execPath)} ${quote(CLI)} -d ${quote(node)} put - ${quote(`${root}/tty.bin`)} < ${quote(fifo)}`,
    );
    // The same upload with stderr on a pipe, fed in step with the first.
    const piped = track(
      spawn(process.execPath, [CLI, '-d', otherNode, 'put', '-', `${otherRoot}/piped.bin`], { stdio: ['pipe', 'pipe', 'pipe'] }),
    );
    let pipedOut = '';
    let pipedErr = '';
    piped.stdout!.on('data', (d: Buffer) => (pipedOut += d.toString('utf8')));
    piped.stderr!.on('data', (d: Buffer) => (pipedErr += d.toString('utf8')));
    const pipedExit = once(piped, 'close');

    const input = createWriteStream(fifo);
    const part = randomBytes(2 * 2 ** 20);
    await write(input, part);
    // Written means read: both commands are in their upload loop, with input held open.
    await write(piped.stdin!, part);
    const from = tty.output().length;
    await vi.waitFor(() => expect(count(tty.output().slice(from), /\rput {2}2\.0 MiB {2}/)).toBeGreaterThanOrEqual(2), {
      timeout: 30_000,
      interval: 50,
    });
    // The rate appears once two samples exist.
    await vi.waitFor(() => expect(tty.output()).toMatch(/\rput {2}2\.0 MiB {2}\d+(\.\d)? [KMG]?i?B\/s/), { timeout: 30_000, interval: 50 });

    input.end(part);
    piped.stdin!.end(part);
    expect(await tty.exited).toBe(0);
    expect(await pipedExit).toEqual([0, null]);

    // On the terminal: the line was drawn, and cleared before the cap was printed on a clean line.
    const shown = screen(tty.output());
    expect(shown).toHaveLength(1);
    expect(shown[0]).toMatch(/^CS1:CHK:/);
    // On the pipe: the cap and nothing else.
    expect(pipedOut).toMatch(/^CS1:CHK:\S+\n$/);
    expect(pipedErr).toBe('');
    expect((await runCli(['-d', otherNode, 'get', `${otherRoot}/piped.bin`])).stdout).toBe(await ok(['get', `${root}/tty.bin`]));
  });

  it('get to a pipe shows bytes of the total and the percentage on the terminal; the data stays clean', async () => {
    const content = randomBytes(8 * 2 ** 20);
    await ok(['put', '-', `${root}/big.bin`], content);
    const fifo = await mkfifo('get-out');
    const tty = underPty(
      `exec ${quote(process.execPath)} ${quote(CLI)} -d ${quote(node)} get ${quote(`${root}/big.bin`)} - > ${quote(fifo)}`,
    );
    const reader = createReadStream(fifo);
    const received: Buffer[] = [];
    reader.on('data', (d) => received.push(d as Buffer));
    // Stop reading after the first piece: the pipe fills and get waits, still running.
    reader.once('data', () => reader.pause());
    await vi.waitFor(() => expect(tty.output()).toMatch(/\rget {2}[\d.]+ [KM]?i?B of 8\.0 MiB {2}\d+%/), { timeout: 30_000, interval: 50 });
    reader.resume();
    await once(reader, 'end');
    expect(await tty.exited).toBe(0);
    expect(Buffer.concat(received).equals(content)).toBe(true);
    expect(screen(tty.output())).toEqual([]);
    expect(tty.output()).not.toMatch(CAP_IN_TEXT);

    // The same download with stderr on a pipe: not a byte on stderr.
    const piped = await runCli(['-d', node, 'get', `${root}/big.bin`, path.join(tmp.dir, 'copy.bin')]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
  });
});
