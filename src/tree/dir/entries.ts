import { DirectoryReadCap, DirectoryWriteCap, MAX_CAP_LENGTH, parseCap, SymlinkTarget, type Cap } from '../../cap/index.js';
import { AeadError, openRandomized, sealRandomized } from '../../crypto/index.js';
import { IntegrityError, InvalidInputError } from '../../errors.js';
import type { DirEntry, EntryMetadata } from '../api.js';
import { nameBytes } from '../names.js';
import { BoundedCache } from '../../util/bounded-cache.js';
import { CHILD_CAPS_KEPT, type DirectoryKeys } from './keys.js';
import type { StoredCap, StoredEntry } from './node-format.js';

/**
 * Turning caps into what a node stores and back, per view.
 *
 * A child directory write cap is stored as the child's read cap (R, P) in
 * the clear plus the child's write secret sealed under the parent's Kc (from
 * the parent's W). The seal's aad is the child's R ‖ P, so a sealed secret
 * cannot be moved onto another entry's read cap without Kc. A read-cap view
 * returns the read cap and never touches the sealed bytes; a write-cap view
 * unseals them.
 */

function childCapAad(readKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return Buffer.concat([readKey, publicKey]);
}

/** The stored form of `cap` in a directory written through `keys` (which MUST be a write view). */
export function storeCap(keys: DirectoryKeys, cap: Cap, nonce: () => Uint8Array): StoredCap {
  if (cap instanceof DirectoryWriteCap) {
    const writer = keys.writer;
    if (!writer) throw new TypeError('storeCap needs a write view');
    const ro = cap.readonly();
    return {
      kind: 'dir-write',
      readKey: ro.readKey,
      publicKey: ro.publicKey,
      sealedWriteSecret: sealRandomized(writer.childCapKey, nonce(), cap.writeSecret, childCapAad(ro.readKey, ro.publicKey)),
    };
  }
  // A link is its target's bytes, never a string that could parse as a cap.
  if (cap instanceof SymlinkTarget) return { kind: 'symlink', target: cap.target };
  const text = cap?.toString?.();
  // Everything else goes by its string; re-parsing proves it prints and
  // parses back (an UnknownCap over the length bound or with a '/' would not).
  let parsed: Cap | undefined;
  if (typeof text === 'string' && text.length <= MAX_CAP_LENGTH) {
    try {
      parsed = parseCap(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!parsed) throw new InvalidInputError('cap cannot be stored in a directory');
  return { kind: 'text', text };
}

/**
 * The child write caps write views handed out lately, by the stored sealed
 * cap object they came from, with that view's keys. A stored cap belongs to
 * a decoded node, which is never changed (node-cache.ts), and one
 * DirectoryKeys object always opens it to the same cap: so a path walk
 * through a cached directory gets the same cap object each time, found by
 * identity, without building childWriteCap's id of some 150 characters (and
 * DirectoryKeys.of then finds its keys by that object). Bound: as
 * childWriteCap's, as it holds the same caps.
 */
const unsealed = new BoundedCache<StoredCap, { keys: DirectoryKeys; cap: DirectoryWriteCap }>(CHILD_CAPS_KEPT);

/** The cap a view may hand out for a stored cap: unsealed for a write view, a read cap otherwise. */
export function viewCap(keys: DirectoryKeys, stored: StoredCap, nodeId: string): Cap {
  if (stored.kind === 'symlink') return new SymlinkTarget(stored.target);
  if (keys.epoch !== undefined) return snapshotView(keys.epoch, stored, nodeId);
  if (stored.kind === 'dir-write') {
    const { writer } = keys;
    if (!writer) return new DirectoryReadCap(stored.readKey, stored.publicKey);
    const known = unsealed.get(stored);
    if (known !== undefined && known.keys === keys) return known.cap;
    const cap = unsealChild(keys, writer.childCapKey, stored, nodeId);
    unsealed.set(stored, { keys, cap });
    return cap;
  }
  try {
    const cap = parseCap(stored.text);
    // A write view hands out what is stored; a read view must not hand out a
    // writable cap linked as a string (only DirectoryWriteCap is writable, and
    // writers always seal those, so this is a writer bug or tampering).
    if (cap.isWritable && !keys.writer) return cap.readonly();
    return cap;
  } catch {
    throw new IntegrityError(nodeId, 'directory node');
  }
}

function unsealChild(
  keys: DirectoryKeys,
  childCapKey: Uint8Array,
  stored: Extract<StoredCap, { kind: 'dir-write' }>,
  nodeId: string,
): DirectoryWriteCap {
  return keys.childWriteCap(stored.readKey, stored.publicKey, stored.sealedWriteSecret, () => {
    try {
      const secret = openRandomized(childCapKey, stored.sealedWriteSecret, childCapAad(stored.readKey, stored.publicKey));
      return new DirectoryWriteCap(secret);
    } catch (err) {
      if (err instanceof AeadError || err instanceof RangeError) throw new IntegrityError(nodeId, 'directory node');
      throw err;
    }
  });
}

/**
 * In a snapshot view every directory comes out read-only at the view's
 * epoch, whether stored sealed or linked as text; a snapshot cap linked as
 * text keeps its own epoch (docs/spec/snapshots.md).
 */
function snapshotView(epoch: bigint, stored: Exclude<StoredCap, { kind: 'symlink' }>, nodeId: string): Cap {
  if (stored.kind === 'dir-write') return new DirectoryReadCap(stored.readKey, stored.publicKey, epoch);
  let cap: Cap;
  try {
    cap = parseCap(stored.text);
  } catch {
    throw new IntegrityError(nodeId, 'directory node');
  }
  if (cap instanceof DirectoryWriteCap) return cap.readonly().at(epoch);
  if (cap instanceof DirectoryReadCap && cap.epoch === undefined) return cap.at(epoch);
  return cap;
}

export function viewEntry(keys: DirectoryKeys, entry: StoredEntry, nodeId: string): DirEntry {
  return { name: entry.name, cap: viewCap(keys, entry.cap, nodeId), metadata: { ...entry.metadata } };
}

/** Checks caller-supplied metadata and returns the canonical copy that is stored. */
export function checkMetadata(m: EntryMetadata): EntryMetadata {
  if (m === null || typeof m !== 'object') throw new InvalidInputError('metadata is required');
  if (!Number.isSafeInteger(m.size) || m.size < 0) throw new InvalidInputError('metadata size must be a safe non-negative integer');
  const time = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidInputError(`metadata ${what} must be a finite number`);
    return v;
  };
  const out: EntryMetadata = { size: m.size, mtimeMs: time(m.mtimeMs, 'mtimeMs'), ctimeMs: time(m.ctimeMs, 'ctimeMs') };
  if (m.atimeMs !== undefined) out.atimeMs = time(m.atimeMs, 'atimeMs');
  if (m.noWrite) out.noWrite = true;
  if (m.executable) out.executable = true;
  return out;
}

/** Merges a patch (keys given as undefined are left alone; noWrite or executable: false clears it). */
export function patchMetadata(current: EntryMetadata, patch: Partial<EntryMetadata>): EntryMetadata {
  const merged: EntryMetadata = { ...current };
  for (const key of ['size', 'mtimeMs', 'ctimeMs', 'atimeMs', 'noWrite', 'executable'] as const) {
    if (patch[key] !== undefined) (merged as unknown as Record<string, unknown>)[key] = patch[key];
  }
  if (patch.noWrite === false) delete merged.noWrite;
  if (patch.executable === false) delete merged.executable;
  return checkMetadata(merged);
}

export function makeEntry(name: string, cap: StoredCap, metadata: EntryMetadata): StoredEntry {
  return { name, nameUtf8: nameBytes(name), cap, metadata };
}
