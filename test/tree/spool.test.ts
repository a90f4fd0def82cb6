import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EncryptedSpool, cleanSpoolDir } from '../../src/sftp/spool.js';

let dir: string;
const open: EncryptedSpool[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-spool-test-'));
});
afterEach(async () => {
  for (const spool of open.splice(0)) await spool.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function createSpool(): Promise<EncryptedSpool> {
  const spool = await EncryptedSpool.create(dir);
  open.push(spool);
  return spool;
}

async function contents(spool: EncryptedSpool): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of spool.stream()) parts.push(part);
  return Buffer.concat(parts);
}

/** The plain-Buffer model the spool must agree with. */
class Model {
  bytes = Buffer.alloc(0);
  write(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (end > this.bytes.length) this.bytes = Buffer.concat([this.bytes, Buffer.alloc(end - this.bytes.length)]);
    this.bytes.set(data, offset);
  }
  truncate(size: number): void {
    this.bytes =
      size <= this.bytes.length ? this.bytes.subarray(0, size) : Buffer.concat([this.bytes, Buffer.alloc(size - this.bytes.length)]);
  }
  read(offset: number, length: number): Buffer {
    return this.bytes.subarray(Math.min(offset, this.bytes.length), Math.min(offset + length, this.bytes.length));
  }
}

type Op =
  | { kind: 'write'; offset: number; data: Uint8Array }
  | { kind: 'truncate'; size: number }
  | { kind: 'read'; offset: number; length: number };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      offset: fc.nat(70_000),
      data: fc.uint8Array({ minLength: 1, maxLength: 5000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), size: fc.nat(80_000) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), offset: fc.nat(80_000), length: fc.nat(10_000) }) },
);

/** A base to start a spool from: bytes in memory, counting what is read of them. */
class BufferBase {
  bytesRead = 0;
  constructor(readonly bytes: Buffer) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = this.bytes.subarray(offset, Math.min(this.bytes.length, offset + length));
    this.bytesRead += out.length;
    return Uint8Array.from(out);
  }
}

describe('EncryptedSpool', () => {
  it.each([
    { what: 'empty', baseBytes: 0, maxRanges: undefined },
    { what: 'over a base', baseBytes: 40_000, maxRanges: undefined },
    { what: 'over a base, at most 3 written ranges', baseBytes: 40_000, maxRanges: 3 },
  ])('agrees with a plain buffer under random writes, truncates and reads ($what)', async ({ baseBytes, maxRanges }) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArbitrary, { minLength: 1, maxLength: 25 }),
        fc.uint8Array({ minLength: baseBytes, maxLength: baseBytes }),
        async (ops, baseContent) => {
          const base = baseBytes > 0 ? new BufferBase(Buffer.from(baseContent)) : undefined;
          const spool = await EncryptedSpool.create(dir, { base, maxRanges });
          try {
            const model = new Model();
            model.bytes = Buffer.from(baseContent);
            let written = 0;
            for (const op of ops) {
              if (op.kind === 'write') {
                await spool.write(op.offset, op.data);
                model.write(op.offset, op.data);
                written += op.data.length;
              } else if (op.kind === 'truncate') {
                await spool.truncate(op.size);
                model.truncate(op.size);
              } else {
                expect(Buffer.from(await spool.read(op.offset, op.length)).equals(model.read(op.offset, op.length))).toBe(true);
              }
              expect(spool.size).toBe(model.bytes.length);
              if (maxRanges !== undefined) expect(spool.ranges).toBeLessThanOrEqual(maxRanges);
            }
            expect((await contents(spool)).equals(model.bytes)).toBe(true);
            const disk = await stat(spool.path);
            expect(disk.size).toBeLessThanOrEqual(model.bytes.length);
            // Sparse: what is on disk is what was written (whole 4 KiB blocks), never the size.
            if (maxRanges === undefined) expect(disk.blocks * 512).toBeLessThanOrEqual(written + ops.length * 2 * 4096);
          } finally {
            await spool.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads holes and extensions back as zeros', async () => {
    const spool = await createSpool();
    await spool.write(10_000, Buffer.from('tail'));
    expect(spool.size).toBe(10_004);
    expect(Buffer.from(await spool.read(0, 10_000)).equals(Buffer.alloc(10_000))).toBe(true);
    await spool.truncate(3_000_000); // several zero-fill pieces
    expect(Buffer.from(await spool.read(10_000, 8)).equals(Buffer.concat([Buffer.from('tail'), Buffer.alloc(4)]))).toBe(true);
    expect(Buffer.from(await spool.read(2_999_990, 100)).equals(Buffer.alloc(10))).toBe(true);
    await spool.truncate(10_002);
    await spool.truncate(10_010); // shrink then grow: the cut bytes must not come back
    expect(Buffer.from(await spool.read(10_000, 20)).toString('latin1')).toBe('ta\0\0\0\0\0\0\0\0');
  });

  it('handles writes and reads at unaligned offsets across cipher blocks', async () => {
    const spool = await createSpool();
    const model = new Model();
    for (const [offset, length] of [
      [0, 33],
      [15, 2],
      [17, 100],
      [31, 1],
      [1, 64],
    ] as const) {
      const data = Buffer.alloc(length, offset + 1);
      await spool.write(offset, data);
      model.write(offset, data);
    }
    for (let offset = 0; offset < 140; offset += 3) {
      expect(Buffer.from(await spool.read(offset, 17)).equals(model.read(offset, 17))).toBe(true);
    }
  });

  it('never puts plaintext on disk', async () => {
    const spool = await createSpool();
    const marker = Buffer.from('CAPSTAN-PLAINTEXT-MARKER-');
    const pattern = Buffer.concat(Array.from({ length: 2000 }, () => marker));
    await spool.write(0, pattern);
    await spool.write(pattern.length + 4096, pattern); // after a hole
    await spool.write(7, pattern.subarray(0, 1000)); // an overwrite
    await spool.truncate(pattern.length * 3);
    const disk = await readFile(spool.path);
    expect(disk.includes(marker.subarray(0, 12))).toBe(false);
    // What was written is ciphertext; the hole between is a hole (never read: it is not the file's zeros).
    expect(disk.subarray(0, pattern.length).includes(Buffer.alloc(64))).toBe(false);
    expect(disk.subarray(pattern.length + 4096).includes(Buffer.alloc(64))).toBe(false);
  });

  it('costs what was written, not the size: a 100 GiB extension and a write far out take no disk', async () => {
    const spool = await createSpool();
    const GiB = 1024 ** 3;
    await spool.write(0, Buffer.from('head'));
    await spool.truncate(100 * GiB);
    await spool.write(50 * GiB, Buffer.from('middle'));
    expect(spool.size).toBe(100 * GiB);
    expect((await stat(spool.path)).blocks * 512).toBeLessThanOrEqual(64 * 1024);
    expect(Buffer.from(await spool.read(0, 8)).toString('latin1')).toBe('head\0\0\0\0');
    expect(Buffer.from(await spool.read(50 * GiB - 2, 10)).toString('latin1')).toBe('\0\0middle\0\0');
    expect(Buffer.from(await spool.read(100 * GiB - 3, 10)).equals(Buffer.alloc(3))).toBe(true);
  });

  it('starts from a base and reads of it only what was not overwritten, once, when asked', async () => {
    const MiB = 1024 * 1024;
    const base = new BufferBase(Buffer.alloc(8 * MiB, 'b'));
    const spool = await EncryptedSpool.create(dir, { base });
    open.push(spool);
    expect(spool.size).toBe(8 * MiB);
    await spool.write(4 * MiB, Buffer.from('new'));
    expect(base.bytesRead).toBe(0); // a write into the middle copies nothing
    expect(Buffer.from(await spool.read(4 * MiB - 1, 5)).toString('latin1')).toBe('bnewb');
    expect(base.bytesRead).toBe(2);
    await spool.truncate(2 * MiB);
    await spool.truncate(3 * MiB); // cut, then grown: the base's bytes past the cut do not come back
    base.bytesRead = 0;
    const all = await contents(spool);
    expect(all.equals(Buffer.concat([Buffer.alloc(2 * MiB, 'b'), Buffer.alloc(MiB)]))).toBe(true);
    expect(base.bytesRead).toBe(2 * MiB);
  });

  it('holds at most maxRanges written ranges, filling the smallest gap from the base', async () => {
    const base = new BufferBase(Buffer.alloc(1000, 'b'));
    const spool = await EncryptedSpool.create(dir, { base, maxRanges: 4 });
    open.push(spool);
    const model = new Model();
    model.bytes = Buffer.from(base.bytes);
    // Every other byte, then a run far out: each write is a range of its own until gaps are filled.
    for (let offset = 0; offset < 200; offset += 2 + (offset % 7)) {
      await spool.write(offset, Buffer.from('w'));
      model.write(offset, Buffer.from('w'));
      expect(spool.ranges).toBeLessThanOrEqual(4);
    }
    await spool.write(5000, Buffer.from('far'));
    model.write(5000, Buffer.from('far'));
    expect(spool.ranges).toBeLessThanOrEqual(4);
    expect((await contents(spool)).equals(model.bytes)).toBe(true);
  });

  it('creates files 0600 with unique names, and removes them on close', async () => {
    const a = await EncryptedSpool.create(dir);
    const b = await EncryptedSpool.create(dir);
    expect(a.path).not.toBe(b.path);
    expect((await stat(a.path)).mode & 0o777).toBe(0o600);
    await a.write(0, Buffer.from('x'));
    await a.close();
    await a.close(); // idempotent
    await expect(stat(a.path)).rejects.toHaveProperty('code', 'ENOENT');
    await expect(a.write(0, Buffer.from('y'))).rejects.toHaveProperty('name', 'InvalidInputError');
    await b.close();
  });

  it('refuses negative offsets and oversized reads with InvalidInputError', async () => {
    const spool = await createSpool();
    await expect(spool.write(-1, Buffer.from('x'))).rejects.toHaveProperty('name', 'InvalidInputError');
    await expect(spool.truncate(1.5)).rejects.toHaveProperty('name', 'InvalidInputError');
    await expect(spool.read(0, 1024 * 1024 * 1024)).rejects.toHaveProperty('name', 'InvalidInputError');
  });

  it('fails a read of a base that ends early with IntegrityError, not zeros', async () => {
    const short = { size: 100, read: async () => new Uint8Array(0) };
    const spool = await EncryptedSpool.create(dir, { base: short });
    open.push(spool);
    await expect(spool.read(0, 10)).rejects.toHaveProperty('name', 'IntegrityError');
  });

  it('streams in bounded pieces', async () => {
    const spool = await createSpool();
    await spool.truncate(2.5 * 1024 * 1024);
    const sizes: number[] = [];
    for await (const part of spool.stream()) sizes.push(part.length);
    expect(sizes).toEqual([1024 * 1024, 1024 * 1024, 512 * 1024]);
  });
});

describe('cleanSpoolDir', () => {
  it('removes leftover spools and nothing else, sparing the ones still open', async () => {
    const own = await mkdtemp(path.join(tmpdir(), 'capstan-spool-clean-'));
    try {
      const live = await EncryptedSpool.create(own);
      const dead = await EncryptedSpool.create(own);
      await writeFile(path.join(own, 'capstan-spool-99999-deadbeef.tmp'), 'junk');
      await writeFile(path.join(own, 'unrelated.txt'), 'keep me');
      await dead.close();
      expect(await cleanSpoolDir(own)).toBe(1);
      expect((await readdir(own)).sort()).toEqual([path.basename(live.path), 'unrelated.txt'].sort());
      await live.close();
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('creates a missing directory', async () => {
    const own = path.join(dir, 'not-yet');
    expect(await cleanSpoolDir(own)).toBe(0);
    expect((await stat(own)).isDirectory()).toBe(true);
  });
});
