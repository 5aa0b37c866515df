/**
 * Test helpers for the RTP unit tests: a tiny pcap reader (libpcap format, Ethernet/IPv4/UDP),
 * a fake media time source, WAV and tone builders, UDP sockets on 127.0.0.1.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import wavefile from 'wavefile';
import type { MediaTimeSource } from '../../../src/telephony/embedded/rtp/index.js';

export interface PcapUdpPacket {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

/**
 * Reads the UDP payloads of a classic libpcap file (not pcapng). Only Ethernet (linktype 1)
 * carrying IPv4/UDP is understood; anything else is skipped.
 */
export function readPcapUdp(path: string): PcapUdpPacket[] {
  const file = readFileSync(path);
  const magic = file.readUInt32LE(0);
  let littleEndian: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) littleEndian = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) littleEndian = false;
  else throw new Error(`${path}: not a libpcap file`);
  const u32 = (offset: number): number => (littleEndian ? file.readUInt32LE(offset) : file.readUInt32BE(offset));
  const linkType = u32(20);
  if (linkType !== 1) throw new Error(`${path}: link type ${linkType}, expected Ethernet`);

  const packets: PcapUdpPacket[] = [];
  let offset = 24;
  while (offset + 16 <= file.length) {
    const capturedLength = u32(offset + 8);
    const frame = file.subarray(offset + 16, offset + 16 + capturedLength);
    offset += 16 + capturedLength;
    if (frame.length < 14 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    if (ip.length < 20 || ip[0]! >> 4 !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0]! & 0x0f) * 4);
    const udpLength = udp.readUInt16BE(4);
    packets.push({
      srcPort: udp.readUInt16BE(0),
      dstPort: udp.readUInt16BE(2),
      payload: Buffer.from(udp.subarray(8, udpLength)),
    });
  }
  return packets;
}

/** A manual clock: timers fire only when the test says so, at the time the test chooses. */
export class FakeMediaTime implements MediaTimeSource {
  private current = 1000;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void; delay: number }>();
  readonly requestedDelays: number[] = [];

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + delayMs, callback, delay: delayMs });
    this.requestedDelays.push(delayMs);
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** When the earliest pending timer is due, or null. */
  nextDue(): number | null {
    let earliest: number | null = null;
    for (const timer of this.timers.values()) if (earliest === null || timer.at < earliest) earliest = timer.at;
    return earliest;
  }

  /** Fires the earliest timer, `lateByMs` after its due time (a late wakeup). */
  fire(lateByMs = 0): void {
    let found: [number, { at: number; callback: () => void }] | null = null;
    for (const entry of this.timers) if (found === null || entry[1].at < found[1].at) found = entry;
    if (found === null) throw new Error('no timer pending');
    this.timers.delete(found[0]);
    this.current = Math.max(this.current, found[1].at + lateByMs);
    found[1].callback();
  }

  /** Moves time without firing anything. */
  advance(ms: number): void {
    this.current += ms;
  }
}

/** `count` samples of a sine tone at 8 kHz. */
export function tone(frequencyHz: number, count: number, amplitude = 8000): Int16Array {
  const samples = new Int16Array(count);
  for (let i = 0; i < count; i++) samples[i] = Math.round(amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / 8000));
  return samples;
}

/** A WAV file's bytes built with wavefile. */
export function wavBytes(options: { channels?: number; sampleRate?: number; bitDepth?: string; samples: ArrayLike<number> | ArrayLike<number>[] }): Buffer {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(options.channels ?? 1, options.sampleRate ?? 8000, options.bitDepth ?? '16', options.samples as never);
  return Buffer.from(wav.toBuffer());
}

export interface ReceivedDatagram {
  data: Buffer;
  rinfo: RemoteInfo;
}

/** A UDP socket on 127.0.0.1 (random port) that records what it receives. */
export class TestUdpPeer {
  readonly received: ReceivedDatagram[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('message', (data, rinfo) => {
      this.received.push({ data, rinfo });
      this.waiters = this.waiters.filter((waiter) => {
        if (this.received.length >= waiter.count) {
          waiter.resolve();
          return false;
        }
        return true;
      });
    });
  }

  static async open(): Promise<TestUdpPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new TestUdpPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get remote(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  /** Resolves once `count` datagrams in total have arrived. */
  waitFor(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  send(data: Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Lets pending I/O callbacks run (a UDP datagram sent on loopback arrives within a few turns). */
export function settleIo(turns = 5): Promise<void> {
  return new Promise((resolve) => {
    let left = turns;
    const step = (): void => {
      if (--left <= 0) resolve();
      else setImmediate(step);
    };
    setImmediate(step);
  });
}
