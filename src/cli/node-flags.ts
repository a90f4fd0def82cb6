/**
 * The node flags capstan runs with: the shebang of src/cli/main.ts carries
 * them (`capstan …`, the systemd unit, `npm start`), the benchmark starts the
 * gateway with them, and test/cli/node-flags.test.ts keeps the two equal.
 *
 * --single-threaded-gc: V8 otherwise runs concurrent marking and sweeping on
 * four helper threads. On the 2-core benchmark machine, where the event loop,
 * the seal worker, the store's I/O threads and the SSH client already share
 * the cores, those helpers took more CPU than they saved: measured with
 * `npm run bench -- --only transfer --capstan-only`, a 1 GiB put went from
 * 139–143 to 164–167 MB/s (11.9 → 10.0–10.4 CPU-seconds per GiB) and a get
 * from 265–268 to 360–368 MB/s (5.4 → 3.6–3.7). The heap is small (tens of
 * MiB), so a collection on the main thread is still a matter of
 * milliseconds. docs/operations.md says when to drop it.
 *
 * --expose-gc: lets the seal worker (src/tree/file/seal-pool.ts) collect the
 * one dead 1 MiB buffer AES-GCM leaves per chunk right away, with a minor GC
 * of its tiny heap. Left to itself V8 lets some 64 MiB of them pile up before
 * collecting; peak RSS during a 512 MiB put went from 220–223 to 190–194 MiB,
 * at no measurable CPU cost. The offload thread (src/crypto/offload.worker.ts)
 * does the same after each chunk it decrypts for a download. Nothing else
 * calls gc().
 */
export const NODE_FLAGS = ['--single-threaded-gc', '--expose-gc'] as const;
