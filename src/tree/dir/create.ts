import { DirectoryWriteCap } from '../../cap/index.js';
import { XCHACHA_NONCE_BYTES } from '../../crypto/index.js';
import type { AbortOptions } from '../../errors.js';
import type { DirectoryContext } from './context.js';
import { DirectoryKeys } from './keys.js';
import { encodeNode, sealNode } from './node-format.js';
import { encodeSlotRecord } from './slot-record.js';

/** The seq of a directory's first version. */
export const FIRST_SEQ = 1n;

/**
 * A new, empty directory: a random write secret, an empty root bucket, and
 * the first slot version. The root node is stored before the slot that
 * names it (the write order every mutation follows too).
 */
export async function createDirectory(ctx: DirectoryContext, options: AbortOptions = {}): Promise<DirectoryWriteCap> {
  const cap = new DirectoryWriteCap(ctx.randomBytes(32));
  const keys = DirectoryKeys.of(cap);
  const plaintext = encodeNode({ kind: 'bucket', entries: [] });
  const root = await ctx.chunks.put(sealNode(keys, plaintext, ctx.randomBytes(XCHACHA_NONCE_BYTES)), { ...options, unique: true });
  const record = encodeSlotRecord(keys.writer!.signingKey, keys.storageIndex, { seq: FIRST_SEQ, root, sealed: false, shared: false });
  // expectedSeq null: a slot that already exists (a repeated random secret,
  // which does not happen) is a ConflictError, never an overwrite.
  await ctx.slots.compareAndSwap(keys.storageIndex, null, { seq: FIRST_SEQ, record }, options);
  return cap;
}
