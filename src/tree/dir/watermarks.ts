/**
 * The highest slot sequence number seen per directory, so that a store
 * serving an older version than one already seen (a rollback: validly
 * signed, and undetectable from the record alone) is refused
 * (docs/spec/slots.md, Rollback; docs/spec/threat-model.md).
 *
 * Only seqs of records that verified, or that this process signed, are
 * recorded: a store cannot inflate a watermark to lock readers out with a
 * forged seq.
 */
export interface SlotWatermarks {
  /** The highest seq recorded for the directory, or undefined. Synchronous: answered from memory. */
  highest(storageIndex: Uint8Array): bigint | undefined;
  /** Records a seq that verified or was signed here; a lower or equal one changes nothing. */
  saw(storageIndex: Uint8Array, seq: bigint): void;
  close(): Promise<void>;
}

/** Directories the table starts with room for; it doubles when half full. */
const INITIAL_SLOTS = 1 << 12;

/**
 * SlotWatermarks in memory: an open-addressing table of 64-bit keys (the
 * first 8 bytes of the storage index, itself a hash) to seqs, 32 bytes per
 * directory at worst. Two directories sharing a key prefix (odds about
 * n² / 2^65: one in thirty million at a million directories) would share a
 * watermark and could see a false rollback alarm, never a missed one.
 * Bounds: 16 bytes per slot, at most twice the directories seen.
 */
export class MemorySlotWatermarks implements SlotWatermarks {
  #keys = new BigUint64Array(INITIAL_SLOTS);
  #seqs = new BigUint64Array(INITIAL_SLOTS);
  #count = 0;
  /** Called for each seq that raised a watermark (what a durable owner writes down). */
  protected onRaise: ((storageIndex: Uint8Array, seq: bigint) => void) | undefined;

  get size(): number {
    return this.#count;
  }

  highest(storageIndex: Uint8Array): bigint | undefined {
    const key = keyOf(storageIndex);
    const mask = this.#keys.length - 1;
    for (let i = Number(key & BigInt(mask)); ; i = (i + 1) & mask) {
      const k = this.#keys[i]!;
      if (k === 0n) return undefined;
      if (k === key) return this.#seqs[i];
    }
  }

  saw(storageIndex: Uint8Array, seq: bigint): void {
    if (this.#raise(keyOf(storageIndex), seq)) this.onRaise?.(storageIndex, seq);
  }

  async close(): Promise<void> {}

  /** Sets the key's watermark to `seq` if that raises it; answers whether it did. */
  #raise(key: bigint, seq: bigint): boolean {
    const mask = this.#keys.length - 1;
    for (let i = Number(key & BigInt(mask)); ; i = (i + 1) & mask) {
      const k = this.#keys[i]!;
      if (k === key) {
        if (this.#seqs[i]! >= seq) return false;
        this.#seqs[i] = seq;
        return true;
      }
      if (k === 0n) {
        this.#keys[i] = key;
        this.#seqs[i] = seq;
        if (++this.#count * 2 > this.#keys.length) this.#grow();
        return true;
      }
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const seqs = this.#seqs;
    this.#keys = new BigUint64Array(keys.length * 2);
    this.#seqs = new BigUint64Array(keys.length * 2);
    this.#count = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0n) this.#raise(keys[i]!, seqs[i]!);
  }
}

/** 0 marks an empty slot of the table, so a key that is 0 is stored as 1 (one more prefix collision, as harmless). */
function keyOf(storageIndex: Uint8Array): bigint {
  const key = new DataView(storageIndex.buffer, storageIndex.byteOffset, 8).getBigUint64(0);
  return key === 0n ? 1n : key;
}
