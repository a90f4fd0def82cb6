import { read, readSync } from 'node:fs';

/**
 * Reads `bytes.length` bytes of the open file `fd` from `position` into
 * `bytes`, through the process's file threads, as many reads as it takes.
 * Answers the bytes read: fewer only at the file's end. The caller keeps
 * `fd` open until this settles (for a FileHandle: a read through its `fd`
 * is not one of the handle's own operations, which its close() waits for).
 */
export function readFullyAt(fd: number, bytes: Uint8Array, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const next = (done: number): void => {
      if (done === bytes.length) {
        resolve(done);
        return;
      }
      read(fd, bytes, done, bytes.length - done, position + done, (err, n) => {
        if (err !== null) reject(err);
        else if (n === 0) resolve(done);
        else next(done + n);
      });
    };
    next(0);
  });
}

/**
 * readFullyAt, on the calling thread: for worker threads (the offload
 * thread, which reads this way only when it has nothing else to do; the fs
 * store's I/O threads), never the event loop.
 */
export function readFullyAtSync(fd: number, bytes: Uint8Array, position: number): number {
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, bytes.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
