/**
 * RFC 4733 telephone-event receiver, as a pure function: (state, packet) -> { state, digit? }.
 *
 * Payload (RFC 4733 §2.3):
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     event     |E|R| volume    |          duration             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * One key press is one event, identified by (SSRC, RTP timestamp, event code): §2.5.1.2 says
 * all packets of an event carry the timestamp of its beginning, the first with the marker bit
 * set, the following ones (continuation, longer duration) without it; §2.5.1.4 sends the final
 * packet (E bit) three times. The digit is reported on the FIRST packet seen of a new event,
 * so a prompt can be cut (barge-in) without waiting for the key to be released.
 *
 * sipp's sample pcaps (dtmf_2833_*.pcap) replay the same packets — same SSRC, timestamp and
 * sequence numbers — every time the same digit is pressed, so "same key as an ended event" is
 * not enough to call a packet a duplicate: a packet with the marker bit set for an already
 * ended event starts a new press, while one without (a late, reordered continuation or end
 * retransmission) is ignored.
 */

import { DIGITS, type Digit } from '../../../ivr/types.js';

export type { Digit };

/** RFC 4733 §3.2, Table 7: DTMF events 0–15, in the same order as DIGITS. */
const DTMF_DIGITS: readonly Digit[] = DIGITS;

/** Returns the digit for DTMF event code 0–15, else null (other events are not key presses). */
export function digitForEventCode(event: number): Digit | null {
  return DTMF_DIGITS[event] ?? null;
}

/** Returns the RFC 4733 event code for a digit (the sending direction, e.g. for test senders). */
export function eventCodeForDigit(digit: Digit): number {
  return DTMF_DIGITS.indexOf(digit);
}

export interface TelephoneEventPayload {
  event: number;
  /** E bit: the final packet(s) of the event. */
  end: boolean;
  /** Power level in -dBm0 (0–63). */
  volume: number;
  /** Duration so far in timestamp units. */
  duration: number;
}

/**
 * Decodes the first event block of a payload, null when shorter than 4 bytes. §2.5.1.5 allows
 * packing further (earlier, ended) events after it; they are not needed to count presses of a
 * live key and are ignored.
 */
export function decodeTelephoneEventPayload(payload: Uint8Array): TelephoneEventPayload | null {
  if (payload.length < 4) return null;
  const flags = payload[1]!;
  return {
    event: payload[0]!,
    end: (flags & 0x80) !== 0,
    volume: flags & 0x3f,
    duration: (payload[2]! << 8) | payload[3]!,
  };
}

/** Encodes one event block (for test senders and tools). */
export function encodeTelephoneEventPayload(payload: TelephoneEventPayload): Buffer {
  const bytes = Buffer.alloc(4);
  bytes[0] = payload.event & 0xff;
  bytes[1] = (payload.end ? 0x80 : 0) | (payload.volume & 0x3f);
  bytes.writeUInt16BE(payload.duration & 0xffff, 2);
  return bytes;
}

interface SeenEvent {
  readonly ssrc: number;
  readonly timestamp: number;
  readonly event: number;
  readonly ended: boolean;
}

export interface TelephoneEventState {
  /** Recently seen events, most recent first (bounded; see HISTORY_SIZE). */
  readonly recent: readonly SeenEvent[];
}

export const initialTelephoneEventState: TelephoneEventState = Object.freeze({ recent: Object.freeze([]) });

export interface TelephoneEventPacket {
  ssrc: number;
  timestamp: number;
  marker: boolean;
  payload: Uint8Array;
}

export interface TelephoneEventResult {
  state: TelephoneEventState;
  digit?: Digit;
}

/**
 * How many recent events to remember: enough that a reordered straggler of one of the last
 * few presses is still recognised as a duplicate, small enough to stay cheap.
 */
const HISTORY_SIZE = 8;

/**
 * §2.5.1.3: a key held past the 16-bit duration (~8.2 s at 8 kHz) is continued as a new
 * segment with a new timestamp and without the marker bit. Accept a segment at most this far
 * after the current event's timestamp.
 */
const MAX_SEGMENT_STEP = 0x20000;

/** Feeds one telephone-event packet; returns the next state and, for a new key press, its digit. */
export function receiveTelephoneEvent(state: TelephoneEventState, packet: TelephoneEventPacket): TelephoneEventResult {
  const decoded = decodeTelephoneEventPayload(packet.payload);
  if (!decoded) return { state };
  const digit = digitForEventCode(decoded.event);
  // §3.2: only DTMF events 0–15 are key presses; other events (flash, tones) are ignored.
  if (digit === null) return { state };

  const { ssrc, timestamp, marker } = packet;
  const { end } = decoded;
  const recent = state.recent;
  const index = recent.findIndex((seen) => seen.ssrc === ssrc && seen.timestamp === timestamp && seen.event === decoded.event);

  if (index === -1) {
    const current = recent[0];
    if (
      current !== undefined &&
      !current.ended &&
      !marker &&
      current.ssrc === ssrc &&
      current.event === decoded.event &&
      isSegmentStep(current.timestamp, timestamp)
    ) {
      // §2.5.1.3 long-duration event: the same press goes on under a new timestamp.
      return { state: replaceAt(recent, 0, { ssrc, timestamp, event: decoded.event, ended: end }) };
    }
    // §2.5.1.2: each event has its own start timestamp, so a new timestamp (or SSRC, or event
    // code) is a new event. Reported on its first packet, whichever it is — even an end
    // packet when the earlier ones were lost.
    return { state: pushFront(recent, -1, { ssrc, timestamp, event: decoded.event, ended: end }), digit };
  }

  const seen = recent[index]!;
  if (seen.ended) {
    if (marker) {
      // The same (SSRC, timestamp, event) again after its end, but flagged as the start of
      // an event (§2.5.1.2 marker bit): a sender replaying identical packets (sipp pcaps)
      // for a second press of the same key. A new press.
      return { state: pushFront(recent, index, { ssrc, timestamp, event: decoded.event, ended: end }), digit };
    }
    // §2.5.1.4 retransmitted end packet, or a late reordered continuation of an ended event.
    return { state };
  }
  if (!end) {
    // §2.5.1.2 continuation packet (or a repeated start packet): the press is already counted.
    return { state };
  }
  // First end packet of a counted event: remember it ended so its §2.5.1.4 retransmissions
  // count nothing and a marked restart (above) counts as a new press.
  return { state: replaceAt(recent, index, { ...seen, ended: true }) };
}

/** The name used in the design brief: `receive(state, packet)`. */
export const receive = receiveTelephoneEvent;

/** RTP timestamps wrap at 2^32 (RFC 3550 §5.1): compare by modular difference. */
function isSegmentStep(previous: number, next: number): boolean {
  const step = (next - previous) >>> 0;
  return step > 0 && step <= MAX_SEGMENT_STEP;
}

function pushFront(recent: readonly SeenEvent[], removeIndex: number, entry: SeenEvent): TelephoneEventState {
  const next = [entry];
  for (let i = 0; i < recent.length && next.length < HISTORY_SIZE; i++) {
    if (i !== removeIndex) next.push(recent[i]!);
  }
  return { recent: next };
}

function replaceAt(recent: readonly SeenEvent[], index: number, entry: SeenEvent): TelephoneEventState {
  const next = recent.slice();
  next[index] = entry;
  return { recent: next };
}
