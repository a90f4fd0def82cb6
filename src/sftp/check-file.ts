import type { Checksums } from '../tree/index.js';
import { checksumsAt } from './checksum-exec.js';
import type { ExtensionContext } from './extensions.js';
import { extendedReply, STATUS } from './protocol.js';
import { SftpStatusError } from './status.js';

/**
 * check-file-name and check-file-handle (draft-ietf-secsh-filexfer-extensions-00,
 * section 3). Request, after the extension name:
 *
 *     string  filename | handle
 *     string  hash-algorithms   (comma-separated, client's preference first)
 *     uint64  start-offset
 *     uint64  length            (0: to the end of the file)
 *     uint32  block-size        (0: one hash over the whole range)
 *
 * Reply: SSH_FXP_EXTENDED_REPLY, request-id, string hash-algorithm-used,
 * then the hash bytes. capstan answers only the whole file (offset 0,
 * length 0, block size 0) with sha256, md5 or sha1, straight from the
 * manifest: any other range or algorithm is OP_UNSUPPORTED, so a client
 * falls back to hashing the data itself.
 */

export const CHECK_FILE_ALGORITHMS = ['sha256', 'md5', 'sha1'] as const;
type Algorithm = (typeof CHECK_FILE_ALGORITHMS)[number];

interface CheckFileRequest {
  target: Buffer;
  algorithms: string[];
  start: bigint;
  length: bigint;
  blockSize: number;
}

function parse(data: Buffer | undefined): CheckFileRequest {
  const buf = data ?? Buffer.alloc(0);
  let p = 0;
  const bad = (): never => {
    throw new SftpStatusError(STATUS.BAD_MESSAGE, 'malformed check-file request');
  };
  const str = (): Buffer => {
    if (buf.length - p < 4) bad();
    const len = buf.readUInt32BE(p);
    p += 4;
    if (buf.length - p < len) bad();
    const out = buf.subarray(p, p + len);
    p += len;
    return out;
  };
  const target = Buffer.from(str());
  const algorithms = str()
    .toString('utf8')
    .split(',')
    .map((s) => s.trim());
  if (buf.length - p !== 20) bad();
  const start = buf.readBigUInt64BE(p);
  const length = buf.readBigUInt64BE(p + 8);
  const blockSize = buf.readUInt32BE(p + 16);
  return { target, algorithms, start, length, blockSize };
}

export async function checkFileRequest(ctx: ExtensionContext, id: number, name: string, data: Buffer | undefined): Promise<void> {
  const req = parse(data);
  if (req.start !== 0n || req.length !== 0n || req.blockSize !== 0) {
    throw new SftpStatusError(STATUS.OP_UNSUPPORTED, 'only whole-file hashes (offset 0, length 0, block size 0)');
  }
  const algorithm = req.algorithms.find((a): a is Algorithm => (CHECK_FILE_ALGORITHMS as readonly string[]).includes(a));
  if (algorithm === undefined) throw new SftpStatusError(STATUS.OP_UNSUPPORTED, 'supported: sha256, md5, sha1');
  let sums: Checksums;
  if (name === 'check-file-name') {
    sums = await checksumsAt(ctx.view, req.target.toString('utf8'));
  } else {
    const handle = ctx.handles.get(req.target);
    if (handle.kind !== 'read') {
      // A directory has no hash; an open upload has none until CLOSE commits it.
      throw new SftpStatusError(STATUS.OP_UNSUPPORTED, 'hashes are for files opened for reading only');
    }
    sums = await handle.reader.checksums();
  }
  const algo = Buffer.from(algorithm, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(algo.length);
  ctx.sftp._capstanSendRaw(extendedReply(id, [len, algo, Buffer.from(sums[algorithm])]));
}
