/**
 * G.711 audio (ITU-T G.711; RTP profile RFC 3551 §4.5.14): μ-law is PCMU (static PT 0),
 * A-law is PCMA (static PT 8), both 8000 samples/s, one byte per sample.
 * The companding itself comes from the `alawmulaw` package; this module fixes the framing.
 */
import alawmulaw from 'alawmulaw';

export type AudioCodec = 'PCMU' | 'PCMA';

export const AUDIO_CODECS: readonly AudioCodec[] = ['PCMU', 'PCMA'];

export const SAMPLE_RATE = 8000;
/** Packetisation interval: RFC 3551 §4.5.14 recommends 20 ms for G.711 (the SDP ptime default). */
export const FRAME_MS = 20;
/** 20 ms at 8 kHz = 160 samples = 160 bytes of G.711 = RTP timestamp step per packet. */
export const SAMPLES_PER_FRAME = (SAMPLE_RATE * FRAME_MS) / 1000;

/** RFC 3551 §6, Table 4: static payload types. */
export const STATIC_PAYLOAD_TYPES: Readonly<Record<AudioCodec, number>> = { PCMU: 0, PCMA: 8 };

/**
 * The code word for a zero sample: μ-law 0xFF (+0); A-law 0xD5 (the smallest positive step,
 * 0x55 with the sign bit; G.711 A-law has no exact zero and inverts even bits).
 */
export const SILENCE_BYTE: Readonly<Record<AudioCodec, number>> = { PCMU: 0xff, PCMA: 0xd5 };

/** Returns the codec for an SDP rtpmap encoding name (case-insensitive, RFC 4566 §6), else null. */
export function audioCodecFromName(name: string): AudioCodec | null {
  const upper = name.toUpperCase();
  return upper === 'PCMU' || upper === 'PCMA' ? upper : null;
}

/** Returns the codec for a static payload type (0 or 8), else null. */
export function audioCodecFromStaticPayloadType(payloadType: number): AudioCodec | null {
  if (payloadType === STATIC_PAYLOAD_TYPES.PCMU) return 'PCMU';
  if (payloadType === STATIC_PAYLOAD_TYPES.PCMA) return 'PCMA';
  return null;
}

/** Encodes 16-bit linear PCM to G.711, one byte per sample. */
export function encodeG711(codec: AudioCodec, pcm: Int16Array): Buffer {
  const encoded = codec === 'PCMU' ? alawmulaw.mulaw.encode(pcm) : alawmulaw.alaw.encode(pcm);
  return Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

/** Decodes G.711 bytes to 16-bit linear PCM. */
export function decodeG711(codec: AudioCodec, bytes: Uint8Array): Int16Array {
  return codec === 'PCMU' ? alawmulaw.mulaw.decode(bytes) : alawmulaw.alaw.decode(bytes);
}

/** A new 160-byte frame of silence for the codec. */
export function silenceFrame(codec: AudioCodec): Buffer {
  return Buffer.alloc(SAMPLES_PER_FRAME, SILENCE_BYTE[codec]);
}
