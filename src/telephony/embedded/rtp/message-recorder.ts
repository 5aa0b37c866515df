/**
 * Records a message from the caller's RTP audio: G.711 payloads decoded to 8 kHz linear PCM,
 * ended by the time limit or a run of silence (the caller stopped talking, or stopped sending:
 * a watchdog covers a peer that sends no packets at all). What silence ended is cut off again,
 * so a message does not end in five seconds of nothing.
 *
 * Packets are taken in arrival order; a lost packet is a gap of 20 ms missing from the message,
 * not filled in (a jitter buffer would reorder; on the loopback and LAN paths this engine serves,
 * reordering is rare enough that the message store does not pay for one).
 */
import type { RecordedAudio, RecordingLimits } from '../../call-control.js';
import { encodePcmWav, pcmDurationMs } from '../../../messages/wav.js';
import { frameRms, SILENCE_RMS } from '../../../messages/silence.js';
import { decodeG711, SAMPLE_RATE, type AudioCodec } from './g711.js';

export type RecordingEnd = 'stopped' | 'silence' | 'maxLength';

export class MessageRecorder {
  private readonly chunks: Int16Array[] = [];
  private samples = 0;
  /** Samples up to the end of the last frame that was not silence. */
  private voicedEnd = 0;
  private ended: RecordingEnd | null = null;
  private readonly maxSamples: number;
  private readonly silenceSamples: number;

  constructor(
    private readonly codec: AudioCodec,
    limits: RecordingLimits,
    private readonly onEnd: (cause: RecordingEnd) => void,
  ) {
    this.maxSamples = Math.floor((limits.maxMs * SAMPLE_RATE) / 1000);
    this.silenceSamples = Math.floor((limits.silenceMs * SAMPLE_RATE) / 1000);
  }

  get endedBy(): RecordingEnd | null {
    return this.ended;
  }

  /** One RTP audio payload. */
  push(payload: Uint8Array): void {
    if (this.ended !== null || payload.length === 0) return;
    let pcm = decodeG711(this.codec, payload);
    if (this.samples + pcm.length > this.maxSamples) pcm = pcm.subarray(0, this.maxSamples - this.samples);
    this.chunks.push(pcm);
    this.samples += pcm.length;
    if (frameRms(pcm) >= SILENCE_RMS) this.voicedEnd = this.samples;
    if (this.samples >= this.maxSamples) this.end('maxLength');
    else if (this.samples - this.voicedEnd >= this.silenceSamples) this.end('silence');
  }

  /** Ends the recording from outside (`#`, hang-up, the no-packets watchdog). */
  end(cause: RecordingEnd): void {
    if (this.ended !== null) return;
    this.ended = cause;
    this.onEnd(cause);
  }

  /** The message: everything, or up to the last speech when silence ended it; null when empty. */
  result(): RecordedAudio | null {
    const keep = this.ended === 'silence' ? this.voicedEnd : this.samples;
    if (keep === 0) return null;
    const pcm = new Int16Array(keep);
    let at = 0;
    for (const chunk of this.chunks) {
      if (at >= keep) break;
      const part = chunk.subarray(0, keep - at);
      pcm.set(part, at);
      at += part.length;
    }
    return { wav: encodePcmWav(pcm), durationMs: pcmDurationMs(pcm) };
  }
}
