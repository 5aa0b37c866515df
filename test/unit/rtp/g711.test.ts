import { describe, expect, it } from 'vitest';
import {
  SAMPLES_PER_FRAME,
  SILENCE_BYTE,
  STATIC_PAYLOAD_TYPES,
  audioCodecFromName,
  audioCodecFromStaticPayloadType,
  decodeG711,
  encodeG711,
  silenceFrame,
  type AudioCodec,
} from '../../../src/telephony/embedded/rtp/index.js';
import { tone } from './helpers.js';

const codecs: AudioCodec[] = ['PCMU', 'PCMA'];

describe('G.711', () => {
  it('frames are 20 ms at 8 kHz', () => {
    expect(SAMPLES_PER_FRAME).toBe(160);
  });

  it('uses the RFC 3551 static payload types', () => {
    expect(STATIC_PAYLOAD_TYPES).toEqual({ PCMU: 0, PCMA: 8 });
    expect(audioCodecFromStaticPayloadType(0)).toBe('PCMU');
    expect(audioCodecFromStaticPayloadType(8)).toBe('PCMA');
    expect(audioCodecFromStaticPayloadType(18)).toBeNull();
  });

  it('maps SDP encoding names case-insensitively', () => {
    expect(audioCodecFromName('pcmu')).toBe('PCMU');
    expect(audioCodecFromName('PCMA')).toBe('PCMA');
    expect(audioCodecFromName('G729')).toBeNull();
  });

  it.each(codecs)('%s: a zero sample encodes to the silence byte, which decodes to (near) zero', (codec) => {
    const encoded = encodeG711(codec, new Int16Array(4));
    expect([...encoded]).toEqual([SILENCE_BYTE[codec], SILENCE_BYTE[codec], SILENCE_BYTE[codec], SILENCE_BYTE[codec]]);
    const decoded = decodeG711(codec, Buffer.from([SILENCE_BYTE[codec]]));
    expect(Math.abs(decoded[0]!)).toBeLessThanOrEqual(8);
  });

  it('silence bytes are the G.711 code words for zero', () => {
    expect(SILENCE_BYTE).toEqual({ PCMU: 0xff, PCMA: 0xd5 });
  });

  it.each(codecs)('%s: encodes one byte per sample and round-trips within companding error', (codec) => {
    const pcm = tone(440, 800);
    const encoded = encodeG711(codec, pcm);
    expect(Buffer.isBuffer(encoded)).toBe(true);
    expect(encoded.length).toBe(800);
    const decoded = decodeG711(codec, encoded);
    for (let i = 0; i < pcm.length; i++) {
      // G.711 keeps ~4 bits of mantissa: error under 1/16 of the magnitude plus the step at zero.
      expect(Math.abs(decoded[i]! - pcm[i]!)).toBeLessThanOrEqual(Math.abs(pcm[i]!) / 16 + 16);
    }
  });

  it('μ-law and A-law differ for the same signal', () => {
    const pcm = tone(1000, 160);
    expect(encodeG711('PCMU', pcm).equals(encodeG711('PCMA', pcm))).toBe(false);
  });

  it.each(codecs)('%s: silenceFrame is 160 silence bytes, a new buffer each time', (codec) => {
    const frame = silenceFrame(codec);
    expect(frame.length).toBe(160);
    expect(frame.every((byte) => byte === SILENCE_BYTE[codec])).toBe(true);
    expect(silenceFrame(codec)).not.toBe(frame);
  });
});
