/** What the SIP layers need from a transport (RFC 3261 §18). */
import { isIPv4 } from 'node:net';

export type TransportProtocol = 'udp' | 'tcp';

export interface TransportAddress {
  transport: TransportProtocol;
  address: string;
  port: number;
}

export interface ReceiveInfo {
  /** The transport closes the connection once the callback returns (framing lost, or too large). */
  closeAfter?: boolean;
  /** The message exceeded the size cap; `buf` holds its header section only. */
  oversize?: boolean;
  /** Which part was too large: the header section (→ 400) or the body (→ 413). */
  oversizePart?: 'header' | 'body';
}

export type MessageCallback = (buf: Buffer, source: TransportAddress, info?: ReceiveInfo) => void;

export interface SipTransport {
  readonly local: TransportAddress;
  /** Sends one message; rejects on a transport error (RFC 3261 §18.4). */
  send(buf: Buffer, dest: TransportAddress): Promise<void>;
  onMessage(cb: MessageCallback): void;
  close(): Promise<void>;
}

/** "::ffff:192.0.2.1" → "192.0.2.1", so dual-stack sockets report the address peers wrote. */
export function normalizeAddress(address: string): string {
  if (address.toLowerCase().startsWith('::ffff:')) {
    const v4 = address.slice(7);
    if (isIPv4(v4)) return v4;
  }
  return address;
}

/** A CRLF keepalive (RFC 5626 §3.5.1) or an empty datagram carries no SIP message. */
export function isKeepalive(buf: Buffer): boolean {
  for (const byte of buf) if (byte !== 0x0d && byte !== 0x0a) return false;
  return true;
}

export function addressKey(addr: { address: string; port: number }): string {
  return `${addr.address}|${addr.port}`;
}
