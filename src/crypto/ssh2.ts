import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type Ssh2 from 'ssh2';
import { randomFillPooled } from './random.js';

/**
 * ssh2, loaded so that the random padding of the packets it sends is cut
 * from a pool (src/crypto/random.ts) instead of one randomFillSync each.
 *
 * Why: ssh2 fills each outgoing packet's 4 to 19 bytes of padding with a
 * randomFillSync call of its own, whose fixed cost (a crypto job set up and
 * torn down, OpenSSL's fork check: 36,516 getpid calls per GiB under
 * `strace -c`) made it 0.29 s of the event loop's profile per GiB served.
 * Measured with OpenSSH's sftp getting 1 GiB from two demo gateways,
 * alternated, 10 rounds each: the event loop's CPU per get went from a
 * median of 1.69 s to 1.45 s, the gateway's from 3.17 s to 2.93 s.
 *
 * How: ssh2's modules take randomFillSync out of node:crypto when they are
 * first required (`const { randomFillSync } = require('crypto')`). So this
 * module, which every value import of ssh2 in src goes through
 * (test/crypto/ssh2-padding.test.ts checks both), puts randomFillPooled on
 * node:crypto, requires ssh2, and puts randomFillSync back at once: nothing
 * else in the process sees the change, and ssh2 itself is not edited. The
 * bytes are the same CSPRNG's, each handed out once. Were ssh2 already
 * loaded by someone else, it would keep randomFillSync: slower, the same.
 */
const require = createRequire(import.meta.url);
const own = crypto.randomFillSync;
crypto.randomFillSync = randomFillPooled;
let loaded: typeof Ssh2;
try {
  loaded = require('ssh2') as typeof Ssh2;
} finally {
  crypto.randomFillSync = own;
}

export default loaded;
