/**
 * RTP inter-packet gaps as the wire sees them: dumpcap (Wireshark's capture engine) records the
 * server's RTP towards the load UA on the loopback interface with kernel timestamps, and the
 * gaps are computed from the capture per server RTP port (one per call). Unlike timestamps
 * taken in the load UA's JavaScript, these do not include the load generator's own event-loop
 * delay — they measure the server's pacing. Optional: skipped (null) when dumpcap is missing or
 * not allowed to capture.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Histogram } from './histogram.js';
import { onCpus } from './taskset.js';

export class WireCapture {
  private constructor(private readonly child: ChildProcess, private readonly dir: string, private readonly file: string) {}

  /**
   * Starts capturing UDP to `dstPort` on lo (headers only), or returns null when it cannot.
   * `cpu`: keep dumpcap on that CPU (the load generator's), off the server's.
   */
  static async start(dstPort: number, cpu: number | null = null): Promise<WireCapture | null> {
    const dir = await mkdtemp(join(tmpdir(), 'vmaccess-pcap-'));
    const file = join(dir, 'rtp.pcap');
    const argv = ['dumpcap', '-q', '-i', 'lo', '-P', '-s', '64', '-B', '64', '-f', `udp dst port ${dstPort}`, '-w', file];
    const pinned = onCpus(argv, cpu);
    const child = spawn(pinned[0]!, pinned.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    // dumpcap -q prints nothing once it captures: give it a moment to open the interface, and
    // take "still running" as "capturing" (it exits at once when it may not capture).
    const ok = await new Promise<boolean>((resolve) => {
      child.once('error', () => resolve(false));
      setTimeout(() => resolve(child.exitCode === null && child.signalCode === null), 800);
    });
    if (!ok) {
      await rm(dir, { recursive: true, force: true });
      return null;
    }
    return new WireCapture(child, dir, file);
  }

  /** Stops the capture and returns the gap histogram (ms) over every call's packets. */
  async stop(): Promise<{ gaps: Histogram; packets: number } | null> {
    this.child.kill('SIGINT');
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null) { resolve(); return; }
      this.child.once('exit', () => resolve());
      setTimeout(() => { this.child.kill('SIGKILL'); resolve(); }, 10_000);
    });
    try {
      return parse(await readFile(this.file));
    } catch {
      return null;
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

/** libpcap file (not pcapng: dumpcap -P), link type Ethernet (lo), IPv4/UDP. */
function parse(pcap: Buffer): { gaps: Histogram; packets: number } {
  const magic = pcap.readUInt32LE(0);
  const nanos = magic === 0xa1b23c4d;
  if (magic !== 0xa1b2c3d4 && !nanos) throw new Error('not a little-endian libpcap file');
  const linkType = pcap.readUInt32LE(20);
  const gaps = new Histogram(2_000);
  const last = new Map<number, number>();
  let offset = 24;
  let packets = 0;
  while (offset + 16 <= pcap.length) {
    const sec = pcap.readUInt32LE(offset);
    const frac = pcap.readUInt32LE(offset + 4);
    const captured = pcap.readUInt32LE(offset + 8);
    const data = offset + 16;
    offset = data + captured;
    const l2 = linkType === 1 ? 14 : linkType === 113 ? 16 : 0; // Ethernet, Linux cooked
    if (captured < l2 + 28 || pcap[data + l2]! >> 4 !== 4) continue;
    const ihl = (pcap[data + l2]! & 0x0f) * 4;
    const srcPort = pcap.readUInt16BE(data + l2 + ihl);
    const ms = sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3);
    const previous = last.get(srcPort);
    if (previous !== undefined) gaps.add(ms - previous);
    last.set(srcPort, ms);
    packets += 1;
  }
  return { gaps, packets };
}
