import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { silentLogger } from '../../../src/log.js';
import {
  MediaClock,
  PromptLibrary,
  RtpPortAllocator,
  RtpSession,
  decodeRtpPacket,
  encodeRtpPacket,
  encodeTelephoneEventPayload,
  type AudioCodec,
  type Digit,
  type RtpPacket,
  type RtpSessionOptions,
  type RtpSocketPair,
} from '../../../src/telephony/embedded/rtp/index.js';
import { FakeMediaTime, TestUdpPeer, readPcapUdp, tone } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function bindLoopback(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

async function socketPair(): Promise<RtpSocketPair> {
  const rtp = await bindLoopback();
  const rtcp = await bindLoopback();
  const pair: RtpSocketPair = { address: '127.0.0.1', rtpPort: rtp.address().port, rtcpPort: rtcp.address().port, rtp, rtcp };
  cleanups.push(() => {
    for (const socket of [rtp, rtcp]) {
      try {
        socket.close();
      } catch {
        // closed by the test
      }
    }
  });
  return pair;
}

async function peer(): Promise<TestUdpPeer> {
  const created = await TestUdpPeer.open();
  cleanups.push(() => created.close());
  return created;
}

interface Harness {
  session: RtpSession;
  time: FakeMediaTime;
  clock: MediaClock;
  sockets: RtpSocketPair;
  digits: Digit[];
}

async function harness(options: Partial<Omit<RtpSessionOptions, 'sockets' | 'clock' | 'logger'>> & { codec?: { name: AudioCodec; payloadType: number } } = {}): Promise<Harness> {
  const time = new FakeMediaTime();
  const clock = new MediaClock({ time });
  const sockets = await socketPair();
  const session = new RtpSession({
    sockets,
    remote: options.remote ?? null,
    codec: options.codec ?? { name: 'PCMU', payloadType: 0 },
    telephoneEventPayloadType: options.telephoneEventPayloadType === undefined ? 101 : options.telephoneEventPayloadType,
    clock,
    logger: silentLogger,
  });
  cleanups.push(() => session.close());
  const digits: Digit[] = [];
  session.on('telephoneEvent', (digit) => digits.push(digit));
  return { session, time, clock, sockets, digits };
}

function packetsOf(receiver: TestUdpPeer): RtpPacket[] {
  return receiver.received.map(({ data }) => {
    const packet = decodeRtpPacket(data);
    if (!packet) throw new Error('received a non-RTP datagram');
    return packet;
  });
}

function distinctFrames(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(160, i + 1));
}

/**
 * Fires the fake clock `count` times, letting I/O run in between as 20 ms of real time would:
 * dgram.send hands the buffer to the kernel only on a later turn of the event loop.
 */
async function ticks(time: FakeMediaTime, count: number, lateByMs = 0): Promise<void> {
  for (let i = 0; i < count; i++) {
    time.fire(lateByMs);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

function telephoneEventPacket(spec: { ssrc: number; timestamp: number; marker: boolean; event: number; end: boolean; seq?: number; pt?: number }): Buffer {
  return encodeRtpPacket(
    { marker: spec.marker, payloadType: spec.pt ?? 101, sequenceNumber: spec.seq ?? 1, timestamp: spec.timestamp, ssrc: spec.ssrc },
    encodeTelephoneEventPayload({ event: spec.event, end: spec.end, volume: 10, duration: 800 }),
  );
}

function audioPacket(payloadType = 0): Buffer {
  return encodeRtpPacket({ marker: false, payloadType, sequenceNumber: 1, timestamp: 1, ssrc: 99 }, Buffer.alloc(160, 0xff));
}

describe('RtpSession sending', () => {
  it('sends one packet per tick: right PT, SSRC fixed, seq +1, timestamp +160, silence by default', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    session.start();
    await ticks(time, 20);
    await receiver.waitFor(20);
    const packets = packetsOf(receiver);
    expect(packets).toHaveLength(20);
    const first = packets[0]!;
    packets.forEach((packet, i) => {
      expect(packet.payloadType).toBe(0);
      expect(packet.ssrc).toBe(first.ssrc);
      expect((packet.sequenceNumber - first.sequenceNumber) & 0xffff).toBe(i);
      expect((packet.timestamp - first.timestamp) >>> 0).toBe(i * 160);
      expect(packet.payload.length).toBe(160);
      expect(packet.payload.every((byte) => byte === 0xff)).toBe(true);
      expect(packet.marker).toBe(i === 0);
    });
    expect(session.stats()).toMatchObject({ packetsSent: 20, packetsReceived: 0 });
  });

  it('random SSRC and initial sequence number/timestamp per session (RFC 3550 §5.1)', async () => {
    const receiver = await peer();
    const sessions = await Promise.all([harness({ remote: receiver.remote }), harness({ remote: receiver.remote }), harness({ remote: receiver.remote })]);
    for (const { session, time } of sessions) {
      session.start();
      await ticks(time, 1);
    }
    await receiver.waitFor(3);
    const packets = packetsOf(receiver);
    expect(new Set(packets.map((p) => p.ssrc)).size).toBe(3);
    expect(new Set(packets.map((p) => `${p.sequenceNumber}/${p.timestamp}`)).size).toBe(3);
  });

  it('advances the timestamp by 160 per elapsed slot when the clock skipped slots', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    session.start();
    await ticks(time, 1);
    await ticks(time, 1, 47); // 3 slots elapsed
    await ticks(time, 1);
    await receiver.waitFor(3);
    const [a, b, c] = packetsOf(receiver);
    expect((b!.timestamp - a!.timestamp) >>> 0).toBe(3 * 160);
    expect((c!.timestamp - b!.timestamp) >>> 0).toBe(160);
    expect((b!.sequenceNumber - a!.sequenceNumber) & 0xffff).toBe(1);
  });

  it('never overwrites a send buffer the kernel has not taken yet: drops the packet instead', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    session.start();
    // Six ticks in one turn of the event loop: dgram.send has not handed any buffer to the
    // kernel yet, so only the 4 ring buffers can be in flight.
    for (let i = 0; i < 6; i++) time.fire();
    expect(session.stats()).toMatchObject({ packetsSent: 4, sendFailures: 2 });
    await receiver.waitFor(4);
    await ticks(time, 1);
    await receiver.waitFor(5);
    const packets = packetsOf(receiver);
    // Each packet arrived intact with its own sequence number, in order.
    packets.forEach((packet, i) => expect((packet.sequenceNumber - packets[0]!.sequenceNumber) & 0xffff).toBe(i));
    expect((packets[4]!.timestamp - packets[3]!.timestamp) >>> 0).toBe(3 * 160);
  });

  it('uses the PCMA silence byte and payload type for A-law', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote, codec: { name: 'PCMA', payloadType: 8 } });
    session.start();
    await ticks(time, 1);
    await receiver.waitFor(1);
    const [packet] = packetsOf(receiver);
    expect(packet!.payloadType).toBe(8);
    expect(packet!.payload.every((byte) => byte === 0xd5)).toBe(true);
  });

  it('sends a negotiated dynamic payload type as given', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote, codec: { name: 'PCMU', payloadType: 96 } });
    session.start();
    await ticks(time, 1);
    await receiver.waitFor(1);
    expect(packetsOf(receiver)[0]!.payloadType).toBe(96);
  });

  it('runs on the real shared clock: 50 packets/s paced by the clock, seq and timestamp consistent', async () => {
    const receiver = await peer();
    const clock = new MediaClock();
    const sockets = await socketPair();
    const session = new RtpSession({ sockets, remote: receiver.remote, codec: { name: 'PCMU', payloadType: 0 }, telephoneEventPayloadType: null, clock, logger: silentLogger });
    cleanups.push(() => session.close());
    session.start();
    await receiver.waitFor(10);
    session.close();
    expect(clock.stats().running).toBe(false);
    const packets = packetsOf(receiver).slice(0, 10);
    for (let i = 1; i < packets.length; i++) {
      expect((packets[i]!.sequenceNumber - packets[i - 1]!.sequenceNumber) & 0xffff).toBe(1);
      const step = (packets[i]!.timestamp - packets[i - 1]!.timestamp) >>> 0;
      expect(step % 160).toBe(0);
      expect(step).toBeGreaterThanOrEqual(160);
    }
  });
});

describe('RtpSession playback', () => {
  it('plays the frames in order with the marker on the first, then silence; onFinished once after the last', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    let finished = 0;
    session.start();
    await ticks(time, 1); // one silence packet first
    session.play(distinctFrames(5), () => finished++);
    expect(session.playing).toBe(true);
    await ticks(time, 4);
    expect(finished).toBe(0);
    await ticks(time, 1); // the 5th frame
    expect(finished).toBe(1);
    expect(session.playing).toBe(false);
    await ticks(time, 2);
    await receiver.waitFor(8);
    const packets = packetsOf(receiver);
    expect(packets.map((p) => p.payload[0])).toEqual([0xff, 1, 2, 3, 4, 5, 0xff, 0xff]);
    expect(packets.map((p) => p.marker)).toEqual([true, true, false, false, false, false, false, false]);
    expect(finished).toBe(1);
  });

  it('plays real prompt frames from a PromptLibrary', async () => {
    const receiver = await peer();
    const library = PromptLibrary.fromPcm({ beep: tone(440, 480) });
    const { session, time } = await harness({ remote: receiver.remote });
    const frames = library.frames('beep', 'PCMU');
    let finished = false;
    session.play(frames, () => (finished = true));
    session.start();
    await ticks(time, 3);
    await receiver.waitFor(3);
    expect(packetsOf(receiver).map((p) => Buffer.from(p.payload))).toEqual(frames.map((f) => Buffer.from(f)));
    expect(finished).toBe(true);
  });

  it('stopPlayback mid-prompt: the next packet is silence and onFinished never runs', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    let finished = false;
    session.start();
    session.play(distinctFrames(10), () => (finished = true));
    await ticks(time, 3);
    session.stopPlayback();
    expect(session.playing).toBe(false);
    await ticks(time, 10);
    await receiver.waitFor(13);
    expect(packetsOf(receiver).map((p) => p.payload[0])).toEqual([1, 2, 3, ...Array<number>(10).fill(0xff)]);
    expect(finished).toBe(false);
  });

  it('play replaces the current playback; the replaced onFinished never runs', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    const calls: string[] = [];
    session.start();
    session.play([Buffer.alloc(160, 0x11), Buffer.alloc(160, 0x12), Buffer.alloc(160, 0x13)], () => calls.push('a'));
    await ticks(time, 1);
    session.play([Buffer.alloc(160, 0x21), Buffer.alloc(160, 0x22)], () => calls.push('b'));
    await ticks(time, 4);
    await receiver.waitFor(5);
    const packets = packetsOf(receiver);
    expect(packets.map((p) => p.payload[0])).toEqual([0x11, 0x21, 0x22, 0xff, 0xff]);
    expect(packets.map((p) => p.marker)).toEqual([true, true, false, false, false]);
    expect(calls).toEqual(['b']);
  });

  it('onFinished may start the next prompt: it follows without a gap', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    session.start();
    session.play([Buffer.alloc(160, 1)], () => session.play([Buffer.alloc(160, 2)], () => undefined));
    await ticks(time, 3);
    await receiver.waitFor(3);
    expect(packetsOf(receiver).map((p) => p.payload[0])).toEqual([1, 2, 0xff]);
  });

  it('an empty playback finishes on the next tick', async () => {
    const { session, time } = await harness({ remote: null });
    let finished = false;
    session.start();
    session.play([], () => (finished = true));
    expect(finished).toBe(false);
    await ticks(time, 1);
    expect(finished).toBe(true);
  });

  it('rejects frames that are not 160 bytes', async () => {
    const { session } = await harness();
    expect(() => session.play([Buffer.alloc(80)], () => undefined)).toThrow(RangeError);
    expect(session.playing).toBe(false);
  });
});

describe('RtpSession hold and remote changes', () => {
  it('null remote = hold: nothing is sent, the timestamp keeps running, marker on resume', async () => {
    const receiver = await peer();
    const { session, time } = await harness({ remote: receiver.remote });
    session.start();
    await ticks(time, 2);
    session.setRemote(null);
    expect(session.sendingTo).toBeNull();
    await ticks(time, 5);
    session.setRemote(receiver.remote);
    await ticks(time, 1);
    await receiver.waitFor(3);
    const packets = packetsOf(receiver);
    expect(packets).toHaveLength(3);
    expect((packets[2]!.timestamp - packets[1]!.timestamp) >>> 0).toBe(6 * 160);
    expect((packets[2]!.sequenceNumber - packets[1]!.sequenceNumber) & 0xffff).toBe(1);
    expect(packets[2]!.marker).toBe(true);
  });

  it('c=0.0.0.0 (RFC 3264 §8.4) is hold too', async () => {
    const { session } = await harness({ remote: { address: '0.0.0.0', port: 4000 } });
    expect(session.sendingTo).toBeNull();
  });

  it('a new remote from a re-INVITE takes effect on the next packet', async () => {
    const first = await peer();
    const second = await peer();
    const { session, time } = await harness({ remote: first.remote });
    session.start();
    await ticks(time, 1);
    session.setRemote(second.remote);
    await ticks(time, 1);
    await first.waitFor(1);
    await second.waitFor(1);
    expect(first.received).toHaveLength(1);
    expect(second.received).toHaveLength(1);
  });
});

describe('RtpSession receiving', () => {
  it('emits each telephone-event press once: the real sipp pcap packets, sent twice', async () => {
    const sender = await peer();
    const { session, sockets, digits } = await harness({ remote: sender.remote });
    const packets = readPcapUdp('/usr/share/sip-tester/dtmf_2833_1.pcap').map((p) => p.payload);
    for (const packet of [...packets, ...packets]) await sender.send(packet, sockets.rtpPort);
    await until(() => session.stats().packetsReceived === 20);
    expect(digits).toEqual(['1', '1']);
    expect(session.stats()).toMatchObject({ telephoneEvents: 2, packetsReceived: 20 });
  });

  it('reads a PIN typed with the sipp pcaps, including a repeated digit and #', async () => {
    const sender = await peer();
    const { session, sockets, digits } = await harness({ remote: sender.remote });
    const names = ['4', '8', '2', '6', '6', 'pound'];
    let count = 0;
    for (const name of names) {
      for (const { payload } of readPcapUdp(`/usr/share/sip-tester/dtmf_2833_${name}.pcap`)) {
        await sender.send(payload, sockets.rtpPort);
        count++;
      }
    }
    await until(() => session.stats().packetsReceived === count);
    expect(digits.join('')).toBe('48266#');
  });

  it('ignores telephone-events when none was negotiated, and unknown payload types', async () => {
    const sender = await peer();
    const { session, sockets, digits } = await harness({ remote: sender.remote, telephoneEventPayloadType: null });
    await sender.send(telephoneEventPacket({ ssrc: 1, timestamp: 1, marker: true, event: 1, end: false }), sockets.rtpPort);
    await sender.send(audioPacket(18), sockets.rtpPort);
    await sender.send(Buffer.from('not rtp'), sockets.rtpPort);
    await sender.send(audioPacket(0), sockets.rtpPort);
    await until(() => session.stats().packetsReceived === 1);
    expect(digits).toEqual([]);
    expect(session.stats()).toMatchObject({ packetsReceived: 1, packetsIgnored: 3, telephoneEvents: 0 });
  });

  it('emits received audio payloads to an audio listener', async () => {
    const sender = await peer();
    const { session, sockets } = await harness({ remote: sender.remote });
    const payloads: Buffer[] = [];
    session.on('audio', (payload) => payloads.push(Buffer.from(payload)));
    await sender.send(audioPacket(0), sockets.rtpPort);
    await until(() => payloads.length === 1);
    expect(payloads[0]!.length).toBe(160);
  });
});

describe('RtpSession symmetric RTP (RFC 4961)', () => {
  it('latches onto the source of the first RTP with a negotiated PT and sends there', async () => {
    const sdpAddress = await peer(); // what the SDP said (e.g. a private address behind NAT)
    const natted = await peer(); // where the packets really come from
    const { session, sockets, time } = await harness({ remote: sdpAddress.remote });
    const latched: { address: string; port: number }[] = [];
    session.on('latched', (remote) => latched.push(remote));
    session.start();
    await ticks(time, 1);
    await sdpAddress.waitFor(1);

    await natted.send(audioPacket(0), sockets.rtpPort);
    await until(() => latched.length === 1);
    expect(latched[0]).toEqual(natted.remote);
    expect(session.sendingTo).toEqual(natted.remote);
    await ticks(time, 2);
    await natted.waitFor(2);
    expect(sdpAddress.received).toHaveLength(1);
  });

  it('after latching, packets from other sources are dropped (no digit injection)', async () => {
    const caller = await peer();
    const intruder = await peer();
    const { session, sockets, digits } = await harness({ remote: caller.remote });
    await caller.send(audioPacket(0), sockets.rtpPort);
    await until(() => session.stats().packetsReceived === 1);
    await intruder.send(telephoneEventPacket({ ssrc: 7, timestamp: 100, marker: true, event: 9, end: true }), sockets.rtpPort);
    await caller.send(telephoneEventPacket({ ssrc: 8, timestamp: 200, marker: true, event: 1, end: true }), sockets.rtpPort);
    await until(() => session.stats().packetsReceived === 2);
    expect(digits).toEqual(['1']);
    expect(session.stats()).toMatchObject({ packetsIgnored: 1, telephoneEvents: 1 });
    expect(session.sendingTo).toEqual(caller.remote);
  });

  it('a telephone-event packet also latches; an unknown PT does not', async () => {
    const stray = await peer();
    const caller = await peer();
    const { session, sockets, digits } = await harness({ remote: caller.remote });
    const latched: { address: string; port: number }[] = [];
    session.on('latched', (remote) => latched.push(remote));
    await stray.send(audioPacket(13), sockets.rtpPort); // comfort noise: not negotiated
    await caller.send(telephoneEventPacket({ ssrc: 8, timestamp: 200, marker: true, event: 11, end: false }), sockets.rtpPort);
    await until(() => latched.length === 1);
    expect(latched).toEqual([caller.remote]);
    expect(digits).toEqual(['#']);
  });

  it('a changed remote from SDP drops the latch; the same remote again keeps it', async () => {
    const natted = await peer();
    const sdp = await peer();
    const moved = await peer();
    const { session, sockets } = await harness({ remote: sdp.remote });
    await natted.send(audioPacket(0), sockets.rtpPort);
    await until(() => session.stats().packetsReceived === 1);
    session.setRemote({ ...sdp.remote });
    expect(session.sendingTo).toEqual(natted.remote);
    session.setRemote(moved.remote);
    expect(session.sendingTo).toEqual(moved.remote);
    await moved.send(audioPacket(0), sockets.rtpPort);
    await until(() => session.stats().packetsReceived === 2);
    expect(session.sendingTo).toEqual(moved.remote);
  });
});

describe('RtpSession lifecycle', () => {
  it('close leaves the clock, stops listening and playback, keeps the sockets open', async () => {
    const receiver = await peer();
    const { session, time, clock, sockets } = await harness({ remote: receiver.remote });
    const listenersBefore = sockets.rtp.listenerCount('message');
    let finished = false;
    session.start();
    session.play(distinctFrames(3), () => (finished = true));
    await ticks(time, 1);
    session.close();
    session.close();
    expect(clock.stats()).toMatchObject({ clients: 0, running: false });
    expect(time.pendingTimers).toBe(0);
    expect(sockets.rtp.listenerCount('message')).toBe(listenersBefore - 1);
    expect(session.listenerCount('telephoneEvent')).toBe(0);
    expect(session.playing).toBe(false);
    expect(finished).toBe(false);
    expect(sockets.rtp.address().port).toBe(sockets.rtpPort);
    session.start(); // no effect after close
    expect(clock.stats().clients).toBe(0);
  });

  it('survives its sockets being released before close: no throw, counted as send failures', async () => {
    const receiver = await peer();
    const allocator = new RtpPortAllocator({ address: '127.0.0.1', min: 20000, max: 29999 });
    cleanups.push(() => allocator.releaseAll());
    const sockets = await allocator.allocate();
    const time = new FakeMediaTime();
    const clock = new MediaClock({ time });
    const session = new RtpSession({ sockets, remote: receiver.remote, codec: { name: 'PCMU', payloadType: 0 }, telephoneEventPayloadType: 101, clock, logger: silentLogger });
    cleanups.push(() => session.close());
    session.start();
    await ticks(time, 1);
    await receiver.waitFor(1);
    allocator.release(sockets);
    expect(() => {
      for (let i = 0; i < 3; i++) time.fire();
    }).not.toThrow();
    expect(session.stats()).toMatchObject({ packetsSent: 1, sendFailures: 3 });
    expect(clock.stats().clientErrors).toBe(0);
  });
});
