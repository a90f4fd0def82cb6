import { CID } from 'multiformats/cid';
import { isValidSymlinkTarget, MAX_CAP_LENGTH } from '../../cap/index.js';
import { AeadError, openRandomized, sealRandomized, XCHACHA_NONCE_BYTES } from '../../crypto/index.js';
import { IntegrityError } from '../../errors.js';
import { isChunkAddress } from '../../store/address.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';
import type { EntryMetadata } from '../api.js';
import { MAX_NAME_BYTES } from '../names.js';
import { ByteReader, ByteWriter, FormatError } from './bytes.js';
import type { DirectoryKeys } from './keys.js';

/**
 * Directory node format v1: the authoritative code for docs/spec/directories.md.
 *
 * A directory version is a HAMT of nodes. Each node is stored in the
 * ChunkStore as
 *
 *     blob = 0x01 ‖ XChaCha20-Poly1305(Kn, random 24-byte nonce, plaintext, aad = SI)
 *          = 0x01 ‖ nonce(24) ‖ ciphertext ‖ tag(16)
 *
 * and its plaintext is one of
 *
 *     bucket: 0x01 ‖ varint n ‖ n × entry        (entries strictly ascending by UTF-8 name bytes)
 *     branch: 0x02 ‖ u8 bits ‖ 2^bits × child    (child i holds names whose hash has the value i
 *                                                  in the `bits` bits after the parent's)
 *     child:  u8 len ‖ CID bytes (len = 0: empty) ‖ varint count (entries in that subtree; 0 iff empty)
 *     entry:  u8 nameLen ‖ name (UTF-8, as the client gave it) ‖ cap ‖ metadata
 *     cap:    0x00 ‖ u16 len ‖ cap string (UTF-8, ≤ MAX_CAP_LENGTH)
 *           | 0x01 ‖ child R (32) ‖ child P (32) ‖ sealed child W (72)   a child directory write cap
 *           | 0x02 ‖ u16 len ‖ link target (1..4095 bytes, no NUL)      a symbolic link
 *     metadata: u8 flags (bit 0 atime present, bit 1 noWrite, bit 2 executable; others 0)
 *               ‖ varint size ‖ f64 mtimeMs ‖ f64 ctimeMs ‖ [f64 atimeMs]
 *
 * Integers are big-endian, varints unsigned LEB128 (minimal, < 2^53).
 */
export const NODE_FORMAT_VERSION = 1;
const KIND_BUCKET = 1;
const KIND_BRANCH = 2;
const CAP_TEXT = 0;
const CAP_DIR_WRITE = 1;
const CAP_SYMLINK = 2;
const FLAG_ATIME = 1;
const FLAG_NO_WRITE = 2;
const FLAG_EXECUTABLE = 4;
/** Branch fan-out bits a reader accepts (a writer's choice within these; v1 writers use DEFAULT_LAYOUT). */
export const MIN_BRANCH_BITS = 1;
export const MAX_BRANCH_BITS = 8;
/** nonce(24) ‖ W(32) ‖ tag(16). */
export const SEALED_WRITE_SECRET_BYTES = XCHACHA_NONCE_BYTES + 32 + 16;

export type StoredCap =
  | { kind: 'text'; text: string }
  | { kind: 'dir-write'; readKey: Uint8Array; publicKey: Uint8Array; sealedWriteSecret: Uint8Array }
  | { kind: 'symlink'; target: Uint8Array };

/** An entry as a node holds it: caps still in their stored form. */
export interface StoredEntry {
  readonly name: string;
  readonly nameUtf8: Uint8Array;
  readonly cap: StoredCap;
  readonly metadata: EntryMetadata;
}

/** Pointer to a subtree. `address` is absent for an empty subtree (count 0). */
export interface ChildRef {
  readonly address?: ChunkAddress | undefined;
  readonly count: number;
}

export interface BucketNode {
  readonly kind: 'bucket';
  readonly entries: readonly StoredEntry[];
}

export interface BranchNode {
  readonly kind: 'branch';
  readonly bits: number;
  readonly children: readonly ChildRef[];
}

export type DirNode = BucketNode | BranchNode;

export function nodeCount(node: DirNode): number {
  if (node.kind === 'bucket') return node.entries.length;
  let total = 0;
  for (const child of node.children) total += child.count;
  return total;
}

export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new FormatError('invalid UTF-8');
  }
}

export function encodeNode(node: DirNode): Uint8Array {
  const w = new ByteWriter(node.kind === 'bucket' ? 64 + node.entries.length * 192 : 8 + node.children.length * 48);
  if (node.kind === 'bucket') {
    w.u8(KIND_BUCKET).varint(node.entries.length);
    for (const entry of node.entries) writeEntry(w, entry);
  } else {
    if (node.children.length !== 1 << node.bits) throw new RangeError('branch arity does not match its bits');
    w.u8(KIND_BRANCH).u8(node.bits);
    for (const child of node.children) {
      const cid = child.address?.bytes ?? new Uint8Array(0);
      w.u8(cid.length).bytes(cid).varint(child.count);
    }
  }
  return w.finish();
}

function writeEntry(w: ByteWriter, entry: StoredEntry): void {
  w.u8(entry.nameUtf8.length).bytes(entry.nameUtf8);
  if (entry.cap.kind === 'text') {
    w.u8(CAP_TEXT).utf8WithLength(entry.cap.text);
  } else if (entry.cap.kind === 'symlink') {
    w.u8(CAP_SYMLINK).u16(entry.cap.target.length).bytes(entry.cap.target);
  } else {
    w.u8(CAP_DIR_WRITE).bytes(entry.cap.readKey).bytes(entry.cap.publicKey).bytes(entry.cap.sealedWriteSecret);
  }
  const m = entry.metadata;
  const flags = (m.atimeMs !== undefined ? FLAG_ATIME : 0) | (m.noWrite ? FLAG_NO_WRITE : 0) | (m.executable ? FLAG_EXECUTABLE : 0);
  w.u8(flags).varint(m.size).f64(m.mtimeMs).f64(m.ctimeMs);
  if (m.atimeMs !== undefined) w.f64(m.atimeMs);
}

/** Decodes a node plaintext; throws FormatError on anything a v1 writer cannot have produced. */
export function decodeNode(plaintext: Uint8Array): DirNode {
  const r = new ByteReader(plaintext);
  const kind = r.u8();
  if (kind === KIND_BUCKET) {
    const n = r.varint();
    if (n > r.remaining) throw new FormatError('entry count exceeds node size');
    const entries: StoredEntry[] = [];
    for (let i = 0; i < n; i++) {
      const entry = readEntry(r);
      // Strictly ascending: also rules out a name appearing twice.
      if (i > 0 && compareNames(entries[i - 1]!.nameUtf8, entry.nameUtf8) >= 0) throw new FormatError('entries out of order');
      entries.push(entry);
    }
    r.end();
    return { kind: 'bucket', entries };
  }
  if (kind === KIND_BRANCH) {
    const bits = r.u8();
    if (bits < MIN_BRANCH_BITS || bits > MAX_BRANCH_BITS) throw new FormatError('bad branch bits');
    const children: ChildRef[] = [];
    for (let i = 0; i < 1 << bits; i++) {
      const len = r.u8();
      const cidBytes = r.bytes(len);
      const count = r.varint();
      if (len === 0) {
        if (count !== 0) throw new FormatError('empty child with entries');
        children.push({ count: 0 });
        continue;
      }
      if (count === 0) throw new FormatError('child without entries');
      children.push({ address: decodeAddress(cidBytes), count });
    }
    r.end();
    return { kind: 'branch', bits, children };
  }
  throw new FormatError('unknown node kind');
}

export function decodeAddress(bytes: Uint8Array): ChunkAddress {
  let cid: CID;
  try {
    cid = CID.decode(bytes.slice());
  } catch {
    throw new FormatError('bad address');
  }
  if (!isChunkAddress(cid)) throw new FormatError('not a chunk address');
  return cid;
}

function readEntry(r: ByteReader): StoredEntry {
  const nameLen = r.u8();
  if (nameLen === 0 || nameLen > MAX_NAME_BYTES) throw new FormatError('bad name length');
  const nameUtf8 = r.bytes(nameLen).slice();
  const name = utf8(nameUtf8);
  let cap: StoredCap;
  const capKind = r.u8();
  if (capKind === CAP_TEXT) {
    const len = r.u16();
    if (len === 0 || len > MAX_CAP_LENGTH) throw new FormatError('bad cap length');
    cap = { kind: 'text', text: utf8(r.bytes(len)) };
  } else if (capKind === CAP_DIR_WRITE) {
    cap = {
      kind: 'dir-write',
      readKey: r.bytes(32).slice(),
      publicKey: r.bytes(32).slice(),
      sealedWriteSecret: r.bytes(SEALED_WRITE_SECRET_BYTES).slice(),
    };
  } else if (capKind === CAP_SYMLINK) {
    const target = r.bytes(r.u16()).slice();
    if (!isValidSymlinkTarget(target)) throw new FormatError('bad link target');
    cap = { kind: 'symlink', target };
  } else {
    // An older reader meets a newer kind here: the whole node is then an IntegrityError (the spec's rule).
    throw new FormatError('unknown cap kind');
  }
  const flags = r.u8();
  if ((flags & ~(FLAG_ATIME | FLAG_NO_WRITE | FLAG_EXECUTABLE)) !== 0) throw new FormatError('unknown metadata flags');
  const metadata: EntryMetadata = { size: r.varint(), mtimeMs: finite(r.f64()), ctimeMs: finite(r.f64()) };
  if (flags & FLAG_ATIME) metadata.atimeMs = finite(r.f64());
  if (flags & FLAG_NO_WRITE) metadata.noWrite = true;
  if (flags & FLAG_EXECUTABLE) metadata.executable = true;
  return { name, nameUtf8, cap, metadata };
}

function finite(v: number): number {
  if (!Number.isFinite(v)) throw new FormatError('time is not finite');
  return v;
}

/** The stored blob of a node: version byte, then the sealed plaintext bound to this directory's SI. */
export function sealNode(keys: DirectoryKeys, plaintext: Uint8Array, nonce: Uint8Array): Uint8Array {
  const blob = sealRandomized(keys.nodeKey, nonce, plaintext, keys.storageIndex, 1);
  blob[0] = NODE_FORMAT_VERSION;
  return blob;
}

/**
 * Opens and decodes a node blob. Any failure (unknown version, a failed tag:
 * wrong key, wrong directory, a flipped bit; or a plaintext that does not
 * decode) is one IntegrityError naming the node's address.
 */
export function openNode(keys: DirectoryKeys, address: ChunkAddress, blob: Uint8Array): { node: DirNode; size: number } {
  try {
    if (blob.length < 1 || blob[0] !== NODE_FORMAT_VERSION) throw new FormatError('unknown node version');
    const plaintext = openRandomized(keys.nodeKey, blob.subarray(1), keys.storageIndex);
    return { node: decodeNode(plaintext), size: plaintext.length };
  } catch (err) {
    if (err instanceof FormatError || err instanceof AeadError) {
      throw new IntegrityError(address.toString(), 'directory node');
    }
    throw err;
  }
}
