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
 * at no measurable CPU cost. Nothing else calls gc().
 */
export const NODE_FLAGS = ['--single-threaded-gc', '--expose-gc'] as const;

/**
 * The environment capstan runs with, set the same ways as NODE_FLAGS (the
 * shebang through `env -S`, `npm start`, the systemd unit, the benchmark).
 *
 * glibc's malloc by default hands each freed block above its dynamic mmap
 * threshold back to the kernel, and trims the heap's free top as soon as it
 * passes twice that threshold (a few MiB). capstan's chunk buffers are
 * 1 MiB, allocated and freed by the thousand per GiB: the kernel then
 * zeroes and faults in fresh pages for every one of them. Keeping blocks
 * under 8 MiB in the heap and letting up to 64 MiB of free heap top stand
 * removes that churn: decrypting 256 MiB in 1 MiB chunks took 540–800 ms
 * without and 183 ms with, and a 256 MiB get in
 * `npm run bench -- --only transfer --big-mib 256 --capstan-only` went from
 * 146–154 to 188–200 MB/s (7.3 → 6.2 CPU-seconds per GiB), the gateway's
 * peak RSS during the 8-client put from 210–217 to 218–232 MiB.
 * Both variables are mallopt(3)'s, read once at start; other allocators
 * ignore them.
 */
export const NODE_ENVIRONMENT = { MALLOC_MMAP_THRESHOLD_: '8388608', MALLOC_TRIM_THRESHOLD_: '67108864' } as const;

/** NODE_ENVIRONMENT as `NAME=value …`, the form a shell, `env -S` and systemd's Environment= take. */
export function environmentAssignments(): string {
  return Object.entries(NODE_ENVIRONMENT)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}
