import { clientKey } from '../defender/address.js';

/**
 * Resource limits of the SFTP frontend ([limits] in capstan.cfg), and the
 * counters that enforce the connection limits.
 *
 * - maxConnections: sockets open at once, logged in or not (a socket past
 *   it is closed at accept, before the SSH handshake);
 * - maxConnectionsPerAddress: the same, per client (an IPv4 address or an
 *   IPv6 /64, as the defender keys them), so one host cannot take them all;
 * - maxSessionsPerAccount: logged-in connections of one account at once
 *   (the login past it is refused and the connection closed);
 * - loginGraceMs: time to log in after connecting (sshd's LoginGraceTime);
 * - maxHandles: handles one SFTP session may hold (announced by
 *   limits@openssh.com); one more is FAILURE "too many open handles";
 * - maxPendingRequests / maxPendingBytes: requests (and their WRITE bytes)
 *   queued in one session; past either, the connection's socket is not read
 *   until half have been answered, so a client flooding requests slows down
 *   to the gateway's pace instead of growing its memory;
 * - maxOutputBacklog: reply bytes waiting for the client to read them; past
 *   it no further request of that session starts (a client that sends
 *   without reading its replies stalls itself, and the request bound above
 *   then stops reading it). Together: per session at most maxPendingBytes +
 *   maxPendingRequests small requests + maxOutputBacklog + one reply;
 * - memoryBudget: one bound for the whole gateway, whatever the number of
 *   sessions, on queued WRITE bytes and on the chunks uploads seal and store
 *   beyond their first and downloads fetch ahead (src/util/memory-budget.ts
 *   says what it holds, what it does not, and why it cannot deadlock); under
 *   pressure no session reads its channel until it has drained to half;
 * - stallTimeoutMs: a connection not being read for that reason, with no
 *   request finishing for this long, is dropped (a client that never reads
 *   its replies, or vanished: a socket we do not read never reports its
 *   peer's close).
 */
export interface Limits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxSessionsPerAccount: number;
  loginGraceMs: number;
  maxHandles: number;
  maxPendingRequests: number;
  maxPendingBytes: number;
  maxOutputBacklog: number;
  memoryBudget: number;
  stallTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxConnections: 1000,
  maxConnectionsPerAddress: 50,
  maxSessionsPerAccount: 50,
  loginGraceMs: 120_000,
  maxHandles: 256,
  maxPendingRequests: 4096,
  maxPendingBytes: 8 * 1024 * 1024,
  maxOutputBacklog: 8 * 1024 * 1024,
  memoryBudget: 16 * 1024 * 1024,
  stallTimeoutMs: 120_000,
};

/** A slot taken; release it exactly once (further calls do nothing). */
export type Release = () => void;

/**
 * Counts connections (total and per client) and logged-in connections per
 * account. Memory: one map entry per client or account with something open.
 */
export class ConnectionCounter {
  #total = 0;
  readonly #perAddress = new Map<string, number>();
  readonly #perAccount = new Map<string, number>();

  constructor(private readonly limits: Pick<Limits, 'maxConnections' | 'maxConnectionsPerAddress' | 'maxSessionsPerAccount'>) {}

  get total(): number {
    return this.#total;
  }

  /** Takes a connection slot for `address`, or says which limit refuses it. */
  openConnection(
    address: string,
  ): { ok: true; release: Release } | { ok: false; reason: 'max_connections' | 'max_connections_per_address' } {
    if (this.#total >= this.limits.maxConnections) return { ok: false, reason: 'max_connections' };
    const key = clientKey(address);
    if ((this.#perAddress.get(key) ?? 0) >= this.limits.maxConnectionsPerAddress)
      return { ok: false, reason: 'max_connections_per_address' };
    this.#total++;
    bump(this.#perAddress, key, 1);
    return {
      ok: true,
      release: once(() => {
        this.#total--;
        bump(this.#perAddress, key, -1);
      }),
    };
  }

  /** Takes a session slot for `user`, or undefined if the account is at its limit. */
  login(user: string): Release | undefined {
    if ((this.#perAccount.get(user) ?? 0) >= this.limits.maxSessionsPerAccount) return undefined;
    bump(this.#perAccount, user, 1);
    return once(() => bump(this.#perAccount, user, -1));
  }

  sessionsOf(user: string): number {
    return this.#perAccount.get(user) ?? 0;
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

function once(fn: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
