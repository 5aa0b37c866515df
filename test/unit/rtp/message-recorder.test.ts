import { describe, expect, it } from 'vitest';
import { MessageRecorder } from '../../../src/telephony/embedded/rtp/message-recorder.js';
import { encodeG711, SAMPLES_PER_FRAME } from '../../../src/telephony/embedded/rtp/g711.js';
import { decodePcmWav } from '../../../src/messages/wav.js';

const tone = (amplitude: number): Buffer => {
  const pcm = new Int16Array(SAMPLES_PER_FRAME);
  for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(amplitude * Math.sin((2 * Math.PI * 440 * i) / 8000));
  return encodeG711('PCMU', pcm);
};
const speech = tone(8000);
const quiet = tone(50);

describe('MessageRecorder', () => {
  it('keeps what was said up to #, as an 8 kHz WAV of the right length', () => {
    const ends: string[] = [];
    const r = new MessageRecorder('PCMU', { maxMs: 180_000, silenceMs: 5000 }, (c) => ends.push(c));
    for (let i = 0; i < 100; i++) r.push(speech); // 2 s
    r.end('stopped');
    r.push(speech); // after the end: ignored
    expect(ends).toEqual(['stopped']);
    const out = r.result()!;
    expect(out.durationMs).toBe(2000);
    expect(decodePcmWav(out.wav)).toHaveLength(16000);
  });

  it('silence for silenceMs ends it, and the silence is cut off again', () => {
    const ends: string[] = [];
    const r = new MessageRecorder('PCMU', { maxMs: 180_000, silenceMs: 1000 }, (c) => ends.push(c));
    for (let i = 0; i < 50; i++) r.push(speech); // 1 s speech
    for (let i = 0; i < 49; i++) r.push(quiet);
    expect(ends).toEqual([]);
    r.push(quiet); // the 50th silent frame = 1 s of silence
    expect(ends).toEqual(['silence']);
    expect(r.result()!.durationMs).toBe(1000);
  });

  it('only silence: nothing to keep', () => {
    const r = new MessageRecorder('PCMU', { maxMs: 180_000, silenceMs: 200 }, () => undefined);
    for (let i = 0; i < 10; i++) r.push(quiet);
    expect(r.endedBy).toBe('silence');
    expect(r.result()).toBeNull();
  });

  it('the time limit ends it at exactly maxMs', () => {
    const r = new MessageRecorder('PCMA', { maxMs: 1010, silenceMs: 5000 }, () => undefined);
    for (let i = 0; i < 60; i++) r.push(encodeG711('PCMA', new Int16Array(SAMPLES_PER_FRAME).fill(6000)));
    expect(r.endedBy).toBe('maxLength');
    expect(r.result()!.durationMs).toBe(1010);
  });
});
