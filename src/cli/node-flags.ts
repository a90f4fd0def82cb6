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
 *
 * --max-semi-space-size=4: V8's young generation is two semi-spaces, each
 * growing to 16 MiB by default; the gateway's start-up allocations grow them
 * to that at once, and the pages stay resident. At 4 MiB a demo gateway
 * (fsync on) started at 96–105 MiB RSS instead of 117–132, and stood at
 * 140–168 instead of 182–201 after one session put 2,000 files of 16 KiB
 * (10 runs each way, some of the 4 MiB ones with a second GC flag under
 * test). A large transfer's young collections are started by its packet
 * buffers' external memory, not by the semi-spaces filling, so their size
 * does not change how often they run; small files took as much CPU either
 * way (2.1–3.2 CPU-ms a file both ways, alternated, on a noisy hour).
 *
 * --no-incremental-marking-task: V8 otherwise starts a major (mark-compact)
 * collection from a background task as soon as its heuristics think the old
 * generation could use one; under a large transfer, whose packet buffers
 * keep the young collections coming, they started one every ~40 MiB moved,
 * each 20–30 ms of marking on the main thread, on a heap of only ~20 MiB
 * (`--trace-gc --trace-incremental-marking`: "Start (task)", 18 of a 41 MiB
 * limit). Without the task a major collection starts when the old
 * generation reaches its allocation limit or external memory presses for
 * one, and it is still incremental.
 * Alternated on the 2-core machine: a 1 GiB get from 17–27 major
 * collections and 2.0–2.8 main-thread CPU-seconds to 0–3 and 1.6–1.8; a
 * 512 MiB put from 25–37 and 2.3–2.6 s to 0–2 and 1.3–1.6 s; 1,000 small
 * files 2.25–2.53 to 2.12–2.24 CPU-ms a file. The price was memory: dead
 * buffers waited longer for their collection, and in `npm run bench` the
 * 8-client run's peak RSS rose from 285–310 to 307–372 MiB. The gateway now
 * bounds them itself (src/node/buffer-collector.ts): 278–323 MiB. V8's
 * memory reducer, which shrinks a grown heap once work stops, also finishes
 * its marking from that task: the gateway runs one collection itself when
 * it goes quiet (src/node/idle-collector.ts).
 */
export const NODE_FLAGS = ['--single-threaded-gc', '--expose-gc', '--max-semi-space-size=4', '--no-incremental-marking-task'] as const;
