import { checksumAt } from './checksum-exec.js';
import type { SessionContext } from './session-context.js';
import { STATUS } from './protocol/constants.js';
import { extendedReply } from './protocol/replies.js';
import { MalformedPacketError, WireReader } from './protocol/wire.js';
import { SftpStatusError } from './status.js';

/**
 * check-file-name and check-file-handle (draft-ietf-secsh-filexfer-extensions-00,
 * section 3), and check-file, the handle form's name in earlier drafts,
 * which paramiko's SFTPFile.check still sends (not advertised: a client
 * that reads the VERSION list finds the two names above). Request, after
 * the extension name:
 *
 *     string  filename | handle
 *     string  hash-algorithms   (comma-separated, client's preference first)
 *     uint64  start-offset
 *     uint64  length            (0: to the end of the file)
 *     uint32  block-size        (0: one hash over the whole range)
 *
 * Reply: SSH_FXP_EXTENDED_REPLY, request-id, string "check-file" (whichever
 * name asked), string hash-algorithm-used, then the hash bytes (paramiko's
 * and Apache MINA's clients read that first string, and MINA checks it).
 * capstan answers only the whole file (offset 0, length 0, block size 0)
 * with sha256, md5 or sha1 (the first of the client's list it knows),
 * straight from the manifest when the manifest records it, else computed by
 * streaming the file (FileReader.checksum): any other range or algorithm is
 * OP_UNSUPPORTED, so a client falls back to hashing the data itself.
 */

export const CHECK_FILE_ALGORITHMS = ['sha256', 'md5', 'sha1'] as const;
type Algorithm = (typeof CHECK_FILE_ALGORITHMS)[number];

interface CheckFileRequest {
  target: Buffer;
  algorithms: string[];
  start: number;
  length: number;
  blockSize: number;
}

function parse(data: Buffer): CheckFileRequest {
  try {
    const r = new WireReader(data);
    const target = Buffer.from(r.bytes());
    const algorithms = r
      .bytes()
      .toString('utf8')
      .split(',')
      .map((s) => s.trim());
    const request = { target, algorithms, start: r.u64(), length: r.u64(), blockSize: r.u32() };
    r.end();
    return request;
  } catch (err) {
    if (err instanceof MalformedPacketError) throw new SftpStatusError(STATUS.BAD_MESSAGE, 'malformed check-file request');
    throw err;
  }
}

export async function checkFileRequest(ctx: SessionContext, id: number, name: string, data: Buffer): Promise<Buffer> {
  const req = parse(data);
  if (req.start !== 0 || req.length !== 0 || req.blockSize !== 0) {
    throw new SftpStatusError(STATUS.OP_UNSUPPORTED, 'only whole-file hashes (offset 0, length 0, block size 0)');
  }
  const algorithm = req.algorithms.find((a): a is Algorithm => (CHECK_FILE_ALGORITHMS as readonly string[]).includes(a));
  if (algorithm === undefined) throw new SftpStatusError(STATUS.OP_UNSUPPORTED, 'supported: sha256, md5, sha1');
  let digest: Uint8Array;
  if (name === 'check-file-name') {
    digest = await checksumAt(ctx.view, req.target.toString('utf8'), algorithm);
  } else {
    const handle = ctx.handles.get(req.target);
    if (handle.kind !== 'read') {
      // A directory has no hash; an open upload has none until CLOSE commits it.
      throw new SftpStatusError(STATUS.OP_UNSUPPORTED, 'hashes are for files opened for reading only');
    }
    digest = await handle.reader.checksum(algorithm);
  }
  return extendedReply(id, (b) => b.string('check-file').string(algorithm).raw(digest));
}
