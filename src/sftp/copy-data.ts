import type { SessionContext } from './session-context.js';
import type { Handle, NamePlace, ReadHandle } from './handles.js';
import { STATUS, type StatusCode } from './protocol/constants.js';
import { statusPacket } from './protocol/replies.js';
import { MalformedPacketError, WireReader } from './protocol/wire.js';
import { SftpStatusError } from './status.js';
import type { WriteHandle } from './write-handle.js';

/**
 * The "copy-data" extension (OpenSSH PROTOCOL 4.10, draft-ietf-secsh-filexfer-
 * extensions-00 section 7), which `sftp cp` sends: copy a range of one open
 * file into another at an offset, without the bytes crossing the network.
 *
 * A whole file (offset 0, length 0 or at least its size) copied into a
 * handle that holds nothing yet (`cp`: OPEN with TRUNC) is a relink: the
 * handle's content becomes the same immutable file, and CLOSE links that cap
 * like any upload (quota counted, upload event recorded). No byte is read or
 * written, so a 10 GiB copy costs what a 1 KiB one does. Anything else is a
 * real copy, streamed through the write handle (bounded memory: one chunk).
 *
 * Statuses are those of OpenSSH's sftp-server (process_extended_copy_data):
 * - an unknown handle, a directory handle, a source not open for reading or
 *   a target not open for writing: NO_SUCH_FILE (EBADF there). capstan
 *   refuses these before copying; OpenSSH finds the last two only when a
 *   read or write fails, so for a copy of nothing it may answer OK;
 * - the same handle, or two handles on the same name: FAILURE (OpenSSH
 *   refuses the same path or inode whatever the ranges);
 * - an offset past 2^63 - 1 (lseek's EINVAL): BAD_MESSAGE; the write offset
 *   is ignored for a handle opened with APPEND, as there;
 * - a range past the end of the source: what there is gets copied, and the
 *   status is OK or EOF exactly as OpenSSH's 64 KiB read loop gives it
 *   (copyStatus); length 0 (to the end) is always OK.
 */

/** OpenSSH's server copies in steps of this size; its EOF status depends on it. */
export const COPY_STEP = 64 * 1024;

const OFF_T_MAX = (1n << 63n) - 1n;

interface CopyDataRequest {
  from: Buffer;
  readOffset: bigint;
  readLength: bigint;
  to: Buffer;
  writeOffset: bigint;
}

function parse(data: Buffer): CopyDataRequest {
  try {
    const r = new WireReader(data);
    const req = { from: r.bytes(), readOffset: r.u64Exact(), readLength: r.u64Exact(), to: r.bytes(), writeOffset: r.u64Exact() };
    r.end();
    return req;
  } catch (err) {
    if (err instanceof MalformedPacketError) throw new SftpStatusError(STATUS.BAD_MESSAGE, 'malformed extended request');
    throw err;
  }
}

const badHandle = (): SftpStatusError => new SftpStatusError(STATUS.NO_SUCH_FILE, 'bad handle');

/** A handle on a file (as OpenSSH's handle_to_fd): an unknown one or a directory is EBADF. */
function fileHandle(ctx: SessionContext, wire: Buffer): ReadHandle | WriteHandle {
  let handle: Handle;
  try {
    handle = ctx.handles.get(wire);
  } catch {
    throw badHandle();
  }
  if (handle.kind === 'dir') throw badHandle();
  return handle;
}

function placeOf(handle: ReadHandle | WriteHandle): NamePlace | undefined {
  return handle.kind === 'read' ? handle.place : { dir: handle.target.dir.cap, name: handle.target.name };
}

function sameName(a: ReadHandle | WriteHandle, b: ReadHandle | WriteHandle): boolean {
  const [p, q] = [placeOf(a), placeOf(b)];
  if (p === undefined || q === undefined) return false;
  return p.name === q.name && Buffer.compare(Buffer.from(p.dir.storageIndex), Buffer.from(q.dir.storageIndex)) === 0;
}

/**
 * The status OpenSSH's server gives for `length` (> 0) bytes asked where
 * only `available` remain. Its loop reads min(64 KiB, left) per step, taking
 * the step off `left` before reading; a read that finds nothing ends the
 * loop with EOF, unless `left` was 0 by then (that was the last step), when
 * it is OK. The first empty read is at step ceil(available / step), and the
 * last step is ceil(length / step) - 1.
 */
export function copyStatus(available: bigint, length: bigint): StatusCode {
  const step = BigInt(COPY_STEP);
  const ceil = (n: bigint): bigint => (n + step - 1n) / step;
  return ceil(available) <= ceil(length) - 2n ? STATUS.EOF : STATUS.OK;
}

export async function copyDataRequest(ctx: SessionContext, id: number, data: Buffer): Promise<Buffer> {
  const req = parse(data);
  const source = fileHandle(ctx, req.from);
  const target = fileHandle(ctx, req.to);
  if (source === target || sameName(source, target)) {
    throw new SftpStatusError(STATUS.FAILURE, 'refusing to copy a file onto itself');
  }
  if (req.readOffset > OFF_T_MAX) throw new SftpStatusError(STATUS.BAD_MESSAGE, 'invalid offset');
  if (target.kind === 'write' && !target.append && req.writeOffset > OFF_T_MAX)
    throw new SftpStatusError(STATUS.BAD_MESSAGE, 'invalid offset');
  if (source.kind === 'write' && !source.readable) throw badHandle();
  if (target.kind !== 'write') throw badHandle();

  const size = BigInt(source.kind === 'read' ? source.reader.size : source.size);
  const available = req.readOffset < size ? size - req.readOffset : 0n;
  const toEnd = req.readLength === 0n;
  const count = toEnd || req.readLength > available ? available : req.readLength;
  const status = toEnd ? STATUS.OK : copyStatus(available, req.readLength);
  if (count > 0n) {
    const at = target.append ? target.size : req.writeOffset;
    if (BigInt(at) + count > BigInt(Number.MAX_SAFE_INTEGER)) throw new SftpStatusError(STATUS.FAILURE, 'file too large');
    await copy(ctx, source, Number(req.readOffset), Number(count), target, Number(at));
  }
  return status === STATUS.OK ? statusPacket(id, STATUS.OK) : statusPacket(id, status, 'end of file');
}

async function copy(
  ctx: SessionContext,
  source: ReadHandle | WriteHandle,
  start: number,
  count: number,
  target: WriteHandle,
  at: number,
): Promise<void> {
  const started = performance.now();
  await ctx.quota?.beforeWrite(target, at, count);
  const relink = source.kind === 'read' && start === 0 && count === source.reader.size && at === 0 && target.canRelink;
  if (relink) {
    await target.relink(source.cap, count);
  } else {
    let offset = at;
    for await (const piece of pieces(source, start, count)) {
      await target.write(offset, piece);
      offset += piece.length;
    }
  }
  ctx.log.debug({ event: 'copy-data', relinked: relink, bytes: count, ms: Math.round(performance.now() - started) }, 'copied');
}

/** The source range in order, one chunk (or one 256 KiB read of an upload) at a time. */
async function* pieces(source: ReadHandle | WriteHandle, start: number, count: number): AsyncIterable<Uint8Array> {
  if (source.kind === 'read') {
    yield* source.reader.stream(start, start + count);
    return;
  }
  for (let done = 0; done < count; ) {
    const piece = await source.read(start + done, Math.min(4 * COPY_STEP, count - done));
    if (piece.length === 0) return;
    yield piece;
    done += piece.length;
  }
}
