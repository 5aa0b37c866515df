/**
 * What a test caller heard: the server's audio, decoded, compared with the prompt WAV files by
 * normalised cross-correlation — so a test can say "the caller heard 'login incorrect'", not
 * only "some audio came".
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { expect } from 'vitest';
import { promptsDir } from '../../src/paths.js';
import type { PromptId } from '../../src/ivr/prompts.js';
import { decodeG711 } from '../../src/telephony/embedded/rtp/index.js';
import { frameEnergy, type ReceivedRtpPacket, type TestUa } from './test-ua.js';
import { sleep, waitFor } from './wait.js';

const PROMPTS_DIR = join(promptsDir, 'en');
/** A 20 ms frame louder than this is speech (the prompts' spoken frames are RMS 1000–8000). */
export const SPEECH_RMS = 200;

export async function readPrompt(id: PromptId): Promise<Int16Array> {
  const wav = new wavefile.WaveFile(await readFile(join(PROMPTS_DIR, `${id}.wav`)));
  return wav.getSamples(false, Int16Array) as unknown as Int16Array;
}

export function packetRms(ua: TestUa, packet: ReceivedRtpPacket): number {
  return frameEnergy(decodeG711(ua.codec, packet.payload))[0] ?? 0;
}

/**
 * Normalised cross-correlation of `reference` (whole) with `received` at frame-aligned lags (the
 * server starts every prompt and recording on a packet boundary): the best lag (in samples) and
 * its value, over lags 0..maxLagFrames (default: as far as `received` goes). `step` samples every
 * n-th sample, for long references.
 */
export function align(
  reference: Int16Array, received: Int16Array, maxLagFrames = Number.POSITIVE_INFINITY, step = 1,
): { lag: number; correlation: number } {
  let best = { lag: -1, correlation: -1 };
  for (let lag = 0; lag <= maxLagFrames; lag++) {
    const offset = lag * 160;
    if (offset + reference.length > received.length) break;
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = 0; i < reference.length; i += step) {
      const x = reference[i]!;
      const y = received[offset + i]!;
      xy += x * y;
      xx += x * x;
      yy += y * y;
    }
    const c = xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : -1;
    if (c > best.correlation) best = { lag: offset, correlation: c };
  }
  return best;
}

/** The best correlation of `reference` in `received` over lags 0..maxLagFrames (see align). */
export function bestCorrelation(reference: Int16Array, received: Int16Array, maxLagFrames: number): number {
  return align(reference, received, maxLagFrames).correlation;
}

/** Resolves with the first speech packet that arrived after `sinceMs`. */
export async function speechAfter(ua: TestUa, sinceMs: number): Promise<ReceivedRtpPacket> {
  let onset: ReceivedRtpPacket | undefined;
  await waitFor(() => {
    onset = ua.audioPacketsSince(sinceMs).find((p) => packetRms(ua, p) > SPEECH_RMS);
    return onset !== undefined;
  }, 8000, 'speech');
  return onset!;
}

/**
 * What the caller heard first after `sinceMs`, told apart from look-alikes: waits for speech,
 * records as long as the expected prompt (the first candidate) lasts, at most 2.4 s — enough to
 * get past shared openings such as "Access codes must not…" — and ranks every candidate by its
 * correlation with that recording over the same length, best first.
 */
export async function heard(
  ua: TestUa, sinceMs: number, candidates: readonly PromptId[], maxLagFrames = 10,
): Promise<Array<[PromptId, number]>> {
  const references = await Promise.all(candidates.map(async (id) => [id, await readPrompt(id)] as const));
  const window = Math.min(references[0]![1].length, 2.4 * 8000);
  const onset = await speechAfter(ua, sinceMs);
  // The prompt files start with speech; a soft first syllable may sit a frame or two before
  // the first loud frame.
  const fromFrame = Math.max(0, ua.audioPacketsSince(sinceMs).indexOf(onset) - 3);
  await waitFor(() => ua.audioSince(sinceMs).length >= (fromFrame + maxLagFrames) * 160 + window, 15_000, 'the whole prompt');
  const pcm = ua.audioSince(sinceMs).subarray(fromFrame * 160);
  return references
    .map(([id, reference]) => [id, bestCorrelation(reference.subarray(0, window), pcm, maxLagFrames)] as [PromptId, number])
    .sort((a, b) => b[1] - a[1]);
}


/** Presses keys and waits until the server answers with a new prompt (speech after the last key). */
export async function pressAndHearReply(ua: TestUa, keys: string): Promise<void> {
  await ua.pressKeys(keys.slice(0, -1));
  await sleep(100);
  const before = performance.now();
  await ua.pressKeys(keys.slice(-1));
  await speechAfter(ua, before);
}

/**
 * Presses keys and says which of `candidates` the caller heard after the last one (which must
 * be a clear match: correlation above 0.9). The clock starts before the last key only: the
 * first keys cut the prompt that was playing, whose last packets are still on their way.
 */
export async function pressAndHear(ua: TestUa, keys: string, candidates: readonly PromptId[]): Promise<PromptId> {
  await ua.pressKeys(keys.slice(0, -1));
  await sleep(100);
  const before = performance.now();
  await ua.pressKeys(keys.slice(-1));
  const ranked = await heard(ua, before, candidates);
  expect(ranked[0]![1], JSON.stringify(ranked)).toBeGreaterThan(0.9);
  return ranked[0]![0];
}
