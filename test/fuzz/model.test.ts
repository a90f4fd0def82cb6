import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import type { Client, SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh2, sftpOf, startGateway, type Gateway } from '../sftp/gateway-fixture.js';
import { call } from '../helpers/callback.js';

/**
 * Random sequences of SFTP operations against capstan (in-process gateway,
 * ssh2 client) and against a plain in-memory model of the tree; every
 * status code, stat, listing and file content must agree.
 *
 * CAPSTAN_FUZZ_RUNS sets the number of sequences (CI default 25; `npm run
 * test:soak` runs 500).
 *
 * Where SFTP v3 leaves the code open (removing a directory with REMOVE,
 * opening a directory for writing), the model accepts any error but
 * requires that nothing changed.
 */

const RUNS = Number(process.env.CAPSTAN_FUZZ_RUNS ?? 25);
const OK = 0;
const NO_SUCH_FILE = 2;
const FAILURE = 4;
const ANY_ERROR = -1;

type Node = { type: 'dir' } | { type: 'file'; data: Buffer };
type Op =
  | { op: 'mkdir'; p: string }
  | { op: 'write'; p: string; data: Buffer }
  | { op: 'remove'; p: string }
  | { op: 'rmdir'; p: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'stat'; p: string }
  | { op: 'readdir'; p: string }
  | { op: 'read'; p: string };

let gw: Gateway;
let key: Buffer;
let client: Client;
let sftp: SFTPWrapper;

async function codeOf<T>(p: Promise<T>): Promise<{ code: number; value?: T }> {
  try {
    return { code: OK, value: await p };
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (typeof code !== 'number') throw err;
    return { code };
  }
}

/** The model: absolute paths (below the run's base) to nodes. */
class Model {
  readonly nodes = new Map<string, Node>([['', { type: 'dir' }]]);
  parent(p: string): string {
    return p.slice(0, p.lastIndexOf('/'));
  }
  children(p: string): string[] {
    return [...this.nodes.keys()]
      .filter((k) => k !== '' && this.parent(k) === p)
      .map((k) => k.slice(p.length + 1))
      .sort();
  }
  /** The expected code, changing the model when the operation succeeds. */
  apply(o: Op): number {
    const n = (p: string) => this.nodes.get(p);
    const parentIsDir = (p: string) => n(this.parent(p))?.type === 'dir';
    switch (o.op) {
      case 'mkdir':
        if (!parentIsDir(o.p)) return NO_SUCH_FILE;
        if (n(o.p)) return FAILURE;
        this.nodes.set(o.p, { type: 'dir' });
        return OK;
      case 'write':
        if (!parentIsDir(o.p)) return NO_SUCH_FILE;
        if (n(o.p)?.type === 'dir') return ANY_ERROR;
        this.nodes.set(o.p, { type: 'file', data: o.data });
        return OK;
      case 'remove':
        if (!n(o.p)) return NO_SUCH_FILE;
        if (n(o.p)!.type === 'dir') return ANY_ERROR;
        this.nodes.delete(o.p);
        return OK;
      case 'rmdir':
        if (!n(o.p)) return NO_SUCH_FILE;
        if (n(o.p)!.type !== 'dir') return ANY_ERROR;
        if (this.children(o.p).length > 0) return FAILURE;
        this.nodes.delete(o.p);
        return OK;
      case 'rename': {
        if (!n(o.from)) return NO_SUCH_FILE;
        if (!parentIsDir(o.to)) return NO_SUCH_FILE;
        if (o.to === o.from) return OK; // as POSIX rename(2): a no-op
        if (o.to.startsWith(`${o.from}/`)) return ANY_ERROR; // into itself
        if (n(o.to)) return FAILURE; // SFTP v3 RENAME never overwrites
        for (const [k, v] of [...this.nodes]) {
          if (k === o.from || k.startsWith(`${o.from}/`)) {
            this.nodes.delete(k);
            this.nodes.set(o.to + k.slice(o.from.length), v);
          }
        }
        return OK;
      }
      case 'stat':
        return n(o.p) ? OK : NO_SUCH_FILE;
      case 'readdir':
        if (!n(o.p)) return NO_SUCH_FILE;
        return n(o.p)!.type === 'dir' ? OK : ANY_ERROR;
      case 'read':
        if (!n(o.p)) return NO_SUCH_FILE;
        return n(o.p)!.type === 'file' ? OK : ANY_ERROR;
    }
  }
}

const name = fc.constantFrom('a', 'b', 'c');
const relPath = fc.array(name, { minLength: 1, maxLength: 3 }).map((parts) => `/${parts.join('/')}`);
const data = fc.uint8Array({ maxLength: 10_000 }).map((a) => Buffer.from(a));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: relPath.map((p) => ({ op: 'mkdir' as const, p })), weight: 4 },
  { arbitrary: fc.tuple(relPath, data).map(([p, d]) => ({ op: 'write' as const, p, data: d })), weight: 4 },
  { arbitrary: relPath.map((p) => ({ op: 'remove' as const, p })), weight: 1 },
  { arbitrary: relPath.map((p) => ({ op: 'rmdir' as const, p })), weight: 1 },
  { arbitrary: fc.tuple(relPath, relPath).map(([from, to]) => ({ op: 'rename' as const, from, to })), weight: 2 },
  { arbitrary: relPath.map((p) => ({ op: 'stat' as const, p })), weight: 1 },
  { arbitrary: relPath.map((p) => ({ op: 'readdir' as const, p })), weight: 1 },
  { arbitrary: relPath.map((p) => ({ op: 'read' as const, p })), weight: 1 },
);

async function perform(base: string, o: Op): Promise<{ code: number; value?: unknown }> {
  const at = (p: string) => base + p;
  switch (o.op) {
    case 'mkdir':
      return codeOf(call((cb) => sftp.mkdir(at(o.p), cb)));
    case 'write':
      return codeOf(call((cb) => sftp.writeFile(at(o.p), o.data, cb)));
    case 'remove':
      return codeOf(call((cb) => sftp.unlink(at(o.p), cb)));
    case 'rmdir':
      return codeOf(call((cb) => sftp.rmdir(at(o.p), cb)));
    case 'rename':
      return codeOf(call((cb) => sftp.rename(at(o.from), at(o.to), cb)));
    case 'stat':
      return codeOf(call<{ isDirectory(): boolean; size: number }>((cb) => sftp.stat(at(o.p), cb)));
    case 'readdir':
      return codeOf(call<{ filename: string }[]>((cb) => sftp.readdir(at(o.p), cb)));
    case 'read':
      return codeOf(call<Buffer>((cb) => sftp.readFile(at(o.p), cb)));
  }
}

/** The whole tree under `base`, as capstan shows it, in the model's shape. */
async function snapshot(base: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await call<{ filename: string; attrs: { isDirectory(): boolean } }[]>((cb) => sftp.readdir(base + rel || base, cb))) {
      const p = `${rel}/${e.filename}`;
      if (e.attrs.isDirectory()) {
        out.set(p, 'dir');
        await walk(p);
      } else out.set(p, (await call<Buffer>((cb) => sftp.readFile(base + p, cb))).toString('hex'));
    }
  };
  await walk('');
  return out;
}

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 4096 });
  key = await readFile(gw.keyFile);
  client = await connectSsh2(gw.port, 'alice', { privateKey: key });
  sftp = await sftpOf(client);
});
afterAll(async () => {
  client?.end();
  await gw?.close();
});

describe('random operation sequences agree with an in-memory model', () => {
  it(
    `${RUNS} sequences`,
    async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          const base = `/run${run++}`;
          await call((cb) => sftp.mkdir(base, cb));
          const model = new Model();
          for (const o of ops) {
            const before = new Map(model.nodes);
            const expected = model.apply(o);
            const got = await perform(base, o);
            if (expected === ANY_ERROR) {
              expect(got.code, JSON.stringify(o)).not.toBe(OK);
              expect(model.nodes).toEqual(before);
            } else {
              expect(got.code, JSON.stringify({ ...o, data: undefined })).toBe(expected);
            }
            if (got.code !== OK) continue;
            if (o.op === 'stat') expect((got.value as { isDirectory(): boolean }).isDirectory()).toBe(model.nodes.get(o.p)!.type === 'dir');
            if (o.op === 'readdir')
              expect((got.value as { filename: string }[]).map((e) => e.filename).sort()).toEqual(model.children(o.p));
            if (o.op === 'read') expect((got.value as Buffer).equals((model.nodes.get(o.p) as { data: Buffer }).data)).toBe(true);
          }
          const expectedTree = new Map(
            [...model.nodes].filter(([k]) => k !== '').map(([k, v]) => [k, v.type === 'dir' ? 'dir' : v.data.toString('hex')]),
          );
          expect(await snapshot(base)).toEqual(expectedTree);
        }),
        { numRuns: RUNS },
      );
    },
    30_000 + RUNS * 2_000,
  );
});
