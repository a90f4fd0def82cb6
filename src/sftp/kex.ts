import type { Socket } from 'node:net';
import type { KexAlgorithm } from 'ssh2';
import { MalformedPacketError, WireReader } from './protocol/wire.js';

/**
 * Key exchange: what the gateway offers, and what a client offered when a
 * handshake fails.
 *
 * ssh2's server lists diffie-hellman-group-exchange-sha256 among its default
 * key exchanges but cannot perform it ("Group exchange not implemented for
 * server"). Negotiation takes the client's first method the server lists, so
 * a client that prefers group exchange (phpseclib 1.0, or any client
 * configured so) was cut off during the handshake even when it also offered
 * curve25519. The gateway lists only what it can do.
 */
export const GROUP14_SHA1 = 'diffie-hellman-group14-sha1';

/** ssh2's `algorithms.kex`: its defaults without group exchange, and group14-sha1 when allowed. */
export function kexAlgorithms(allowSha1: boolean): Record<'remove' | 'append' | 'prepend', KexAlgorithm[]> {
  return {
    remove: ['diffie-hellman-group-exchange-sha256', 'diffie-hellman-group-exchange-sha1'],
    append: allowSha1 ? [GROUP14_SHA1] : [],
    prepend: [],
  };
}

/** The name-lists of a client's first KEXINIT (RFC 4253, 7.1), client-to-server lists only. */
export interface ClientOffer {
  kex: string[];
  hostKey: string[];
  cipher: string[];
  mac: string[];
  compression: string[];
}

/** Where the identification line and the first packet must fit; past it the offer is not looked for. */
const MAX_PREFIX = 16 * 1024;
const SSH_MSG_KEXINIT = 20;

/**
 * The offer in the cleartext start of a client's byte stream (its
 * identification line, then its KEXINIT packet): undefined while incomplete,
 * null if those bytes are not that.
 */
export function parseClientOffer(bytes: Buffer): ClientOffer | undefined | null {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) return bytes.length < MAX_PREFIX ? undefined : null;
  const at = newline + 1;
  if (bytes.length < at + 5) return undefined;
  const packetLength = bytes.readUInt32BE(at);
  const padding = bytes[at + 4] ?? 0;
  if (packetLength < 1 + padding + 17 || at + 4 + packetLength > MAX_PREFIX) return null;
  if (bytes.length < at + 4 + packetLength) return undefined;
  const end = at + 4 + packetLength - padding;
  const payload = at + 5;
  if (bytes[payload] !== SSH_MSG_KEXINIT) return null;
  // After the message number and the cookie, ten name-lists, each read within the packet's payload.
  const reader = new WireReader(bytes.subarray(0, end), payload + 17);
  const lists: string[][] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const text = reader.bytes().toString('latin1');
      lists.push(text === '' ? [] : text.split(','));
    }
  } catch (err) {
    if (err instanceof MalformedPacketError) return null;
    throw err;
  }
  const [kex = [], hostKey = [], cipher = [], , mac = [], , compression = []] = lists;
  return { kex, hostKey, cipher, mac, compression };
}

/**
 * Reads a client's offer off its socket, beside ssh2 (a second 'data'
 * listener sees the same bytes), and stops at the offer or at MAX_PREFIX
 * bytes: at most 16 KiB per connection, only before its first key exchange.
 * Linear in the bytes read however they are split: a client sending one byte
 * per segment costs one copy of each and one parse, not one per segment.
 */
export class OfferReader {
  #socket: Socket;
  #bytes: Buffer | undefined = Buffer.allocUnsafe(MAX_PREFIX);
  #length = 0;
  /** Bytes before this hold no newline; once one is found, the length the packet ends at (0: not known yet). */
  #scanned = 0;
  #needed = 0;
  #offer: ClientOffer | undefined;
  readonly #onData = (chunk: Buffer): void => {
    const bytes = this.#bytes;
    if (bytes === undefined) return;
    this.#length += chunk.copy(bytes, this.#length);
    if (this.#needed === 0) {
      const newline = bytes.subarray(0, this.#length).indexOf(0x0a, this.#scanned);
      this.#scanned = newline < 0 ? this.#length : newline;
      // The packet's length field ends 4 bytes after the newline: until then, nothing to parse.
      if (newline >= 0 && this.#length >= newline + 5) this.#needed = newline + 5 + bytes.readUInt32BE(newline + 1);
    }
    if (this.#length < MAX_PREFIX && (this.#needed === 0 || this.#length < this.#needed)) return;
    this.#offer = parseClientOffer(bytes.subarray(0, this.#length)) ?? undefined;
    this.stop();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
  }

  /** The client's offer, if its first packet has come and was a KEXINIT. */
  get offer(): ClientOffer | undefined {
    return this.#offer;
  }

  stop(): void {
    this.#socket.removeListener('data', this.#onData);
    this.#bytes = undefined;
  }
}

const MAX_OFFERED = 1024;
/** Which list each of ssh2's handshake failures is about ("no matching C->S cipher", …). */
const FAILED_ON: [RegExp, keyof ClientOffer][] = [
  [/key exchange/, 'kex'],
  [/host key/, 'hostKey'],
  [/cipher/, 'cipher'],
  [/MAC/, 'mac'],
  [/compression/, 'compression'],
];

/** What a failed handshake's log line says beyond ssh2's reason: the list it failed on, and a way out. */
export function describeFailure(reason: string, offer: ClientOffer | undefined, allowSha1: boolean): { offered?: string; hint?: string } {
  if (offer === undefined) return {};
  const kind = FAILED_ON.find(([pattern]) => pattern.test(reason))?.[1];
  const list = kind === undefined ? undefined : offer[kind];
  if (list === undefined) return {};
  // The client wrote it: as much as a log line should carry (OpenSSH's offers run to a few hundred bytes).
  const joined = list.join(',');
  const offered = joined.length > MAX_OFFERED ? `${joined.slice(0, MAX_OFFERED)}…` : joined;
  if (kind === 'kex' && !allowSha1 && list.includes(GROUP14_SHA1)) {
    return { offered, hint: `[sftpd] kex_sha1 = true would allow ${GROUP14_SHA1}` };
  }
  return { offered };
}
