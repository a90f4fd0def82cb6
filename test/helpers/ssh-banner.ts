import { connect } from 'node:net';

/**
 * Whether a server sends its SSH banner to a new TCP connection, or closes it
 * first (a banned or deny-listed client). `localAddress` picks the client's
 * source address: any of 127.0.0.0/8 works on Linux loopback, so a test can
 * be several clients.
 */
export function bannerSent(port: number, host = '127.0.0.1', localAddress?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ...(localAddress !== undefined ? { localAddress } : {}) });
    socket.on('error', () => {});
    socket.setTimeout(10_000, () => socket.destroy());
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString('latin1').startsWith('SSH-2.0-'));
    });
    socket.once('close', () => resolve(false));
  });
}
