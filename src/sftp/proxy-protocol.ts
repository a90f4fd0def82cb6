import { isIPv4, isIPv6, type Socket } from 'node:net';

/**
 * The PROXY protocol (HAProxy's, versions 1 and 2: haproxy.org's
 * doc/proxy-protocol.txt), by which a TCP load balancer tells the server it
 * connects to who the real client is. capstan reads it only on connections
 * from the addresses in `[sftpd] proxy_protocol`, and from those it requires
 * it: anyone who can reach the port directly could otherwise claim any
 * address and dodge bans or frame another client.
 *
 * - v1: one text line, `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or
 *   `PROXY UNKNOWN …\r\n`, at most 107 bytes.
 * - v2: the 12-byte signature, version/command, family/transport, a 16-bit
 *   length, then the addresses and optional TLVs (skipped). A LOCAL command
 *   (the balancer's own health check) and an UNSPEC or UNIX family keep the
 *   connection's own address, as the specification says.
 *
 * Bounded: at most MAX_HEADER_BYTES are read before the header must be
 * complete, and the caller bounds the wait.
 */

/** v2 header with TLVs we would skip; HAProxy's send-proxy-v2 sends 28 (IPv4) or 52 (IPv6) bytes. */
export const MAX_HEADER_BYTES = 16 + 2048;
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

/** The client the balancer names, or `local` (use the connection's own address). */
export type ProxiedPeer = { kind: 'client'; address: string; port: number } | { kind: 'local' };

export type ProxyParse =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  | { status: 'ok'; peer: ProxiedPeer; headerLength: number };

const invalid = (reason: string): ProxyParse => ({ status: 'invalid', reason });

/** Parses the header at the start of `buf` (the first bytes the balancer sent). */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  // Decide the version from as many bytes as there are: a prefix of both signatures is still undecided.
  const v2Prefix = buf.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE.subarray(0, Math.min(buf.length, V2_SIGNATURE.length)));
  if (v2Prefix) return buf.length < 16 ? { status: 'incomplete' } : parseV2(buf);
  const v1Prefix = buf.subarray(0, V1_PREFIX.length).equals(V1_PREFIX.subarray(0, Math.min(buf.length, V1_PREFIX.length)));
  if (v1Prefix) return parseV1(buf);
  return invalid('no PROXY protocol header');
}

function parseV1(buf: Buffer): ProxyParse {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) return buf.length >= V1_MAX ? invalid('v1 header too long') : { status: 'incomplete' };
  if (end + 2 > V1_MAX) return invalid('v1 header too long');
  const fields = buf.subarray(0, end).toString('latin1').split(' ');
  const headerLength = end + 2;
  if (fields[1] === 'UNKNOWN') return { status: 'ok', peer: { kind: 'local' }, headerLength };
  if (fields.length !== 6) return invalid('v1 header malformed');
  const [, proto, src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const isFamily = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined;
  if (isFamily === undefined || !isFamily(src) || !isFamily(dst)) return invalid('v1 header: bad protocol or address');
  const port = parsePort(sport);
  if (port === undefined || parsePort(dport) === undefined) return invalid('v1 header: bad port');
  return { status: 'ok', peer: { kind: 'client', address: src, port }, headerLength };
}

function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function parseV2(buf: Buffer): ProxyParse {
  const verCmd = buf.readUInt8(12);
  const famProto = buf.readUInt8(13);
  const length = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) return invalid('v2 header: unknown version');
  const command = verCmd & 0x0f;
  if (command > 1) return invalid('v2 header: unknown command');
  if (16 + length > MAX_HEADER_BYTES) return invalid('v2 header too long');
  if (buf.length < 16 + length) return { status: 'incomplete' };
  const headerLength = 16 + length;
  if (command === 0) return { status: 'ok', peer: { kind: 'local' }, headerLength };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  const body = buf.subarray(16, headerLength);
  if (transport !== 1 || (family !== 1 && family !== 2)) {
    // UNSPEC, UNIX or a datagram: nothing we can score by; the spec says to use the real connection's address.
    if (family > 3 || transport > 2) return invalid('v2 header: unknown family or transport');
    return { status: 'ok', peer: { kind: 'local' }, headerLength };
  }
  if (family === 1) {
    if (body.length < 12) return invalid('v2 header: short IPv4 addresses');
    return {
      status: 'ok',
      peer: { kind: 'client', address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) },
      headerLength,
    };
  }
  if (body.length < 36) return invalid('v2 header: short IPv6 addresses');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
  return { status: 'ok', peer: { kind: 'client', address: groups.join(':'), port: body.readUInt16BE(32) }, headerLength };
}

/**
 * Reads the PROXY header from a fresh connection, leaving every byte after
 * it unread (unshifted) and the socket paused: resume it once its next
 * reader is attached. Resolves with the peer, or with the reason the
 * connection should be closed (invalid header, too slow, closed).
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedPeer | { kind: 'refused'; reason: string }> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const finish = (result: ProxiedPeer | { kind: 'refused'; reason: string }): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const parsed = parseProxyHeader(buffered.subarray(0, MAX_HEADER_BYTES));
      if (parsed.status === 'incomplete') {
        if (buffered.length >= MAX_HEADER_BYTES) finish({ kind: 'refused', reason: 'PROXY header too long' });
        return;
      }
      if (parsed.status === 'invalid') {
        finish({ kind: 'refused', reason: parsed.reason });
        return;
      }
      finish(parsed.peer);
      const rest = buffered.subarray(parsed.headerLength);
      if (rest.length > 0) socket.unshift(rest);
    };
    const onClose = (): void => finish({ kind: 'refused', reason: 'closed before the PROXY header' });
    const timer = setTimeout(() => finish({ kind: 'refused', reason: 'no PROXY header in time' }), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
