/**
 * What counts as silence in a message being left, the same on both engines: a 20 ms frame whose
 * RMS is under SILENCE_RMS. The embedded recorder applies it frame by frame as RTP arrives; the
 * drachtio engine applies it to FreeSWITCH's finished file (whose `record` stops on its own
 * silence detection and keeps that silence in the file).
 */

/** Frame RMS under this (about −40 dBFS) is silence; line noise and comfort noise are below. */
export const SILENCE_RMS = 330;
/** 20 ms at 8 kHz: one RTP packet of G.711. */
export const FRAME_SAMPLES = 160;

export function frameRms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

/** `pcm` up to the end of its last 20 ms frame that is not silence; empty when all of it is. */
export function trimTrailingSilence(pcm: Int16Array): Int16Array {
  for (let end = pcm.length; end > 0;) {
    // Frames are counted from the start, as the recorder sees packets; the last may be short.
    const start = Math.floor((end - 1) / FRAME_SAMPLES) * FRAME_SAMPLES;
    if (frameRms(pcm.subarray(start, end)) >= SILENCE_RMS) return pcm.subarray(0, end);
    end = start;
  }
  return pcm.subarray(0, 0);
}
