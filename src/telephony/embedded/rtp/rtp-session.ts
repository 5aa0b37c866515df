/**
 * One call's media: sends a G.711 frame every 20 ms from the shared MediaClock (prompt audio,
 * else silence), receives RTP, turns RFC 4733 telephone-events — or, when the peer offered
 * none, in-band DTMF tones in the audio — into digits and latches onto the peer's real RTP
 * source (symmetric RTP).
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { RemoteInfo } from 'node:dgram';
import type { Logger } from '../../../log.js';
import { SAMPLES_PER_FRAME, silenceFrame, type AudioCodec } from './g711.js';
import { InbandDtmfDetector } from './inband-dtmf.js';
import type { MediaClock, MediaClockClient } from './media-clock.js';
import type { RtpSocketPair } from './port-allocator.js';
import { RTP_FIXED_HEADER_SIZE, decodeRtpPacket, writeRtpHeader, type RtpHeaderFields } from './rtp-packet.js';
import { initialTelephoneEventState, receiveTelephoneEvent, type Digit, type TelephoneEventState } from './telephone-event.js';

export interface RtpRemote {
  address: string;
  port: number;
}

export interface RtpSessionOptions {
  sockets: RtpSocketPair;
  /** Where to send, from the SDP (c= address, m= port); null = hold / not known yet. */
  remote: RtpRemote | null;
  codec: { name: AudioCodec; payloadType: number };
  /** Negotiated telephone-event payload type (RFC 4733 §7.1.1), or null if not offered. */
  telephoneEventPayloadType: number | null;
  clock: MediaClock;
  logger: Logger;
}

export interface RtpSessionStats {
  packetsSent: number;
  packetsReceived: number;
  telephoneEvents: number;
  /** Digits detected as in-band tones in the audio (only without a telephone-event payload type). */
  inbandDigits: number;
  /** Datagrams dropped: not RTP, unknown payload type, or from a source other than the latched one. */
  packetsIgnored: number;
  /** Packets not sent: socket errors, or the send ring still held by the kernel (see SEND_RING_SIZE). */
  sendFailures: number;
}

export interface RtpSessionEvents {
  /** A key press: from RFC 4733 events, or from in-band tones when no telephone-event was negotiated. */
  telephoneEvent: [digit: Digit, method: 'rfc4733' | 'inband'];
  latched: [remote: RtpRemote];
  /** Received audio payload (a view, valid only during the call); emitted only with a listener. */
  audio: [payload: Buffer];
}

/**
 * Send buffers per session. Node's dgram.send() does not copy the buffer: it keeps a reference
 * until the datagram is handed to the kernel — at the earliest on the next tick (the address
 * goes through an asynchronous lookup even for an IP literal), later if libuv has to queue the
 * send (EAGAIN). Reusing one buffer for the next packet is safe 20 ms later in practice, but a
 * small ring with an in-flight flag per buffer (cleared by the send callback) makes it safe by
 * construction: a buffer still held is never overwritten; that packet is dropped instead.
 */
const SEND_RING_SIZE = 4;
const PACKET_SIZE = RTP_FIXED_HEADER_SIZE + SAMPLES_PER_FRAME;

export class RtpSession extends EventEmitter<RtpSessionEvents> implements MediaClockClient {
  private readonly sockets: RtpSocketPair;
  private readonly clock: MediaClock;
  private readonly logger: Logger;
  private readonly codec: { name: AudioCodec; payloadType: number };
  private readonly telephoneEventPayloadType: number | null;
  private readonly silence: Buffer;
  private readonly inbandDtmf: InbandDtmfDetector | null;

  private remote: RtpRemote | null;
  private latchedTo: RtpRemote | null = null;

  // RFC 3550 §5.1: random initial SSRC, sequence number and timestamp.
  private readonly header: RtpHeaderFields;
  private firstTick = true;
  private markNextPacket = true;

  private readonly sendRing: Buffer[] = [];
  private readonly inFlight: boolean[] = [];
  private readonly sendDone: ((error: Error | null) => void)[] = [];
  private ringIndex = 0;

  private playback: { frames: readonly Buffer[]; next: number; onFinished: () => void } | null = null;
  private telephoneEventState: TelephoneEventState = initialTelephoneEventState;
  private started = false;
  private closed = false;
  private sendErrorLogged = false;

  private packetsSent = 0;
  private packetsReceived = 0;
  private telephoneEvents = 0;
  private inbandDigits = 0;
  private packetsIgnored = 0;
  private sendFailures = 0;

  constructor(options: RtpSessionOptions) {
    super();
    this.sockets = options.sockets;
    this.clock = options.clock;
    this.logger = options.logger;
    this.codec = { ...options.codec };
    this.telephoneEventPayloadType = options.telephoneEventPayloadType;
    this.silence = silenceFrame(this.codec.name);
    // In-band detection only when the peer offered no telephone-event (RFC 4733): a peer that
    // sends events may also leave the tone in the audio (RFC 4733 lets the sender choose), and
    // running both would count every key twice; the events are also the more reliable signal
    // (no talk-off, no codec distortion).
    this.inbandDtmf = options.telephoneEventPayloadType === null ? new InbandDtmfDetector(this.codec.name) : null;
    this.remote = normaliseRemote(options.remote);
    this.header = {
      marker: false,
      payloadType: this.codec.payloadType,
      sequenceNumber: randomInt(0, 0x10000),
      timestamp: randomInt(0, 0x1_0000_0000),
      ssrc: randomInt(0, 0x1_0000_0000),
    };
    for (let i = 0; i < SEND_RING_SIZE; i++) {
      this.sendRing.push(Buffer.alloc(PACKET_SIZE));
      this.inFlight.push(false);
      this.sendDone.push((error) => this.onSent(i, error));
    }
    this.sockets.rtp.on('message', this.onMessage);
  }

  /** Joins the shared clock: a frame goes out every 20 ms from now on (prompt, else silence). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.clock.add(this);
  }

  /**
   * Plays `frames` (160-byte frames in the session's codec) from the next tick, replacing any
   * current playback (whose onFinished is then never called). `onFinished` runs, from the
   * clock tick, after the last frame has been sent.
   */
  play(frames: readonly Buffer[], onFinished: () => void): void {
    if (this.closed) return;
    for (const frame of frames) {
      if (frame.length !== SAMPLES_PER_FRAME) throw new RangeError(`RTP frame of ${frame.length} bytes; expected ${SAMPLES_PER_FRAME}`);
    }
    this.playback = { frames, next: 0, onFinished };
  }

  /** Stops playback at once: the next tick sends silence. onFinished is not called. */
  stopPlayback(): void {
    this.playback = null;
  }

  get playing(): boolean {
    return this.playback !== null;
  }

  /** Payload type and codec in use. */
  get audioCodec(): { name: AudioCodec; payloadType: number } {
    return { ...this.codec };
  }

  /** The address packets go to: the latched source, else the SDP remote; null when on hold. */
  get sendingTo(): RtpRemote | null {
    if (this.remote === null) return null;
    const destination = this.latchedTo ?? this.remote;
    return { address: destination.address, port: destination.port };
  }

  /**
   * New remote from SDP (initial answer or re-INVITE). null (or c=0.0.0.0, RFC 3264 §8.4)
   * = hold: nothing is sent, though the timestamp keeps running. A changed address drops the
   * latch, so media follows the new SDP until RTP from the new source arrives.
   */
  setRemote(remote: RtpRemote | null): void {
    const next = normaliseRemote(remote);
    if (next !== null && (this.remote === null || next.address !== this.remote.address || next.port !== this.remote.port)) {
      this.latchedTo = null;
    }
    if (next !== null && this.remote === null) this.markNextPacket = true;
    this.remote = next;
  }

  /** Leaves the clock, stops playback, stops listening, removes listeners. Sockets stay open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.playback = null;
    this.clock.remove(this);
    this.sockets.rtp.off('message', this.onMessage);
    this.removeAllListeners();
  }

  stats(): RtpSessionStats {
    return {
      packetsSent: this.packetsSent,
      packetsReceived: this.packetsReceived,
      telephoneEvents: this.telephoneEvents,
      inbandDigits: this.inbandDigits,
      packetsIgnored: this.packetsIgnored,
      sendFailures: this.sendFailures,
    };
  }

  /** MediaClockClient: one slot's worth of media. */
  onMediaTick(slots: number): void {
    if (this.closed) return;
    const header = this.header;
    if (this.firstTick) {
      // The first packet carries the random initial timestamp as chosen.
      this.firstTick = false;
    } else {
      // RFC 3550 §5.1: the timestamp advances with the sampling clock, also across slots the
      // clock skipped and while on hold, so the receiver sees the real gap.
      header.timestamp = (header.timestamp + SAMPLES_PER_FRAME * slots) >>> 0;
    }

    let frame = this.silence;
    const playback = this.playback;
    if (playback !== null && playback.next < playback.frames.length) {
      // RFC 3551 §4.1: marker on the first packet of a talkspurt — the start of a prompt.
      if (playback.next === 0) header.marker = true;
      frame = playback.frames[playback.next]!;
      playback.next++;
    }

    // The marker also flags the first packet of the stream and the first after a hold.
    if (this.markNextPacket) header.marker = true;
    if (this.remote !== null && this.send(frame)) this.markNextPacket = false;
    header.marker = false;

    if (playback !== null && playback.next >= playback.frames.length && this.playback === playback) {
      this.playback = null;
      try {
        playback.onFinished();
      } catch (error) {
        this.logger.error({ err: error }, 'prompt finished handler failed');
      }
    }
  }

  /** Sends one packet; false if it could not be sent. */
  private send(frame: Buffer): boolean {
    const index = this.ringIndex;
    if (this.inFlight[index]) {
      // The kernel has not taken the packet sent 4 slots ago: the send queue is backed up.
      // Dropping this packet is better than corrupting the one still queued.
      this.sendFailures++;
      return false;
    }
    const destination = this.latchedTo ?? this.remote!;
    const buffer = this.sendRing[index]!;
    writeRtpHeader(buffer, this.header, 0);
    frame.copy(buffer, RTP_FIXED_HEADER_SIZE);
    this.inFlight[index] = true;
    try {
      this.sockets.rtp.send(buffer, destination.port, destination.address, this.sendDone[index]);
    } catch (error) {
      // Synchronous throw: the socket was closed (released before close()) or bad arguments.
      this.inFlight[index] = false;
      this.onSendError(error as Error);
      return false;
    }
    this.ringIndex = (index + 1) % SEND_RING_SIZE;
    // RFC 3550 §5.1: the sequence number increments by one per packet sent.
    this.header.sequenceNumber = (this.header.sequenceNumber + 1) & 0xffff;
    this.packetsSent++;
    return true;
  }

  private onSent(index: number, error: Error | null): void {
    this.inFlight[index] = false;
    if (error) this.onSendError(error);
  }

  private onSendError(error: Error): void {
    this.sendFailures++;
    // Once per session at warn: a dead peer address would otherwise log 50 lines a second.
    if (!this.sendErrorLogged) {
      this.sendErrorLogged = true;
      this.logger.warn({ err: error }, 'RTP send failed');
    }
  }

  private readonly onMessage = (datagram: Buffer, rinfo: RemoteInfo): void => {
    if (this.closed) return;
    const packet = decodeRtpPacket(datagram);
    if (packet === null) {
      this.packetsIgnored++;
      return;
    }
    const isAudio = packet.payloadType === this.codec.payloadType;
    const isTelephoneEvent = this.telephoneEventPayloadType !== null && packet.payloadType === this.telephoneEventPayloadType;
    if (!isAudio && !isTelephoneEvent) {
      // Unknown payload type (e.g. comfort noise, RTCP multiplexed by a confused peer).
      this.packetsIgnored++;
      return;
    }

    if (this.latchedTo === null) {
      // Symmetric RTP (RFC 4961; "comedia"): the source of the first RTP packet with a
      // negotiated payload type is where the peer really is — behind NAT it differs from the
      // SDP address — so send there from now on.
      this.latchedTo = { address: rinfo.address, port: rinfo.port };
      this.logger.debug({ remoteAddress: rinfo.address, remotePort: rinfo.port }, 'RTP latched');
      this.emit('latched', { address: rinfo.address, port: rinfo.port });
    } else if (rinfo.address !== this.latchedTo.address || rinfo.port !== this.latchedTo.port) {
      // After latching, another source is not this call's peer: ignore it (no injection of
      // digits from elsewhere, no stealing of the media stream).
      this.packetsIgnored++;
      return;
    }
    if (this.closed) return;
    this.packetsReceived++;

    if (isTelephoneEvent) {
      const result = receiveTelephoneEvent(this.telephoneEventState, {
        ssrc: packet.ssrc,
        timestamp: packet.timestamp,
        marker: packet.marker,
        payload: packet.payload,
      });
      this.telephoneEventState = result.state;
      if (result.digit !== undefined) {
        this.telephoneEvents++;
        this.emit('telephoneEvent', result.digit, 'rfc4733');
      }
    } else {
      this.inbandDtmf?.receive(packet.payload, this.onInbandDigit);
      if (this.listenerCount('audio') > 0) this.emit('audio', packet.payload);
    }
  };

  private readonly onInbandDigit = (digit: Digit): void => {
    if (this.closed) return;
    this.inbandDigits++;
    this.emit('telephoneEvent', digit, 'inband');
  };
}

function normaliseRemote(remote: RtpRemote | null): RtpRemote | null {
  if (remote === null) return null;
  // RFC 3264 §8.4 (and RFC 2543 style hold): c=0.0.0.0 means "do not send".
  if (remote.address === '0.0.0.0' || remote.address === '::' || remote.port === 0) return null;
  return { address: remote.address, port: remote.port };
}
