/** SIP over UDP (RFC 3261 §18): one socket, one datagram per message. */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../../../log.js';
import {
  isKeepalive,
  normalizeAddress,
  type MessageCallback,
  type SipTransport,
  type TransportAddress,
} from './transport.js';

export class SipUdpTransport implements SipTransport {
  private callback: MessageCallback = () => {};
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly family: 'udp4' | 'udp6',
    readonly local: TransportAddress,
    private readonly logger: Logger,
  ) {
    socket.on('message', (buf, rinfo) => {
      // "CRLF" keepalives (RFC 5626 §3.5.1) and empty datagrams carry nothing to parse.
      if (isKeepalive(buf)) return;
      const source: TransportAddress = { transport: 'udp', address: normalizeAddress(rinfo.address), port: rinfo.port };
      try {
        this.callback(buf, source);
      } catch (err) {
        // The stack never throws here by design; if it does, keep the socket alive.
        this.logger.error({ err }, 'SIP UDP message handler failed');
      }
    });
    socket.on('error', (err) => this.logger.warn({ err }, 'SIP UDP socket error'));
  }

  /** Binds `address:port` (IPv4 or IPv6; port 0 picks a free one). */
  static bind(address: string, port: number, logger: Logger): Promise<SipUdpTransport> {
    const family = isIPv6(address) ? 'udp6' : 'udp4';
    const socket = createSocket({ type: family, reuseAddr: false });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(port, address, () => {
        socket.off('error', onError);
        const bound = socket.address();
        resolve(new SipUdpTransport(socket, family, { transport: 'udp', address: bound.address, port: bound.port }, logger));
      });
    });
  }

  onMessage(cb: MessageCallback): void {
    this.callback = cb;
  }

  send(buf: Buffer, dest: TransportAddress): Promise<void> {
    if (this.closed) return Promise.reject(new Error('SIP UDP transport closed'));
    // An IPv6 socket reaches IPv4 peers through mapped addresses.
    const address = this.family === 'udp6' && isIPv4(dest.address) ? `::ffff:${dest.address}` : dest.address;
    return new Promise((resolve, reject) => {
      try {
        this.socket.send(buf, dest.port, address, (err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
