/**
 * In-band DTMF detection (ITU-T Q.23 tones, Q.24 receiver limits) on decoded G.711 at 8 kHz,
 * for peers that offered no RFC 4733 telephone-event payload type: the key press is only in
 * the audio, as a sum of one row tone (697/770/852/941 Hz) and one column tone
 * (1209/1336/1477/1633 Hz).
 *
 * Analysis: Goertzel filters at the eight nominal frequencies over blocks of 104 samples
 * (13 ms), streamed sample by sample (no buffering). Why 104:
 *  - Time: Q.24 asks a receiver to accept tones of 40 ms and to reject much shorter ones. A
 *    40 ms tone (320 samples) always contains two complete 104-sample blocks (320 ≥ 3·104 − 1),
 *    while a block that is only partly tone fails the steadiness check below, so "two
 *    consecutive qualifying blocks" accepts every 40 ms tone and rejects a 20 ms burst (160
 *    samples can fill at most one block). A 20 ms block (one RTP packet) could not do both: a
 *    40 ms tone straddling three packets leaves only one complete packet.
 *  - Frequency: the filter bandwidth (8000/104 ≈ 77 Hz from peak to first null) separates the
 *    closest tones (697/770 Hz: 0.95 bins apart, the neighbour is attenuated by ≈ 25 dB). A
 *    rectangular window, as usual for DTMF: any taper widens the main lobe past that spacing.
 *  - An even length splits into two 52-sample halves, used for the checks below.
 *
 * Checks, per block (see classifyDtmfBlock): both tones above a minimum level; exactly one
 * peak per group, clearly above the other tones of its group; twist limits; the two tones
 * carry most of the block's energy (rejects speech and music, the classic talk-off); the tone
 * is steady over the block (both halves equally strong — rejects a block only partly filled
 * by a tone, and so bursts that are too short); and the measured frequency is within 2.5 % of
 * nominal (Q.24: accept ±1.5 %, reject ±3.5 %). Frequency comes from the phase advance of the
 * Goertzel output: between the two halves of a block (coarse, unambiguous to ±77 Hz) and
 * between consecutive blocks (fine, ±1–2 Hz, ambiguous every 77 Hz, so resolved with the
 * coarse value). No second-harmonic check: the energy-ratio and steadiness checks already
 * reject voiced speech whose fundamental or harmonics sit near a DTMF tone (the talk-off test
 * over all prompts shows zero false digits).
 *
 * Debouncing (debounceDtmfBlock): a key is reported once, after two consecutive qualifying
 * blocks of it (≥ 26 ms of steady tone, always met by a 40 ms tone); it is not reported again
 * until three consecutive blocks (39 ms, i.e. any Q.24 40 ms pause) lacked it, so a held key
 * is one press, a dropout of ≤ 10 ms inside a tone is bridged (Q.24), and two presses of the
 * same key with a normal gap are two. A different key after two qualifying blocks is a new
 * press even without a pause.
 *
 * Shape: the core works on a plain state record (createDtmfDetectorState) with functions that
 * touch nothing but the state they are given — no clock, no I/O — so sequences of samples or
 * block verdicts can be tested exhaustively. The state is updated in place, not copied, so the
 * ~77 blocks a second of every call allocate nothing; all buffers are preallocated and all
 * coefficients precomputed. InbandDtmfDetector is the per-call wrapper for G.711 payloads.
 */
import type { Digit } from '../../../ivr/types.js';
import { SAMPLE_RATE, decodeG711, type AudioCodec } from './g711.js';

/** Goertzel block length in samples (13 ms at 8 kHz); see the module comment. */
export const DTMF_BLOCK_SIZE = 104;
const HALF = DTMF_BLOCK_SIZE / 2;

/** ITU-T Q.23: low (row) group and high (column) group frequencies, Hz. */
export const DTMF_ROW_FREQUENCIES: readonly number[] = [697, 770, 852, 941];
export const DTMF_COLUMN_FREQUENCIES: readonly number[] = [1209, 1336, 1477, 1633];

/** Q.23 keypad, row-major: key index = row * 4 + column. */
export const DTMF_KEYPAD: readonly Digit[] = ['1', '2', '3', 'A', '4', '5', '6', 'B', '7', '8', '9', 'C', '*', '0', '#', 'D'];

/**
 * Amplitude (16-bit linear, as decoded by decodeG711) of a 0 dBm0 sine. G.711's largest code
 * is +3.17 dBm0 (μ-law, decodes to 32124) / +3.14 dBm0 (A-law, 32256); both give ≈ 22 300.
 */
export const DBM0_AMPLITUDE = 22_300;

/** Level limits and ratios; dB values are given as power ratios for the comparisons. */
const dB = (value: number): number => 10 ** (value / 10);
/** Each tone at least −30 dBm0: below the weakest level receivers are commonly specified to accept (≈ −25 dBm0 per tone). */
const MIN_TONE_POWER = (DBM0_AMPLITUDE * DBM0_AMPLITUDE) / 2 * dB(-30);
/** High group up to 8 dB below the low group ("normal" twist: line loss rises with frequency). */
const MAX_NORMAL_TWIST = dB(8);
/** High group up to 4 dB above the low group ("reverse" twist: only phone pre-emphasis). */
const MAX_REVERSE_TWIST = dB(4);
/**
 * The peak of each group at least 6 dB above every other tone of the same group. Not more:
 * with a rectangular window the nearest sidelobes of a tone and of the other group's tone
 * (e.g. 1336 and 941 Hz into 1209 Hz) add up to about −9 dB at 6 dB twist.
 */
const MIN_RELATIVE_PEAK = dB(6);
/**
 * The two tones carry at least 60 % of the block's energy. A clean key measures ≈ 1, with noise
 * at 15 dB SNR ≈ 0.97; the lowest legitimate value is a high column tone 1.5 % off nominal
 * (1633 Hz + 24 Hz loses 1.4 dB in the 77 Hz-wide filter: ≈ 0.8). Speech stays well below: over
 * all the prompts, even 14 dB louder than recorded, no two consecutive blocks pass.
 */
const MIN_TONE_TO_TOTAL = 0.6;
/**
 * The stronger tone within 3.5 dB between the two halves of the block: a steady tone. A block
 * only 77 % filled (a 20 ms burst split evenly over two blocks) is ≥ 5 dB off. Only the stronger
 * tone: in a 52-sample half the other group's tone leaks in at up to −17 dB of its own level,
 * which at 6 dB twist would unbalance the weaker tone's halves by more than that.
 */
const MAX_HALF_IMBALANCE = dB(3.5);
/** Accept up to 2.5 % frequency deviation: midway between Q.24's must-accept 1.5 % and must-reject 3.5 %. */
const MAX_FREQUENCY_DEVIATION = 0.025;
/** Without a previous block to compare with, only the coarse estimate: a looser bound. */
const MAX_COARSE_FREQUENCY_DEVIATION = 0.04;

/** Qualifying blocks of one key before it is reported (2 × 13 ms; a 40 ms tone always has them). */
const BLOCKS_TO_REPORT = 2;
/** Blocks without the held key that end a press (3 × 13 ms = 39 ms; Q.24 pause ≥ 40 ms; a 10 ms dropout is < 3). */
const BLOCKS_TO_RELEASE = 3;

const TONES = 8;
const FREQUENCIES = [...DTMF_ROW_FREQUENCIES, ...DTMF_COLUMN_FREQUENCIES];

/** Per-tone constants, precomputed once. */
const COEF = new Float64Array(TONES); // 2·cos ω, the Goertzel feedback coefficient
const COS_W = new Float64Array(TONES);
const SIN_W = new Float64Array(TONES);
const COS_HALF_END = new Float64Array(TONES); // e^{−jω(HALF−1)}: rotates the half-block output to a DFT value
const SIN_HALF_END = new Float64Array(TONES);
const COS_FULL_END = new Float64Array(TONES); // e^{−jω(N−1)}
const SIN_FULL_END = new Float64Array(TONES);
const COS_BLOCK_ADVANCE = new Float64Array(TONES); // e^{−jωN}: nominal phase advance per block
const SIN_BLOCK_ADVANCE = new Float64Array(TONES);
for (let k = 0; k < TONES; k++) {
  const w = (2 * Math.PI * FREQUENCIES[k]!) / SAMPLE_RATE;
  COEF[k] = 2 * Math.cos(w);
  COS_W[k] = Math.cos(w);
  SIN_W[k] = Math.sin(w);
  COS_HALF_END[k] = Math.cos(w * (HALF - 1));
  SIN_HALF_END[k] = Math.sin(w * (HALF - 1));
  COS_FULL_END[k] = Math.cos(w * (DTMF_BLOCK_SIZE - 1));
  SIN_FULL_END[k] = Math.sin(w * (DTMF_BLOCK_SIZE - 1));
  COS_BLOCK_ADVANCE[k] = Math.cos(w * DTMF_BLOCK_SIZE);
  SIN_BLOCK_ADVANCE[k] = Math.sin(w * DTMF_BLOCK_SIZE);
}

/**
 * Why a block holds no key (negative), next to key indexes 0–15 (DTMF_KEYPAD) as the result
 * of classifyDtmfBlock.
 */
export const DtmfBlockRejection = {
  /** A tone below the minimum level (silence, noise, far too quiet). */
  quiet: -1,
  /** No single clear peak in a group. */
  noPeak: -2,
  /** High and low group levels too different. */
  twist: -3,
  /** The two tones are not most of the energy (speech, music, noise, a third tone). */
  energyRatio: -4,
  /** The tone changes within the block (starts or stops in it). */
  unsteady: -5,
  /** A tone too far from its nominal frequency. */
  frequency: -6,
} as const;

/** One block's measurement: what classifyDtmfBlock looks at. */
export interface DtmfBlockMeasurement {
  /** Per tone k (0–3 rows, 4–7 columns): DFT value of the first half, re at 2k, im at 2k+1. */
  readonly firstHalf: Float64Array;
  /** Per tone: DFT value of the whole block (same layout), referred to the block's first sample. */
  readonly whole: Float64Array;
  /** Sum of squared samples over the block. */
  energy: number;
}

export interface DtmfDetectorState {
  // Goertzel filter state: s[n−1] and s[n−2] per tone.
  readonly s1: Float64Array;
  readonly s2: Float64Array;
  /** Samples of the current block seen so far (0 … DTMF_BLOCK_SIZE−1). */
  position: number;
  /** The block being measured (filled at the half and at the end). */
  readonly current: DtmfBlockMeasurement;
  /** The previous block's whole-block DFT values, for the fine frequency estimate. */
  readonly previousWhole: Float64Array;
  /** Key of the previous block (≥ 0), else a rejection code. */
  previousVerdict: number;
  /** Debouncing: see debounceDtmfBlock. */
  readonly debounce: DtmfDebounceState;
}

export interface DtmfDebounceState {
  /** Key reported and still held (0–15), else −1. */
  held: number;
  /** Key seen in the latest consecutive qualifying blocks (0–15), else −1; and how many. */
  candidate: number;
  candidateBlocks: number;
  /** Consecutive blocks without the held key. */
  quietBlocks: number;
}

export function createDtmfDebounceState(): DtmfDebounceState {
  return { held: -1, candidate: -1, candidateBlocks: 0, quietBlocks: BLOCKS_TO_RELEASE };
}

export function createDtmfDetectorState(): DtmfDetectorState {
  return {
    s1: new Float64Array(TONES),
    s2: new Float64Array(TONES),
    position: 0,
    current: { firstHalf: new Float64Array(2 * TONES), whole: new Float64Array(2 * TONES), energy: 0 },
    previousWhole: new Float64Array(2 * TONES),
    previousVerdict: DtmfBlockRejection.quiet,
    debounce: createDtmfDebounceState(),
  };
}

/** Back to the start: no partial block, no held key. */
export function resetDtmfDetectorState(state: DtmfDetectorState): void {
  state.s1.fill(0);
  state.s2.fill(0);
  state.position = 0;
  state.current.energy = 0;
  state.previousVerdict = DtmfBlockRejection.quiet;
  Object.assign(state.debounce, createDtmfDebounceState());
}

/**
 * Feeds 16-bit linear samples (8 kHz) from `samples[start]` to `samples[end − 1]`; calls
 * `onDigit` for each key press detected. `onBlock`, if given, sees every block's verdict (for
 * tests and diagnostics).
 */
export function feedDtmfSamples(
  state: DtmfDetectorState,
  samples: ArrayLike<number>,
  onDigit: (digit: Digit) => void,
  start = 0,
  end = samples.length,
  onBlock?: (verdict: number) => void,
): void {
  const { s1, s2, current } = state;
  let position = state.position;
  let energy = current.energy;
  for (let i = start; i < end; i++) {
    const x = samples[i]!;
    energy += x * x;
    // Goertzel recurrence: s[n] = x[n] + 2cos(ω)·s[n−1] − s[n−2].
    for (let k = 0; k < TONES; k++) {
      const s0 = x + COEF[k]! * s1[k]! - s2[k]!;
      s2[k] = s1[k]!;
      s1[k] = s0;
    }
    position++;
    if (position === HALF) {
      storeDft(s1, s2, COS_HALF_END, SIN_HALF_END, current.firstHalf);
    } else if (position === DTMF_BLOCK_SIZE) {
      storeDft(s1, s2, COS_FULL_END, SIN_FULL_END, current.whole);
      current.energy = energy;
      const verdict = classifyDtmfBlock(current, state.previousWhole, state.previousVerdict);
      state.previousWhole.set(current.whole);
      state.previousVerdict = verdict;
      onBlock?.(verdict);
      const digit = debounceDtmfBlock(state.debounce, verdict);
      s1.fill(0);
      s2.fill(0);
      position = 0;
      energy = 0;
      if (digit !== null) {
        // State consistent before the callback runs (it may throw or re-enter).
        state.position = 0;
        current.energy = 0;
        onDigit(digit);
      }
    }
  }
  state.position = position;
  current.energy = energy;
}

/**
 * The DFT value Σ x[n]·e^{−jωn} (n = 0 … end) from the Goertzel state after sample `end`:
 * y = s[end] − e^{−jω}·s[end−1] equals e^{jω·end} times it, so rotate by e^{−jω·end}.
 */
function storeDft(s1: Float64Array, s2: Float64Array, cosEnd: Float64Array, sinEnd: Float64Array, out: Float64Array): void {
  for (let k = 0; k < TONES; k++) {
    const yRe = s1[k]! - COS_W[k]! * s2[k]!;
    const yIm = SIN_W[k]! * s2[k]!;
    const c = cosEnd[k]!;
    const s = sinEnd[k]!;
    out[2 * k] = yRe * c + yIm * s;
    out[2 * k + 1] = yIm * c - yRe * s;
  }
}

/**
 * A block's verdict: the key index (0–15, DTMF_KEYPAD) or a DtmfBlockRejection code.
 * `previousWhole` and `previousVerdict`: the previous block's whole-block DFT values and
 * verdict; the fine frequency estimate is used only when that block held the same key.
 */
export function classifyDtmfBlock(block: DtmfBlockMeasurement, previousWhole: Float64Array, previousVerdict: number): number {
  const whole = block.whole;
  // Power of an on-frequency sine of amplitude A: |X|² = (A·N/2)², mean power A²/2 = 2|X|²/N².
  const toMeanPower = 2 / (DTMF_BLOCK_SIZE * DTMF_BLOCK_SIZE);
  let row = 0;
  let column = 4;
  for (let k = 1; k < 4; k++) if (power(whole, k) > power(whole, row)) row = k;
  for (let k = 5; k < 8; k++) if (power(whole, k) > power(whole, column)) column = k;
  const rowPower = power(whole, row) * toMeanPower;
  const columnPower = power(whole, column) * toMeanPower;

  if (rowPower < MIN_TONE_POWER || columnPower < MIN_TONE_POWER) return DtmfBlockRejection.quiet;

  for (let k = 0; k < TONES; k++) {
    if (k === row || k === column) continue;
    const peak = k < 4 ? rowPower : columnPower;
    if (power(whole, k) * toMeanPower * MIN_RELATIVE_PEAK > peak) return DtmfBlockRejection.noPeak;
  }

  if (rowPower > columnPower * MAX_NORMAL_TWIST || columnPower > rowPower * MAX_REVERSE_TWIST) return DtmfBlockRejection.twist;

  // The two sines' mean power against the block's mean power: ≈ 1 for a clean key.
  const meanPower = block.energy / DTMF_BLOCK_SIZE;
  if (rowPower + columnPower < MIN_TONE_TO_TOTAL * meanPower) return DtmfBlockRejection.energyRatio;

  if (!steady(block, rowPower >= columnPower ? row : column)) return DtmfBlockRejection.unsteady;

  const key = row * 4 + (column - 4);
  const previous = previousVerdict === key ? previousWhole : null;
  if (!onFrequency(block, row, previous) || !onFrequency(block, column, previous)) return DtmfBlockRejection.frequency;
  return key;
}

function power(values: Float64Array, k: number): number {
  const re = values[2 * k]!;
  const im = values[2 * k + 1]!;
  return re * re + im * im;
}

/** Both halves of the block carry the tone equally: |first half|² vs |second half|². */
function steady(block: DtmfBlockMeasurement, k: number): boolean {
  const aRe = block.firstHalf[2 * k]!;
  const aIm = block.firstHalf[2 * k + 1]!;
  const bRe = block.whole[2 * k]! - aRe;
  const bIm = block.whole[2 * k + 1]! - aIm;
  const first = aRe * aRe + aIm * aIm;
  const second = bRe * bRe + bIm * bIm;
  return first <= second * MAX_HALF_IMBALANCE && second <= first * MAX_HALF_IMBALANCE;
}

/**
 * Frequency check from phase. For a sine at ω + Δω, the DFT at ω over the second half equals
 * the first half's times e^{jΔω·HALF}, so arg(second · conj(first)) = Δω·HALF — the coarse
 * estimate, unambiguous for |Δf| < 8000/(2·52) ≈ 77 Hz. The same holds between consecutive
 * blocks with e^{jω'N}: arg(whole · conj(previous) · e^{−jωN}) = Δω·N, four times finer (leakage
 * of the other group's tone moves it by ≈ 1–2 Hz) but ambiguous every 8000/104 ≈ 77 Hz, so it
 * is unwrapped to the value nearest the coarse one.
 */
function onFrequency(block: DtmfBlockMeasurement, k: number, previousWhole: Float64Array | null): boolean {
  const aRe = block.firstHalf[2 * k]!;
  const aIm = block.firstHalf[2 * k + 1]!;
  const wRe = block.whole[2 * k]!;
  const wIm = block.whole[2 * k + 1]!;
  const bRe = wRe - aRe;
  const bIm = wIm - aIm;
  // second · conj(first)
  const coarsePhase = Math.atan2(bIm * aRe - bRe * aIm, bRe * aRe + bIm * aIm);
  const coarseHz = (coarsePhase * SAMPLE_RATE) / (2 * Math.PI * HALF);
  const nominal = FREQUENCIES[k]!;
  if (previousWhole === null) return Math.abs(coarseHz) <= MAX_COARSE_FREQUENCY_DEVIATION * nominal;

  const pRe = previousWhole[2 * k]!;
  const pIm = previousWhole[2 * k + 1]!;
  // whole · conj(previous), then · e^{−jωN}
  const zRe = wRe * pRe + wIm * pIm;
  const zIm = wIm * pRe - wRe * pIm;
  const c = COS_BLOCK_ADVANCE[k]!;
  const s = SIN_BLOCK_ADVANCE[k]!;
  const finePhase = Math.atan2(zIm * c - zRe * s, zRe * c + zIm * s);
  const spacing = SAMPLE_RATE / DTMF_BLOCK_SIZE;
  let fineHz = (finePhase * SAMPLE_RATE) / (2 * Math.PI * DTMF_BLOCK_SIZE);
  fineHz += Math.round((coarseHz - fineHz) / spacing) * spacing;
  return Math.abs(fineHz) <= MAX_FREQUENCY_DEVIATION * nominal;
}

/**
 * One block's verdict (key index ≥ 0, or a rejection < 0) into the debouncer; returns the
 * digit to report, else null. See the module comment for the rules.
 */
export function debounceDtmfBlock(state: DtmfDebounceState, verdict: number): Digit | null {
  if (verdict >= 0 && verdict === state.candidate) {
    if (state.candidateBlocks < BLOCKS_TO_REPORT) state.candidateBlocks++;
  } else {
    state.candidate = verdict >= 0 ? verdict : -1;
    state.candidateBlocks = verdict >= 0 ? 1 : 0;
  }
  if (verdict >= 0 && verdict === state.held) {
    // The held key continues: a dropout of fewer than BLOCKS_TO_RELEASE blocks is bridged.
    state.quietBlocks = 0;
    return null;
  }
  // Any block without the held key (no key, or another key not yet confirmed) counts as pause.
  if (state.quietBlocks < BLOCKS_TO_RELEASE) state.quietBlocks++;
  if (state.quietBlocks >= BLOCKS_TO_RELEASE) state.held = -1;
  if (state.candidateBlocks >= BLOCKS_TO_REPORT) {
    state.held = verdict;
    state.quietBlocks = 0;
    return DTMF_KEYPAD[verdict]!;
  }
  return null;
}

/** Linear PCM value for each G.711 code word, built once with decodeG711 (no per-packet decode buffers). */
const DECODE_TABLES: Readonly<Record<AudioCodec, Int16Array>> = {
  PCMU: decodeG711('PCMU', allCodeWords()),
  PCMA: decodeG711('PCMA', allCodeWords()),
};

function allCodeWords(): Uint8Array {
  const words = new Uint8Array(256);
  for (let i = 0; i < 256; i++) words[i] = i;
  return words;
}

/** Initial decode buffer: 60 ms, the largest common G.711 ptime; grows if a bigger packet arrives. */
const INITIAL_DECODE_SAMPLES = 480;

/**
 * One call's in-band DTMF detector: G.711 payloads in (in arrival order), digits out. Packet
 * loss or reordering only costs the block it falls into.
 */
export class InbandDtmfDetector {
  private readonly table: Int16Array;
  private readonly state = createDtmfDetectorState();
  private decoded = new Int16Array(INITIAL_DECODE_SAMPLES);

  constructor(codec: AudioCodec) {
    this.table = DECODE_TABLES[codec];
  }

  /** Decodes one RTP payload and runs it through the detector; `onDigit` per key press. */
  receive(payload: Uint8Array, onDigit: (digit: Digit) => void): void {
    if (payload.length > this.decoded.length) this.decoded = new Int16Array(payload.length);
    const decoded = this.decoded;
    const table = this.table;
    for (let i = 0; i < payload.length; i++) decoded[i] = table[payload[i]!]!;
    feedDtmfSamples(this.state, decoded, onDigit, 0, payload.length);
  }

  reset(): void {
    resetDtmfDetectorState(this.state);
  }
}
