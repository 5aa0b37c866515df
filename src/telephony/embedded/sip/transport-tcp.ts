/**
 * SIP over TCP (RFC 3261 §18): messages framed by Content-Length, responses sent back on the
 * connection the request came on (§18.2.2), a size cap, and idle connections closed.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../../log.js';
import { TcpFramer } from './tcp-framer.js';
import {
  addressKey,
  normalizeAddress,
  type MessageCallback,
  type ReceiveInfo,
  type SipTransport,
  type TransportAddress,
} from './transport.js';

export interface TcpTransportOptions {
  address: string;
  port: number;
  logger: Logger;
  /** Largest message accepted (default 64 KiB); a larger one ends the connection. */
  maxMessageBytes?: number;
  /** A connection without traffic for this long is closed (default 5 minutes). */
  idleTimeoutMs?: number;
  maxConnections?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 65_536;
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 300_000;

export class SipTcpTransport implements SipTransport {
  private callback: MessageCallback = () => {};
  private readonly connections = new Map<string, Socket>();
  private readonly connecting = new Map<string, Promise<Socket>>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly local: TransportAddress,
    private readonly options: TcpTransportOptions,
  ) {
    server.on('connection', (socket) => this.adopt(socket));
    server.on('error', (err) => options.logger.warn({ err }, 'SIP TCP server error'));
  }

  static listen(options: TcpTransportOptions): Promise<SipTcpTransport> {
    const server = createServer({ noDelay: true });
    server.maxConnections = options.maxConnections ?? 1024;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.address, port: options.port, exclusive: true }, () => {
        server.off('error', reject);
        const bound = server.address();
        if (bound === null || typeof bound === 'string') {
          server.close();
          reject(new Error('SIP TCP server has no address'));
          return;
        }
        resolve(new SipTcpTransport(server, { transport: 'tcp', address: bound.address, port: bound.port }, options));
      });
    });
  }

  /** Number of open connections (for tests and stats). */
  get connectionCount(): number {
    return this.connections.size;
  }

  onMessage(cb: MessageCallback): void {
    this.callback = cb;
  }

  private adopt(socket: Socket): TransportAddress | undefined {
    if (socket.remoteAddress === undefined || socket.remotePort === undefined) {
      socket.destroy();
      return undefined;
    }
    const source: TransportAddress = {
      transport: 'tcp',
      address: normalizeAddress(socket.remoteAddress),
      port: socket.remotePort,
    };
    const key = addressKey(source);
    this.connections.set(key, socket);
    const framer = new TcpFramer(this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    socket.setTimeout(this.options.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      for (const frame of framer.push(chunk)) {
        switch (frame.kind) {
          case 'message':
            this.deliver(frame.data, source);
            break;
          case 'ping':
            // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong.
            socket.write('\r\n');
            break;
          case 'oversize':
            this.options.logger.debug({ source }, 'SIP TCP message too large: closing connection');
            if (frame.head) this.deliver(frame.head, source, { oversize: true, oversizePart: frame.part ?? 'body', closeAfter: true });
            socket.end();
            break;
          case 'unframeable':
            this.options.logger.debug({ source }, 'SIP TCP stream cannot be framed: closing connection');
            this.deliver(frame.data, source, { closeAfter: true });
            socket.end();
            break;
        }
      }
    });
    socket.on('error', (err) => this.options.logger.debug({ err, source }, 'SIP TCP connection error'));
    socket.on('close', () => {
      if (this.connections.get(key) === socket) this.connections.delete(key);
    });
    return source;
  }

  private deliver(buf: Buffer, source: TransportAddress, info?: ReceiveInfo): void {
    try {
      this.callback(buf, source, info);
    } catch (err) {
      this.options.logger.error({ err }, 'SIP TCP message handler failed');
    }
  }

  /** Writes on the connection to `dest`, opening one if there is none (§18.2.2, §18.1.1). */
  async send(buf: Buffer, dest: TransportAddress): Promise<void> {
    if (this.closed) throw new Error('SIP TCP transport closed');
    const socket = this.connections.get(addressKey(dest)) ?? (await this.connect(dest));
    await new Promise<void>((resolve, reject) => {
      socket.write(buf, (err) => (err ? reject(err) : resolve()));
    });
  }

  private connect(dest: TransportAddress): Promise<Socket> {
    const key = addressKey(dest);
    const existing = this.connecting.get(key);
    if (existing) return existing;
    const attempt = new Promise<Socket>((resolve, reject) => {
      const socket = createConnection({ host: dest.address, port: dest.port, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        this.adopt(socket);
        resolve(socket);
      });
    }).finally(() => this.connecting.delete(key));
    this.connecting.set(key, attempt);
    return attempt;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const socket of this.connections.values()) socket.destroy();
    this.connections.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
