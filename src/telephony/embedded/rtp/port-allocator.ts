/**
 * RTP/RTCP port pairs for calls: RTP on an even port, RTCP on the next (odd) port
 * (RFC 3550 §11: "RTP SHOULD use an even destination port number and the corresponding RTCP
 * stream SHOULD use the next higher (odd) destination port number"). Both are bound so the
 * RTCP port is really ours; its socket just drains whatever RTCP the peer sends.
 *
 * Pairs are handed out round-robin over the range, so a port released by one call is not
 * reused at once: late packets of the old call would otherwise land in the next call.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from '../../../log.js';

export interface RtpSocketPair {
  readonly address: string;
  readonly rtpPort: number;
  readonly rtcpPort: number;
  readonly rtp: Socket;
  readonly rtcp: Socket;
}

export interface RtpPortAllocatorOptions {
  /** Local address to bind (also the address the SDP answer should carry, unless NATed). */
  address: string;
  /** Lowest port of the range; rounded up to even. */
  min: number;
  /** Highest port of the range; the last pair needs max ≥ its RTCP port. */
  max: number;
  logger?: Logger;
}

export class RtpPortsExhaustedError extends Error {
  readonly code = 'RTP_PORTS_EXHAUSTED';
  constructor(min: number, max: number) {
    super(`no free RTP/RTCP port pair in ${min}-${max}`);
    this.name = 'RtpPortsExhaustedError';
  }
}

export class RtpPortAllocator {
  private readonly address: string;
  private readonly firstPort: number;
  private readonly pairCount: number;
  private readonly logger: Logger | undefined;
  /** RTP ports handed out or being bound right now. */
  private readonly taken = new Set<number>();
  private readonly pairs = new Set<RtpSocketPair>();
  /** Index of the pair to try first next time. */
  private cursor = 0;

  constructor(private readonly options: RtpPortAllocatorOptions) {
    const { min, max } = options;
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
      throw new RangeError(`invalid RTP port range ${min}-${max}`);
    }
    this.address = options.address;
    this.firstPort = min % 2 === 0 ? min : min + 1;
    this.pairCount = Math.max(0, Math.floor((max - this.firstPort + 1) / 2));
    if (this.pairCount === 0) throw new RangeError(`RTP port range ${min}-${max} holds no even/odd port pair`);
    this.logger = options.logger;
  }

  /** Pairs currently handed out. */
  get inUse(): number {
    return this.pairs.size;
  }

  /** Pairs the range holds. */
  get capacity(): number {
    return this.pairCount;
  }

  /**
   * Binds the next free pair. Pairs that fail with EADDRINUSE (another process, or a socket
   * of ours still closing) are skipped; other bind errors (e.g. EADDRNOTAVAIL: the address is
   * not local) reject at once, since no other port would fare better. Rejects with
   * RtpPortsExhaustedError (code 'RTP_PORTS_EXHAUSTED') when no pair is left.
   */
  async allocate(): Promise<RtpSocketPair> {
    for (let attempt = 0; attempt < this.pairCount; attempt++) {
      const rtpPort = this.nextCandidate();
      if (rtpPort === null) break;
      // Reserved synchronously so a concurrent allocate() does not try the same pair.
      this.taken.add(rtpPort);
      try {
        const pair = await this.bindPair(rtpPort);
        this.pairs.add(pair);
        return pair;
      } catch (error) {
        this.taken.delete(rtpPort);
        if (!isAddressInUse(error)) throw error;
        this.logger?.debug({ port: rtpPort }, 'RTP port pair in use, skipped');
      }
    }
    throw new RtpPortsExhaustedError(this.options.min, this.options.max);
  }

  /** Closes both sockets of the pair and frees it. Idempotent. */
  release(pair: RtpSocketPair): void {
    if (!this.pairs.delete(pair)) return;
    this.taken.delete(pair.rtpPort);
    closeQuietly(pair.rtp);
    closeQuietly(pair.rtcp);
  }

  /** Releases every pair (shutdown). */
  releaseAll(): void {
    for (const pair of [...this.pairs]) this.release(pair);
  }

  /** The next RTP port not taken by us, round-robin from the cursor; null if all are taken. */
  private nextCandidate(): number | null {
    for (let i = 0; i < this.pairCount; i++) {
      const index = (this.cursor + i) % this.pairCount;
      const port = this.firstPort + index * 2;
      if (!this.taken.has(port)) {
        this.cursor = (index + 1) % this.pairCount;
        return port;
      }
    }
    return null;
  }

  private async bindPair(rtpPort: number): Promise<RtpSocketPair> {
    const rtp = await this.bindSocket(rtpPort);
    let rtcp: Socket;
    try {
      rtcp = await this.bindSocket(rtpPort + 1);
    } catch (error) {
      closeQuietly(rtp);
      throw error;
    }
    // RTCP reports are not used; reading them keeps the socket's receive buffer drained.
    rtcp.on('message', drain);
    return { address: this.address, rtpPort, rtcpPort: rtpPort + 1, rtp, rtcp };
  }

  private bindSocket(port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: isIPv6(this.address) ? 'udp6' : 'udp4' });
      const onError = (error: Error): void => {
        closeQuietly(socket);
        reject(error);
      };
      socket.once('error', onError);
      socket.bind({ port, address: this.address, exclusive: true }, () => {
        socket.off('error', onError);
        // A socket error after bind must not crash the process (no 'error' listener would
        // make it an uncaught exception); send errors are reported to the send callback.
        socket.on('error', (error) => this.logger?.warn({ err: error, port }, 'RTP socket error'));
        resolve(socket);
      });
    });
  }
}

function drain(): void {}

function isAddressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'EADDRINUSE';
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
