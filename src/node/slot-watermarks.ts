import { type FileHandle, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { MemorySlotWatermarks } from '../tree/dir/watermarks.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/** One record of the file: storage index (32) ‖ seq (u64 BE). */
const RECORD_BYTES = 40;
/** Raised watermarks are written this often at most (and at close), in one write and one fdatasync. */
const FLUSH_MS = 200;
/** The file is rewritten at open when it holds this many times more records than directories (and is over 1 MiB). */
const COMPACT_RATIO = 4;

/**
 * The node's watermarks (`store/slot-watermarks`, docs/spec/slots.md,
 * Rollback): the table in memory (MemorySlotWatermarks), loaded from an
 * append-only file of 40-byte records that every process of the node (the
 * gateway, each CLI command) appends to. Records are only ever raises, so
 * a torn last record is skipped and a lost one only weakens detection.
 *
 * Durability: raised watermarks are appended and fdatasynced within
 * FLUSH_MS (and at close); a crash may forget the last such interval.
 * Bounds: the table's 32 bytes per directory; a pending write of at most
 * the raises of one interval; the file is compacted at open once it holds
 * COMPACT_RATIO times more records than directories.
 */
export class FileSlotWatermarks extends MemorySlotWatermarks {
  #fd: FileHandle | undefined;
  #pending: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly logger: Logger | undefined,
  ) {
    super();
  }

  static async open(file: string, logger?: Logger): Promise<FileSlotWatermarks> {
    const marks = new FileSlotWatermarks(file, logger);
    let records = 0;
    try {
      const bytes = await readFile(file);
      for (let at = 0; at + RECORD_BYTES <= bytes.length; at += RECORD_BYTES) {
        marks.saw(bytes.subarray(at, at + 32), bytes.readBigUInt64BE(at + 32));
        records++;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (records * RECORD_BYTES > 1 << 20 && records > COMPACT_RATIO * marks.size) await marks.#compact();
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    marks.#fd = await open(file, 'a', 0o600);
    marks.onRaise = (storageIndex, seq) => marks.#append(storageIndex, seq);
    return marks;
  }

  override async close(): Promise<void> {
    this.onRaise = undefined;
    clearTimeout(this.#timer);
    await this.#flush();
    await this.#fd?.close();
    this.#fd = undefined;
  }

  #append(storageIndex: Uint8Array, seq: bigint): void {
    const record = Buffer.alloc(RECORD_BYTES);
    record.set(storageIndex.subarray(0, 32), 0);
    record.writeBigUInt64BE(seq, 32);
    this.#pending.push(record);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, FLUSH_MS).unref();
  }

  #flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const records = this.#pending;
      this.#pending = [];
      if (records.length === 0 || this.#fd === undefined) return;
      try {
        await this.#fd.write(Buffer.concat(records));
        await this.#fd.datasync();
      } catch (err) {
        // Detection gets weaker for these directories; serving goes on.
        this.logger?.warn({ event: 'watermarks_unwritten', err: (err as Error).message }, 'could not write slot watermarks');
      }
    });
    return this.#flushing;
  }

  /** Rewrites the file with one record per directory (another process appending meanwhile may lose a raise). */
  async #compact(): Promise<void> {
    const bytes = await readFile(this.file);
    const seen = new Set<string>();
    const out: Buffer[] = [];
    for (let at = bytes.length - RECORD_BYTES - (bytes.length % RECORD_BYTES); at >= 0; at -= RECORD_BYTES) {
      const si = bytes.subarray(at, at + 32);
      const key = si.toString('hex');
      if (seen.has(key)) continue;
      seen.add(key);
      const seq = this.highest(si);
      if (seq === undefined) continue;
      const record = Buffer.alloc(RECORD_BYTES);
      si.copy(record, 0);
      record.writeBigUInt64BE(seq, 32);
      out.push(record);
    }
    await writeFileAtomic(this.file, Buffer.concat(out));
  }
}
