import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeRtpPacket,
  decodeTelephoneEventPayload,
  digitForEventCode,
  encodeTelephoneEventPayload,
  eventCodeForDigit,
  initialTelephoneEventState,
  receive,
  receiveTelephoneEvent,
  type Digit,
  type TelephoneEventPacket,
  type TelephoneEventState,
} from '../../../src/telephony/embedded/rtp/index.js';
import { readPcapUdp } from './helpers.js';

const SIPP_PCAP_DIR = '/usr/share/sip-tester';

interface PacketSpec {
  ssrc?: number;
  timestamp?: number;
  marker?: boolean;
  event?: number;
  end?: boolean;
  duration?: number;
}

function packet(spec: PacketSpec = {}): TelephoneEventPacket {
  return {
    ssrc: spec.ssrc ?? 0x1234,
    timestamp: spec.timestamp ?? 8000,
    marker: spec.marker ?? false,
    payload: encodeTelephoneEventPayload({ event: spec.event ?? 5, end: spec.end ?? false, volume: 10, duration: spec.duration ?? 160 }),
  };
}

/** Feeds packets in order; returns the digits reported and the final state. */
function feed(packets: TelephoneEventPacket[], state: TelephoneEventState = initialTelephoneEventState) {
  const digits: Digit[] = [];
  for (const p of packets) {
    const result = receiveTelephoneEvent(state, p);
    state = result.state;
    if (result.digit !== undefined) digits.push(result.digit);
  }
  return { digits, state };
}

/** A compliant key press: start (M=1), continuations, then the end packet three times (§2.5.1.4). */
function press(spec: { ssrc?: number; timestamp: number; event: number; continuations?: number }): TelephoneEventPacket[] {
  const base = { ssrc: spec.ssrc, timestamp: spec.timestamp, event: spec.event };
  const packets = [packet({ ...base, marker: true, duration: 160 })];
  const continuations = spec.continuations ?? 5;
  for (let i = 0; i < continuations; i++) packets.push(packet({ ...base, duration: 320 + i * 160 }));
  const end = packet({ ...base, end: true, duration: 480 + continuations * 160 });
  packets.push(end, end, end);
  return packets;
}

/** The RTP telephone-event packets of a sipp sample pcap, as the receiver sees them. */
function sippPress(name: string): TelephoneEventPacket[] {
  return readPcapUdp(`${SIPP_PCAP_DIR}/dtmf_2833_${name}.pcap`).map(({ payload }) => {
    const rtp = decodeRtpPacket(payload);
    if (!rtp) throw new Error('pcap packet is not RTP');
    return { ssrc: rtp.ssrc, timestamp: rtp.timestamp, marker: rtp.marker, payload: rtp.payload };
  });
}

describe('telephone-event payload (RFC 4733 §2.3)', () => {
  it('decodes event, E bit, volume and duration', () => {
    expect(decodeTelephoneEventPayload(Buffer.from('018a08c0', 'hex'))).toEqual({ event: 1, end: true, volume: 10, duration: 0x08c0 });
    expect(decodeTelephoneEventPayload(Buffer.from('0b0a0140', 'hex'))).toEqual({ event: 11, end: false, volume: 10, duration: 320 });
  });

  it('rejects payloads shorter than 4 bytes', () => {
    expect(decodeTelephoneEventPayload(Buffer.from('018a08', 'hex'))).toBeNull();
  });

  it('round-trips through encode', () => {
    const payload = { event: 15, end: true, volume: 63, duration: 65535 };
    expect(decodeTelephoneEventPayload(encodeTelephoneEventPayload(payload))).toEqual(payload);
  });

  it('maps events 0–15 to digits (§3.2) and nothing else', () => {
    const digits = Array.from({ length: 16 }, (_, code) => digitForEventCode(code));
    expect(digits.join('')).toBe('0123456789*#ABCD');
    expect(digitForEventCode(16)).toBeNull();
    expect(digitForEventCode(255)).toBeNull();
    expect(eventCodeForDigit('#')).toBe(11);
    expect(eventCodeForDigit('D')).toBe(15);
  });
});

describe('receiveTelephoneEvent', () => {
  it('exports the brief name receive', () => {
    expect(receive).toBe(receiveTelephoneEvent);
  });

  it('reports a press once, on its first packet', () => {
    const packets = press({ timestamp: 1000, event: 7 });
    const first = receiveTelephoneEvent(initialTelephoneEventState, packets[0]!);
    expect(first.digit).toBe('7');
    const rest = feed(packets.slice(1), first.state);
    expect(rest.digits).toEqual([]);
  });

  it('does not mutate the state it is given', () => {
    const state = feed(press({ timestamp: 1000, event: 1 })).state;
    const snapshot = JSON.stringify(state);
    receiveTelephoneEvent(state, packet({ timestamp: 2000, marker: true, event: 2 }));
    receiveTelephoneEvent(state, packet({ timestamp: 1000, marker: true, event: 1 }));
    expect(JSON.stringify(state)).toBe(snapshot);
  });

  it('the three end packets (§2.5.1.4) count once', () => {
    const end = packet({ timestamp: 1000, event: 3, end: true });
    expect(feed([end, end, end]).digits).toEqual(['3']);
  });

  it('a press whose start and continuations were lost is reported on its first end packet', () => {
    const packets = press({ timestamp: 1000, event: 9 }).slice(-3);
    expect(feed(packets).digits).toEqual(['9']);
  });

  it('consecutive presses of different keys: one digit each', () => {
    const packets = [...press({ timestamp: 1000, event: 1 }), ...press({ timestamp: 3000, event: 2 }), ...press({ timestamp: 5000, event: 11 })];
    expect(feed(packets).digits).toEqual(['1', '2', '#']);
  });

  it('the same key twice with distinct timestamps: two digits', () => {
    const packets = [...press({ timestamp: 1000, event: 4 }), ...press({ timestamp: 3000, event: 4 })];
    expect(feed(packets).digits).toEqual(['4', '4']);
  });

  it('a new timestamp is a new event even without the marker bit or an end of the previous one', () => {
    const packets = [packet({ timestamp: 1000, event: 4, marker: true }), packet({ timestamp: 1000, event: 4 }), packet({ timestamp: 9_000_000, event: 6 })];
    expect(feed(packets).digits).toEqual(['4', '6']);
  });

  it('a different event code under the same timestamp is a new event', () => {
    const packets = [packet({ timestamp: 1000, event: 4, marker: true }), packet({ timestamp: 1000, event: 5 })];
    expect(feed(packets).digits).toEqual(['4', '5']);
  });

  it('a different SSRC is a new event (e.g. the sender restarted its stream)', () => {
    const packets = [...press({ ssrc: 1, timestamp: 1000, event: 8 }), ...press({ ssrc: 2, timestamp: 1000, event: 8 })];
    expect(feed(packets).digits).toEqual(['8', '8']);
  });

  it('same SSRC+timestamp+event after the end, with the marker bit: a new press (sipp replay)', () => {
    const packets = [...press({ timestamp: 1000, event: 0 }), ...press({ timestamp: 1000, event: 0 }), ...press({ timestamp: 1000, event: 0 })];
    expect(feed(packets).digits).toEqual(['0', '0', '0']);
  });

  it('a late continuation of an ended event (M=0) counts nothing', () => {
    const packets = press({ timestamp: 1000, event: 2 });
    const lateContinuation = packet({ timestamp: 1000, event: 2, duration: 480 });
    expect(feed([...packets, lateContinuation, lateContinuation]).digits).toEqual(['2']);
  });

  it('a repeated start packet (M=1) of an event still in progress counts nothing', () => {
    const start = packet({ timestamp: 1000, event: 2, marker: true });
    expect(feed([start, start, start, packet({ timestamp: 1000, event: 2 })]).digits).toEqual(['2']);
  });

  it('a straggler of an earlier press arriving after the next press counts nothing', () => {
    const first = press({ timestamp: 1000, event: 1 });
    const second = press({ timestamp: 3000, event: 2 });
    const lateEnd = first.at(-1)!;
    const lateContinuation = first[2]!;
    const packets = [...first, second[0]!, lateEnd, lateContinuation, ...second.slice(1)];
    expect(feed(packets).digits).toEqual(['1', '2']);
  });

  it('an end of an event not yet seen as ended, arriving out of order after the next one started, counts nothing', () => {
    const packets = [
      packet({ timestamp: 1000, event: 1, marker: true }),
      packet({ timestamp: 3000, event: 2, marker: true }),
      packet({ timestamp: 1000, event: 1, end: true }),
      packet({ timestamp: 1000, event: 1, end: true }),
      packet({ timestamp: 3000, event: 2, end: true }),
    ];
    expect(feed(packets).digits).toEqual(['1', '2']);
  });

  it('a long-duration event continued under a new timestamp without marker (§2.5.1.3) is one press', () => {
    const packets = [
      packet({ timestamp: 1000, event: 5, marker: true, duration: 160 }),
      packet({ timestamp: 1000, event: 5, duration: 65535 }),
      packet({ timestamp: 1000 + 65535, event: 5, duration: 160 }),
      packet({ timestamp: 1000 + 65535, event: 5, end: true, duration: 800 }),
      packet({ timestamp: 1000 + 65535, event: 5, end: true, duration: 800 }),
    ];
    expect(feed(packets).digits).toEqual(['5']);
  });

  it('a long-duration segment across the 32-bit timestamp wrap is still one press', () => {
    const packets = [packet({ timestamp: 0xffff_ff00, event: 5, marker: true }), packet({ timestamp: 0xff00, event: 5 })];
    expect(feed(packets).digits).toEqual(['5']);
  });

  it('but a new marked start of the same key under a new timestamp is a new press, even if the end was lost', () => {
    const packets = [packet({ timestamp: 1000, event: 5, marker: true }), packet({ timestamp: 2600, event: 5, marker: true })];
    expect(feed(packets).digits).toEqual(['5', '5']);
  });

  it('ignores non-DTMF events (e.g. 16 flash, 64 off-hook) and short payloads, keeping state', () => {
    const state = feed(press({ timestamp: 1000, event: 1 })).state;
    for (const event of [16, 64, 255]) {
      const result = receiveTelephoneEvent(state, packet({ timestamp: 2000, event, marker: true }));
      expect(result.digit).toBeUndefined();
      expect(result.state).toBe(state);
    }
    const short = receiveTelephoneEvent(state, { ssrc: 1, timestamp: 5, marker: true, payload: Buffer.from([1, 0x8a]) });
    expect(short.digit).toBeUndefined();
    expect(short.state).toBe(state);
  });

  it('keeps a bounded history', () => {
    const packets: TelephoneEventPacket[] = [];
    for (let i = 0; i < 100; i++) packets.push(...press({ timestamp: 1000 + i * 2000, event: i % 16 }));
    const { digits, state } = feed(packets);
    expect(digits).toHaveLength(100);
    expect(state.recent.length).toBeLessThanOrEqual(8);
  });

  it('property: compliant presses with distinct timestamps yield exactly the pressed digits, whatever the continuation count', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ event: fc.integer({ min: 0, max: 15 }), continuations: fc.integer({ min: 0, max: 10 }), gap: fc.integer({ min: 1600, max: 40000 }) }), { maxLength: 30 }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (presses, startTimestamp) => {
          let timestamp = startTimestamp;
          const packets: TelephoneEventPacket[] = [];
          for (const p of presses) {
            packets.push(...press({ timestamp, event: p.event, continuations: p.continuations }));
            timestamp = (timestamp + p.gap) >>> 0;
          }
          expect(feed(packets).digits.join('')).toBe(presses.map((p) => digitForEventCode(p.event)).join(''));
        },
      ),
    );
  });

  it('property: duplicating any packet of compliant presses never adds a digit', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 10 }), fc.nat(), (events, pick) => {
        const packets = events.flatMap((event, i) => press({ timestamp: 1000 + i * 4000, event }));
        const index = pick % packets.length;
        const noisy = [...packets.slice(0, index + 1), ...packets.slice(index)];
        // Duplicating a start packet (M=1) of a running event must not count either.
        expect(feed(noisy).digits).toEqual(feed(packets).digits);
      }),
    );
  });
});

describe('sipp sample pcaps (/usr/share/sip-tester/dtmf_2833_*.pcap)', () => {
  it('dtmf_2833_1.pcap holds one press: 7 packets E=0 then 3 × E=1, one SSRC and timestamp', () => {
    const packets = sippPress('1');
    expect(packets).toHaveLength(10);
    expect(new Set(packets.map((p) => p.ssrc)).size).toBe(1);
    expect(new Set(packets.map((p) => p.timestamp)).size).toBe(1);
    const ends = packets.map((p) => decodeTelephoneEventPayload(p.payload)!.end);
    expect(ends).toEqual([false, false, false, false, false, false, false, true, true, true]);
    expect(packets.map((p) => p.marker)).toEqual([true, false, false, false, false, false, false, false, false, false]);
  });

  it('replaying the same pcap twice is two presses of 1', () => {
    const packets = sippPress('1');
    expect(feed([...packets, ...packets]).digits).toEqual(['1', '1']);
  });

  it('a sipp PIN entry 4-8-2-6-# (pcaps replayed in sequence) is read as typed, also with a repeated digit', () => {
    const sequence = ['4', '8', '2', '6', '6', 'pound'].flatMap((name) => sippPress(name));
    expect(feed(sequence).digits.join('')).toBe('48266#');
  });

  it('every sipp pcap is exactly one press of its digit', () => {
    const names: [string, Digit][] = [
      ...Array.from({ length: 10 }, (_, i): [string, Digit] => [String(i), String(i) as Digit]),
      ['star', '*'],
      ['pound', '#'],
    ];
    for (const [name, digit] of names) expect(feed(sippPress(name)).digits).toEqual([digit]);
  });
});
