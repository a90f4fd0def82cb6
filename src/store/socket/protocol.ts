import type { CompactResult, RepackResult } from '../chunks/chunk-store.js';
import {
  AbortError,
  ConflictError,
  IntegrityError,
  InvalidInputError,
  NotFoundError,
  PermissionError,
  TransientError,
  isCapstanError,
} from '../../errors.js';
import { MAX_CHUNK_BYTES } from '../address.js';
import { MAX_SLOT_RECORD_BYTES, STORAGE_INDEX_BYTES } from '../slots/slot-limits.js';
import type { SlotEntry, SnapshotPin } from '../slots/slot-store.js';

/**
 * The node socket protocol, version 2 ("capstan-node/2"): how CLI commands
 * reach the stores of a running gateway, which holds the node's LevelDB and
 * journal (docs/spec/packs.md). Local only (a unix-domain socket, mode
 * 0600), so it carries no authentication of its own: whoever can open the
 * socket is the node's owner. Version 1 served slots only; a gateway and
 * the CLI always come from the same install.
 *
 * Framing: UTF-8 JSON, one object per line ('\n'), at most MAX_LINE
 * characters a line, either direction. Byte strings are lower-case hex
 * (storage indexes) or base64 (records, chunk bytes); addresses are CID
 * strings; seqs are decimal strings (bigint). Requests carry a
 * client-chosen `id` (a safe integer) echoed by the response; a connection
 * may have several requests in flight and responses may come in any order.
 *
 *   {"id":1,"op":"get","si":HEX}                        → {"id":1,"ok":true,"entry":null | {"seq":DEC,"record":B64}}
 *   {"id":2,"op":"cas","si":HEX,"expected":DEC|null,
 *          "seq":DEC,"record":B64}                      → {"id":2,"ok":true}
 *   {"id":3,"op":"list"}                                → {"id":3,"ok":true,"keys":[HEX…],"cursor":N}   (cursor absent: done)
 *   {"id":4,"op":"list","cursor":N}                     → the next page, same shape
 *   {"id":5,"op":"list-close","cursor":N}               → {"id":5,"ok":true}
 *   {"id":6,"op":"chunk-put","bytes":B64}               → {"id":6,"ok":true,"address":CID}
 *   {"id":7,"op":"chunk-get","address":CID}             → {"id":7,"ok":true,"bytes":B64}
 *   {"id":8,"op":"chunk-has","address":CID}             → {"id":8,"ok":true,"has":BOOL}
 *   {"id":9,"op":"chunk-stat","address":CID}            → {"id":9,"ok":true,"stat":null | {"bytes":N,"lastPutMs":N}}
 *   {"id":10,"op":"chunk-flush"}                        → {"id":10,"ok":true}
 *   {"id":11,"op":"chunk-list"}                         → {"id":11,"ok":true,"keys":[CID…],"cursor":N}   (as list)
 *   {"id":12,"op":"chunk-usage"}                        → {"id":12,"ok":true,"usage":{"chunks":N,"bytes":N}}
 *   {"id":13,"op":"chunk-delete","address":CID}         → {"id":13,"ok":true}
 *   {"id":14,"op":"chunk-delete-idle","address":CID,
 *          "cutoffMs":N}                                → {"id":14,"ok":true,"freed":null | N}
 *   {"id":15,"op":"chunk-compact","dryRun":BOOL,
 *          "threshold"?:X}                             → {"id":15,"ok":true,"compact":{"rewritten":N,"removed":N,
 *                                                           "copiedBytes":N,"freedBytes":N}}
 *   {"id":17,"op":"pin","si":HEX,"createdMs":N}        → {"id":17,"ok":true,"pin":"HEX:EPOCH:MS"}
 *   {"id":18,"op":"unpin","si":HEX,"epoch":DEC}         → {"id":18,"ok":true,"removed":BOOL}
 *   {"id":19,"op":"pins","si"?:HEX}                     → {"id":19,"ok":true,"keys":["HEX:EPOCH:MS"…],"cursor":N}   (as list)
 *   {"id":20,"op":"get-at","si":HEX,"epoch":DEC}        → {"id":20,"ok":true,"entry":null | {"seq":DEC,"record":B64}}
 *   {"id":21,"op":"history-prune"}                      → {"id":21,"ok":true,"pruned":N}
 *   {"id":16,"op":"chunk-repack","dryRun":BOOL,
 *          "limit"?:N}                                 → {"id":16,"ok":true,"repack":{"moved":N,"movedBytes":N,
 *                                                           "dropped":N,"skipped":N,"damaged":N}}
 *   any failure                                         → {"id":…,"ok":false,"error":{"name":…,"message":…,"storageIndex"?,"what"?}}
 *
 * A line that is not JSON, too long, or not one of these shapes is a protocol
 * violation: the server closes that connection and nothing else.
 */
/** Base64 of the largest chunk (16 MiB), with room for the JSON around it. */
export const MAX_LINE = 24 * 1024 * 1024;
/** Keys per list page: 256 × 66 characters ≈ 17 KiB a line. */
export const LIST_PAGE = 256;

export type Request =
  | { id: number; op: 'get'; si: string }
  | { id: number; op: 'cas'; si: string; expected: string | null; seq: string; record: string }
  | { id: number; op: 'list' | 'chunk-list'; cursor?: number }
  | { id: number; op: 'pins'; si?: string; cursor?: number }
  | { id: number; op: 'pin'; si: string; createdMs: number }
  | { id: number; op: 'unpin' | 'get-at'; si: string; epoch: string }
  | { id: number; op: 'list-close'; cursor: number }
  | { id: number; op: 'chunk-put'; bytes: string }
  | { id: number; op: 'chunk-get' | 'chunk-has' | 'chunk-stat' | 'chunk-delete'; address: string }
  | { id: number; op: 'chunk-delete-idle'; address: string; cutoffMs: number }
  | { id: number; op: 'chunk-compact'; dryRun: boolean; threshold?: number }
  | { id: number; op: 'chunk-repack'; dryRun: boolean; limit?: number }
  | { id: number; op: 'chunk-flush' | 'chunk-usage' | 'history-prune' };

export interface WireError {
  name: string;
  message: string;
  storageIndex?: string;
  what?: string;
}

export type Response =
  | {
      id: number;
      ok: true;
      entry?: WireEntry | null;
      keys?: string[];
      cursor?: number;
      address?: string;
      bytes?: string;
      has?: boolean;
      stat?: { bytes: number; lastPutMs: number } | null;
      usage?: { chunks: number; bytes: number };
      freed?: number | null;
      compact?: CompactResult;
      repack?: RepackResult;
      pin?: string;
      removed?: boolean;
      pruned?: number;
    }
  | { id: number; ok: false; error: WireError };

export interface WireEntry {
  seq: string;
  record: string;
}

/**
 * Splits a character stream into lines, refusing any line longer than the
 * bound. An unfinished line is kept as its pieces and joined once, when its
 * end arrives: appending to one string and searching it would flatten the
 * whole line again for every chunk, which made a 24 MiB line cost gigabytes
 * of copying.
 */
export class LineSplitter {
  private parts: string[] = [];
  private pendingLength = 0;
  constructor(private readonly maxLine = MAX_LINE) {}

  /** The complete lines in `chunk` (plus what came before); throws InvalidInputError when a line is too long. */
  push(chunk: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      if (this.pendingLength + nl - start > this.maxLine) throw new InvalidInputError('protocol line too long');
      const tail = chunk.slice(start, nl);
      lines.push(this.parts.length === 0 ? tail : this.parts.join('') + tail);
      this.parts = [];
      this.pendingLength = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.parts.push(chunk.slice(start));
      this.pendingLength += chunk.length - start;
    }
    if (this.pendingLength > this.maxLine) throw new InvalidInputError('protocol line too long');
    return lines;
  }
}

const HEX_INDEX = new RegExp(`^[0-9a-f]{${STORAGE_INDEX_BYTES * 2}}$`);
export const isHexIndex = (v: unknown): v is string => typeof v === 'string' && HEX_INDEX.test(v);
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** base64 of one byte more than the chunk bound (the store refuses the extra byte itself). */
const MAX_CHUNK_BASE64 = Math.ceil((MAX_CHUNK_BYTES + 1) / 3) * 4;
/** base64 of one byte more than the record bound: longer is malformed, shorter reaches the store's own check. */
const MAX_RECORD_BASE64 = Math.ceil((MAX_SLOT_RECORD_BYTES + 1) / 3) * 4;

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isCursor = isId;

/** Parses one request line; undefined means a protocol violation. */
export function parseRequest(line: string): Request | undefined {
  let msg: Record<string, unknown>;
  try {
    msg = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null || !isId(msg.id)) return undefined;
  const hexIndex = isHexIndex(msg.si);
  switch (msg.op) {
    case 'get':
      return hexIndex ? (msg as Request) : undefined;
    case 'cas': {
      const ok =
        hexIndex &&
        (msg.expected === null || (typeof msg.expected === 'string' && DECIMAL.test(msg.expected))) &&
        typeof msg.seq === 'string' &&
        DECIMAL.test(msg.seq) &&
        typeof msg.record === 'string' &&
        msg.record.length <= MAX_RECORD_BASE64 &&
        BASE64.test(msg.record);
      return ok ? (msg as Request) : undefined;
    }
    case 'list':
    case 'chunk-list':
      return msg.cursor === undefined || isCursor(msg.cursor) ? (msg as Request) : undefined;
    case 'list-close':
      return isCursor(msg.cursor) ? (msg as Request) : undefined;
    case 'pins':
      return (msg.si === undefined || hexIndex) && (msg.cursor === undefined || isCursor(msg.cursor)) ? (msg as Request) : undefined;
    case 'pin':
      return hexIndex && Number.isSafeInteger(msg.createdMs) ? (msg as Request) : undefined;
    case 'unpin':
    case 'get-at':
      return hexIndex && typeof msg.epoch === 'string' && DECIMAL.test(msg.epoch) ? (msg as Request) : undefined;
    case 'chunk-put':
      return typeof msg.bytes === 'string' && msg.bytes.length <= MAX_CHUNK_BASE64 && BASE64.test(msg.bytes) ? (msg as Request) : undefined;
    case 'chunk-get':
    case 'chunk-has':
    case 'chunk-stat':
    case 'chunk-delete':
      return typeof msg.address === 'string' && msg.address.length <= 128 ? (msg as Request) : undefined;
    case 'chunk-delete-idle':
      return typeof msg.address === 'string' && msg.address.length <= 128 && Number.isSafeInteger(msg.cutoffMs)
        ? (msg as Request)
        : undefined;
    case 'chunk-compact':
      return typeof msg.dryRun === 'boolean' &&
        (msg.threshold === undefined || (typeof msg.threshold === 'number' && msg.threshold >= 0 && msg.threshold <= 1))
        ? (msg as Request)
        : undefined;
    case 'chunk-repack':
      return typeof msg.dryRun === 'boolean' && (msg.limit === undefined || (Number.isSafeInteger(msg.limit) && Number(msg.limit) > 0))
        ? (msg as Request)
        : undefined;
    case 'chunk-flush':
    case 'chunk-usage':
    case 'history-prune':
      return msg as Request;
    default:
      return undefined;
  }
}

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
export const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));
export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
export const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** A pin on the wire: `HEX:EPOCH:MS`. */
export function encodePin(pin: SnapshotPin): string {
  return `${toHex(pin.root)}:${pin.epoch}:${pin.createdMs}`;
}

const PIN_TEXT = new RegExp(`^([0-9a-f]{${STORAGE_INDEX_BYTES * 2}}):(0|[1-9][0-9]{0,19}):(0|[1-9][0-9]{0,15})$`);

export function decodePin(text: unknown): SnapshotPin {
  const m = typeof text === 'string' ? PIN_TEXT.exec(text) : null;
  if (m === null) throw new TransientError('malformed response from the node store server');
  return { root: fromHex(m[1]!), epoch: BigInt(m[2]!), createdMs: Number(m[3]) };
}

export function encodeEntry(entry: SlotEntry): WireEntry {
  return { seq: entry.seq.toString(), record: toBase64(entry.record) };
}

/** Decodes an entry from the server; the client trusts the server's shapes no more than a store's bytes. */
export function decodeEntry(wire: unknown): SlotEntry {
  const w = wire as WireEntry | null;
  if (typeof w?.seq !== 'string' || !DECIMAL.test(w.seq) || typeof w.record !== 'string' || !BASE64.test(w.record)) {
    throw new TransientError('malformed response from the slot store server');
  }
  return { seq: BigInt(w.seq), record: fromBase64(w.record) };
}

/** The error as it crosses the socket. Only capstan's typed errors keep their identity; anything else is a server bug. */
export function encodeError(err: unknown): WireError {
  if (err instanceof IntegrityError) return { name: err.name, message: err.message, storageIndex: err.storageIndex };
  if (isCapstanError(err)) return { name: err.name, message: err.message };
  return { name: 'Error', message: 'node store server failed' };
}

const REVIVE: Record<string, new (message: string) => Error> = {
  NotFoundError,
  ConflictError,
  TransientError,
  InvalidInputError,
  PermissionError,
  AbortError,
};

/** The typed error the server sent, as the same class on this side. */
export function decodeError(wire: WireError | undefined): Error {
  const name = String(wire?.name);
  const message = String(wire?.message ?? 'node store server error');
  if (name === 'IntegrityError') return new IntegrityError(String(wire?.storageIndex), String(wire?.what ?? 'object'));
  return Object.hasOwn(REVIVE, name) ? new REVIVE[name]!(message) : new Error(message);
}
