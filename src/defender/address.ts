import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { InvalidInputError } from '../errors.js';

/**
 * Client addresses as the defender keys and matches them.
 *
 * - An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, what a dual-stack
 *   `[::]` listener reports for IPv4 clients) is the IPv4 address: one
 *   client must not get two scores, nor slip past an IPv4 deny rule.
 * - An IPv6 client is scored by its /`ipv6Prefix` network (64 by default):
 *   one host usually gets a whole /64 and could otherwise rotate through
 *   2^64 addresses, each with a fresh score.
 */

/** The address in canonical form (mapped IPv4 unwrapped, IPv6 expanded and lower-case); undefined if not an IP. */
export function normalizeAddress(raw: string): { family: 'ipv4' | 'ipv6'; address: string } | undefined {
  let addr = raw.trim();
  const zone = addr.indexOf('%');
  if (zone !== -1) addr = addr.slice(0, zone);
  if (isIPv4(addr)) return { family: 'ipv4', address: addr };
  if (!isIPv6(addr)) return undefined;
  const groups = expandIPv6(addr);
  if (groups.slice(0, 5).every((g) => g === '0000') && groups[5] === 'ffff') {
    const hi = parseInt(groups[6]!, 16);
    const lo = parseInt(groups[7]!, 16);
    return { family: 'ipv4', address: [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.') };
  }
  return { family: 'ipv6', address: groups.join(':') };
}

/** Eight 4-digit groups. */
function expandIPv6(addr: string): string[] {
  let text = addr.toLowerCase();
  // A trailing dotted quad (::1.2.3.4) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad !== null) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, quad.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => g.padStart(4, '0'));
}

/**
 * The key a client is scored and banned under: the IPv4 address, or the
 * IPv6 address cut to `ipv6Prefix` bits (`2001:0db8:…:0000/64`). Anything
 * that is not an IP address (a Unix socket) is its own key.
 */
export function clientKey(raw: string, ipv6Prefix = 64): string {
  const norm = normalizeAddress(raw);
  if (norm === undefined) return raw;
  if (norm.family === 'ipv4' || ipv6Prefix >= 128) return norm.address;
  const groups = norm.address.split(':').map((g) => parseInt(g, 16));
  let bits = ipv6Prefix;
  const cut = groups.map((g) => {
    const keep = Math.max(0, Math.min(16, bits));
    bits -= 16;
    return keep === 0 ? 0 : keep === 16 ? g : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${cut.map((g) => g.toString(16).padStart(4, '0')).join(':')}/${ipv6Prefix}`;
}

/**
 * A list of addresses and networks (`203.0.113.7`, `198.51.100.0/24`,
 * `2001:db8::/32`), matched against client addresses, mapped IPv4 included.
 */
export class AddressList {
  readonly #list = new BlockList();
  readonly size: number;

  /** Throws InvalidInputError naming the first entry that is not an address or CIDR. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [addr, bits, extra] = entry.trim().split('/');
      const norm = addr === undefined ? undefined : normalizeAddress(addr);
      if (norm === undefined || extra !== undefined) throw new InvalidInputError(`not an IP address or CIDR: ${JSON.stringify(entry)}`);
      if (bits === undefined) {
        this.#list.addAddress(norm.address, norm.family);
        continue;
      }
      // A mapped network (::ffff:10.0.0.0/104) is the IPv4 network of 96 bits fewer.
      const mappedBits = norm.family === 'ipv4' && addr!.includes(':') ? 96 : 0;
      const prefix = Number(bits) - mappedBits;
      const max = norm.family === 'ipv4' ? 32 : 128;
      if (!/^\d{1,3}$/.test(bits) || prefix < 0 || prefix > max)
        throw new InvalidInputError(`bad prefix length in ${JSON.stringify(entry)}`);
      this.#list.addSubnet(norm.address, prefix, norm.family);
    }
    this.size = entries.length;
  }

  has(raw: string): boolean {
    if (this.size === 0) return false;
    const norm = normalizeAddress(raw);
    return norm !== undefined && this.#list.check(norm.address, norm.family);
  }
}
