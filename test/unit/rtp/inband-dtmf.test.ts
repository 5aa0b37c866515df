import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { silentLogger } from '../../../src/log.js';
import type { Digit } from '../../../src/ivr/types.js';
import { encodeG711, type AudioCodec } from '../../../src/telephony/embedded/rtp/g711.js';
import {
  DBM0_AMPLITUDE,
  DTMF_BLOCK_SIZE,
  DTMF_COLUMN_FREQUENCIES,
  DTMF_KEYPAD,
  DTMF_ROW_FREQUENCIES,
  DtmfBlockRejection,
  InbandDtmfDetector,
  createDtmfDebounceState,
  createDtmfDetectorState,
  debounceDtmfBlock,
  feedDtmfSamples,
  resetDtmfDetectorState,
} from '../../../src/telephony/embedded/rtp/inband-dtmf.js';
import { MediaClock } from '../../../src/telephony/embedded/rtp/media-clock.js';
import type { RtpSocketPair } from '../../../src/telephony/embedded/rtp/port-allocator.js';
import { encodeRtpPacket } from '../../../src/telephony/embedded/rtp/rtp-packet.js';
import { RtpSession } from '../../../src/telephony/embedded/rtp/rtp-session.js';
import { FakeMediaTime, TestUdpPeer } from './helpers.js';

const ALL_KEYS = DTMF_KEYPAD.join('');
const CODECS: readonly AudioCodec[] = ['PCMU', 'PCMA'];
/** Alignments of the signal against the 104-sample blocks and the 160-sample packets. */
const OFFSETS = [0, 13, 37, 52, 79, 103, 131];

// ---------------------------------------------------------------------------------------------
// Signal generator: sums of two sines at phone-like levels (low group −8 dBm0, high group
// −6 dBm0: 2 dB pre-emphasis as real keypads send), optional white Gaussian noise.

/** Deterministic PRNG (LCG) so failures reproduce. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
}

const amplitude = (dBm0: number): number => DBM0_AMPLITUDE * 10 ** (dBm0 / 20);

interface Part {
  /** A key, or absent for a pause. */
  key?: Digit;
  ms: number;
  /** Relative frequency deviation of the row tone (and of the column tone unless columnDeviation). */
  deviation?: number;
  columnDeviation?: number;
  lowDbm0?: number;
  highDbm0?: number;
}

function dtmfSignal(parts: readonly Part[], options: { snrDb?: number; seed?: number; offset?: number } = {}): Int16Array {
  const offset = options.offset ?? 0;
  const total = offset + parts.reduce((sum, part) => sum + part.ms * 8, 0);
  const signal = new Float64Array(total);
  const phases = random((options.seed ?? 1) * 7919);
  let position = offset;
  let tonePower = 0;
  for (const part of parts) {
    const count = part.ms * 8;
    if (part.key !== undefined) {
      const index = DTMF_KEYPAD.indexOf(part.key);
      const row = DTMF_ROW_FREQUENCIES[index >> 2]! * (1 + (part.deviation ?? 0));
      const column = DTMF_COLUMN_FREQUENCIES[index & 3]! * (1 + (part.columnDeviation ?? part.deviation ?? 0));
      const low = amplitude(part.lowDbm0 ?? -8);
      const high = amplitude(part.highDbm0 ?? -6);
      tonePower = Math.max(tonePower, (low * low + high * high) / 2);
      const rowPhase = phases() * 2 * Math.PI;
      const columnPhase = phases() * 2 * Math.PI;
      for (let i = 0; i < count; i++) {
        signal[position + i] =
          low * Math.sin((2 * Math.PI * row * i) / 8000 + rowPhase) + high * Math.sin((2 * Math.PI * column * i) / 8000 + columnPhase);
      }
    }
    position += count;
  }
  if (options.snrDb !== undefined) {
    const sigma = Math.sqrt(tonePower / 10 ** (options.snrDb / 10));
    const noise = random(options.seed ?? 1);
    for (let i = 0; i < total; i++) signal[i] = signal[i]! + sigma * gaussian(noise);
  }
  return toPcm(signal);
}

function toPcm(signal: ArrayLike<number>): Int16Array {
  const pcm = new Int16Array(signal.length);
  for (let i = 0; i < signal.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(signal[i]!)));
  return pcm;
}

/** Every key, each `toneMs` long followed by `pauseMs` of silence. */
function keySequence(toneMs: number, pauseMs: number, extra: Omit<Part, 'key' | 'ms'> = {}): Part[] {
  return [{ ms: 20 }, ...DTMF_KEYPAD.flatMap((key): Part[] => [{ key, ms: toneMs, ...extra }, { ms: pauseMs }])];
}

/** Encodes to G.711 and feeds the detector packet by packet, as RtpSession does. */
function detectG711(pcm: Int16Array, codec: AudioCodec, packetSamples = 160): string {
  const bytes = encodeG711(codec, pcm);
  const detector = new InbandDtmfDetector(codec);
  let digits = '';
  for (let i = 0; i < bytes.length; i += packetSamples) detector.receive(bytes.subarray(i, i + packetSamples), (digit) => (digits += digit));
  return digits;
}

/** The per-block verdicts of the core (linear samples, no G.711). */
function blockVerdicts(pcm: ArrayLike<number>): number[] {
  const verdicts: number[] = [];
  feedDtmfSamples(createDtmfDetectorState(), pcm, () => undefined, 0, pcm.length, (verdict) => verdicts.push(verdict));
  return verdicts;
}

// ---------------------------------------------------------------------------------------------

describe('in-band DTMF: detection (Q.23 keys, Q.24 limits)', () => {
  it('detects all 16 keys, 50 ms tone / 50 ms pause, in PCMU and PCMA at any alignment', () => {
    for (const codec of CODECS) {
      for (const offset of OFFSETS) {
        expect(detectG711(dtmfSignal(keySequence(50, 50), { offset, seed: offset + 1 }), codec), `${codec} offset ${offset}`).toBe(ALL_KEYS);
      }
    }
  });

  it('detects all keys at the Q.24 minimum: 40 ms tone / 40 ms pause', () => {
    for (const codec of CODECS) {
      for (const offset of OFFSETS) {
        expect(detectG711(dtmfSignal(keySequence(40, 40), { offset, seed: offset + 3 }), codec), `${codec} offset ${offset}`).toBe(ALL_KEYS);
      }
    }
  });

  it('still detects every key with white noise at 20 and 15 dB SNR', () => {
    for (const codec of CODECS) {
      for (const snrDb of [20, 15]) {
        for (const seed of [1, 2, 3, 4]) {
          const pcm = dtmfSignal(keySequence(50, 50), { snrDb, seed, offset: seed * 29 });
          expect(detectG711(pcm, codec), `${codec} SNR ${snrDb} seed ${seed}`).toBe(ALL_KEYS);
        }
      }
    }
  });

  it('accepts 6 dB twist (high group below low) and 3 dB reverse twist (high group above)', () => {
    for (const offset of OFFSETS) {
      expect(detectG711(dtmfSignal(keySequence(50, 50, { lowDbm0: -6, highDbm0: -12 }), { offset }), 'PCMU'), `normal, offset ${offset}`).toBe(ALL_KEYS);
      expect(detectG711(dtmfSignal(keySequence(50, 50, { lowDbm0: -9, highDbm0: -6 }), { offset }), 'PCMA'), `reverse, offset ${offset}`).toBe(ALL_KEYS);
    }
  });

  it('rejects 12 dB twist either way and 6 dB reverse twist (limits 8 dB / 4 dB)', () => {
    const cases: [string, Part['lowDbm0'], Part['highDbm0']][] = [
      ['high 12 dB below low', -4, -16],
      ['high 12 dB above low', -18, -6],
      ['high 6 dB above low', -12, -6],
    ];
    for (const [name, lowDbm0, highDbm0] of cases) {
      const pcm = dtmfSignal(keySequence(300, 50, { lowDbm0, highDbm0 }));
      for (const codec of CODECS) expect(detectG711(pcm, codec), name).toBe('');
      // Rejected for the right reason: the steady middle of each tone fails the twist check.
      const verdicts = blockVerdicts(pcm);
      expect(verdicts.filter((v) => v >= 0), name).toEqual([]);
      expect(verdicts.filter((v) => v === DtmfBlockRejection.twist).length, name).toBeGreaterThan(16 * 15);
    }
  });

  it('accepts ±1.5 % frequency deviation and rejects ±3.5 % (Q.24)', () => {
    for (const codec of CODECS) {
      for (const deviation of [0.015, -0.015]) {
        for (const offset of OFFSETS) {
          expect(detectG711(dtmfSignal(keySequence(50, 50, { deviation }), { offset }), codec), `${deviation} offset ${offset}`).toBe(ALL_KEYS);
        }
      }
      for (const deviation of [0.035, -0.035]) {
        for (const offset of OFFSETS) {
          expect(detectG711(dtmfSignal(keySequence(50, 50, { deviation }), { offset }), codec), `${deviation} offset ${offset}`).toBe('');
        }
        // Held long, so every block of a steady tone is judged, not just the edges.
        expect(detectG711(dtmfSignal(keySequence(500, 50, { deviation })), codec), `${deviation} long`).toBe('');
        // Only the column tone off: the check is per tone.
        expect(detectG711(dtmfSignal(keySequence(500, 50, { deviation: 0, columnDeviation: deviation })), codec), `${deviation} column only`).toBe('');
      }
    }
  });

  it('rejects 20 ms bursts at every alignment (too short), and tones below −30 dBm0', () => {
    for (const offset of [...OFFSETS, 26, 40, 65, 91]) {
      expect(detectG711(dtmfSignal(keySequence(20, 50), { offset }), 'PCMU'), `offset ${offset}`).toBe('');
    }
    expect(detectG711(dtmfSignal(keySequence(100, 50, { lowDbm0: -36, highDbm0: -36 })), 'PCMU')).toBe('');
    // … while −25 dBm0 per tone is still a key.
    expect(detectG711(dtmfSignal(keySequence(100, 50, { lowDbm0: -25, highDbm0: -25 })), 'PCMU')).toBe(ALL_KEYS);
  });

  it('a key held for 1 s is one press; the same key twice with a 60 ms gap is two', () => {
    for (const codec of CODECS) {
      for (const offset of OFFSETS) {
        expect(detectG711(dtmfSignal([{ ms: 30 }, { key: '5', ms: 1000 }, { ms: 100 }], { offset }), codec)).toBe('5');
        expect(detectG711(dtmfSignal([{ ms: 30 }, { key: '#', ms: 1000 }, { ms: 100 }], { offset, snrDb: 15, seed: offset + 5 }), codec)).toBe('#');
        const twice = dtmfSignal([{ ms: 30 }, { key: '7', ms: 60 }, { ms: 60 }, { key: '7', ms: 60 }, { ms: 60 }], { offset });
        expect(detectG711(twice, codec), `offset ${offset}`).toBe('77');
      }
    }
  });

  it('bridges a 10 ms interruption inside a tone (Q.24): still one press', () => {
    for (const offset of OFFSETS) {
      const pcm = dtmfSignal([{ ms: 30 }, { key: '9', ms: 200 }, { ms: 10 }, { key: '9', ms: 200 }, { ms: 60 }], { offset });
      expect(detectG711(pcm, 'PCMU'), `offset ${offset}`).toBe('9');
    }
  });

  it('a change of key without a pause is a new press', () => {
    const pcm = dtmfSignal([{ ms: 30 }, { key: '1', ms: 100 }, { key: '2', ms: 100 }, { key: '1', ms: 100 }, { ms: 60 }]);
    expect(detectG711(pcm, 'PCMU')).toBe('121');
  });

  it('ignores silence, white noise, a single tone, and a third tone in the same group', () => {
    const silence = new Int16Array(8000);
    const noise = toPcm(Array.from({ length: 8000 }, ((next) => () => 3000 * gaussian(next))(random(9))));
    expect(detectG711(silence, 'PCMU')).toBe('');
    expect(detectG711(silence, 'PCMA')).toBe('');
    expect(detectG711(noise, 'PCMU')).toBe('');
    expect(blockVerdicts(silence).every((v) => v === DtmfBlockRejection.quiet)).toBe(true);

    const a = amplitude(-6);
    const sines = (frequencies: number[]): Int16Array =>
      toPcm(Array.from({ length: 4000 }, (_, i) => frequencies.reduce((sum, f) => sum + a * Math.sin((2 * Math.PI * f * i) / 8000), 0)));
    for (const f of [...DTMF_ROW_FREQUENCIES, ...DTMF_COLUMN_FREQUENCIES]) expect(detectG711(sines([f]), 'PCMU'), `${f} Hz alone`).toBe('');
    // 697 + 1209 + 1336: two column peaks.
    expect(detectG711(sines([697, 1209, 1336]), 'PCMU')).toBe('');
    expect(blockVerdicts(sines([697, 1209, 1336])).filter((v) => v >= 0)).toEqual([]);
    // Control: the two-tone version of the same signal is a key.
    expect(detectG711(sines([697, 1209]), 'PCMU')).toBe('1');
  });

  it('talk-off: zero false digits over every prompt in ivr-prompts/en, at recorded level and 10 dB louder', () => {
    const directory = join(process.cwd(), 'ivr-prompts', 'en');
    const files = readdirSync(directory).filter((name) => name.endsWith('.wav'));
    let seconds = 0;
    const falseDigits: string[] = [];
    for (const name of files) {
      const wav = new wavefile.WaveFile(readFileSync(join(directory, name)));
      const format = wav.fmt as { sampleRate: number; bitsPerSample: number; numChannels: number };
      expect(format, name).toMatchObject({ sampleRate: 8000, bitsPerSample: 16, numChannels: 1 });
      const samples = wav.getSamples(false, Int16Array) as unknown as Int16Array;
      seconds += samples.length / 8000;
      const louder = toPcm(Array.from(samples, (v) => v * 10 ** (10 / 20)));
      for (const codec of CODECS) {
        for (const [level, pcm] of [['recorded', samples], ['+10 dB', louder]] as const) {
          const digits = detectG711(pcm, codec);
          if (digits !== '') falseDigits.push(`${name} ${codec} ${level}: ${digits}`);
        }
      }
    }
    // Not vacuous: a minute and more of speech was listened to.
    expect(files.length).toBeGreaterThanOrEqual(40);
    expect(seconds).toBeGreaterThan(60);
    expect(falseDigits).toEqual([]);
  });

  it('gives the same result however the samples are split into packets', () => {
    const pcm = dtmfSignal(keySequence(50, 50), { snrDb: 20, seed: 11 });
    const expected = blockVerdicts(pcm);
    for (const size of [1, 7, 80, 104, 160, 240, 480, 1000]) {
      const state = createDtmfDetectorState();
      const verdicts: number[] = [];
      let digits = '';
      for (let i = 0; i < pcm.length; i += size) {
        feedDtmfSamples(state, pcm, (d) => (digits += d), i, Math.min(i + size, pcm.length), (v) => verdicts.push(v));
      }
      expect(verdicts, `size ${size}`).toEqual(expected);
      expect(digits, `size ${size}`).toBe(ALL_KEYS);
    }
    // Packets larger than the preallocated decode buffer (60 ms) work too.
    expect(detectG711(pcm, 'PCMU', 800)).toBe(ALL_KEYS);
  });

  it('reset forgets a half-seen block and a held key', () => {
    const pcm = dtmfSignal([{ key: '3', ms: 300 }]);
    const state = createDtmfDetectorState();
    let digits = '';
    feedDtmfSamples(state, pcm, (d) => (digits += d));
    expect(digits).toBe('3');
    feedDtmfSamples(state, pcm, (d) => (digits += d));
    expect(digits).toBe('3'); // still held
    resetDtmfDetectorState(state);
    feedDtmfSamples(state, pcm, (d) => (digits += d));
    expect(digits).toBe('33');
    expect(state.position).toBe((pcm.length % DTMF_BLOCK_SIZE));
  });
});

describe('in-band DTMF: debouncing (pure, exhaustive)', () => {
  /** Runs verdicts through the debouncer; returns the block index of each report and its digit. */
  function run(verdicts: readonly number[]): [number, Digit][] {
    const state = createDtmfDebounceState();
    const reports: [number, Digit][] = [];
    verdicts.forEach((verdict, i) => {
      const digit = debounceDtmfBlock(state, verdict);
      if (digit !== null) reports.push([i, digit]);
    });
    return reports;
  }

  const Q = DtmfBlockRejection.quiet;

  it('examples: two blocks report, a held key reports once, three quiet blocks release', () => {
    expect(run([0])).toEqual([]);
    expect(run([0, 0])).toEqual([[1, '1']]);
    expect(run([0, 0, 0, 0, 0, 0, 0])).toEqual([[1, '1']]);
    expect(run([0, Q, 0])).toEqual([]);
    expect(run([0, 0, Q, Q, 0, 0])).toEqual([[1, '1']]);
    expect(run([0, 0, Q, Q, Q, 0, 0])).toEqual([[1, '1'], [6, '1']]);
    expect(run([0, 0, 1, 1, 0, 0])).toEqual([[1, '1'], [3, '2'], [5, '1']]);
    expect(run([13, 13, DtmfBlockRejection.twist, 13, 13])).toEqual([[1, '0']]);
    // A stray block of another key inside a pause still counts as pause.
    expect(run([0, 0, Q, 1, Q, 0, 0])).toEqual([[1, '1'], [6, '1']]);
  });

  it('matches the specification over every sequence of 8 blocks of {no key, key 1, key 2}', () => {
    const alphabet = [Q, 0, 1];
    const length = 8;
    for (let code = 0; code < alphabet.length ** length; code++) {
      const verdicts: number[] = [];
      for (let i = 0, rest = code; i < length; i++, rest = Math.floor(rest / alphabet.length)) verdicts.push(alphabet[rest % alphabet.length]!);
      const reports = run(verdicts);
      const reportAt = new Map(reports.map(([i, digit]) => [i, DTMF_KEYPAD.indexOf(digit)]));
      const releasedWithin = (key: number, from: number, to: number): boolean => {
        // three consecutive blocks without `key` strictly between `from` and `to` (a ≥ 39 ms pause)
        for (let i = from + 1; i + 2 < to; i++) if (verdicts[i] !== key && verdicts[i + 1] !== key && verdicts[i + 2] !== key) return true;
        return false;
      };
      const held = (key: number, at: number): boolean => {
        // key was reported at some j < at, with no other report and no release since
        for (let j = at - 1; j >= 0; j--) {
          const reported = reportAt.get(j);
          if (reported === undefined) continue;
          return reported === key && !releasedWithin(key, j, at);
        }
        return false;
      };
      for (let i = 0; i < length; i++) {
        const key = verdicts[i]!;
        const due = key >= 0 && i >= 1 && verdicts[i - 1] === key && !held(key, i);
        const label = `${verdicts.join(',')} at ${i}`;
        // Sound and complete: a report exactly when two blocks of a key not held.
        expect(reportAt.get(i), label).toBe(due ? key : undefined);
      }
    }
  });
});

describe('in-band DTMF: sox-generated tones (an independent generator and G.711 encoder)', () => {
  const hasSox = spawnSync('sox', ['--version'], { stdio: 'ignore' }).status === 0;

  it.skipIf(!hasSox)('detects all 16 keys from sox synth, μ-law and A-law', () => {
    for (const [codec, encoding] of [['PCMU', 'u-law'], ['PCMA', 'a-law']] as const) {
      const chunks: Buffer[] = [];
      DTMF_KEYPAD.forEach((key, index) => {
        const row = String(DTMF_ROW_FREQUENCIES[index >> 2]);
        const column = String(DTMF_COLUMN_FREQUENCIES[index & 3]);
        chunks.push(
          execFileSync('sox', ['-n', '-t', 'raw', '-r', '8000', '-e', encoding, '-b', '8', '-c', '1', '-',
            'synth', '0.07', 'sin', row, 'sin', column, 'remix', '1,2', 'gain', '-n', '-6', 'pad', '0.02', '0.05']),
        );
      });
      const bytes = Buffer.concat(chunks);
      expect(bytes.length).toBe(16 * 0.14 * 8000);
      const detector = new InbandDtmfDetector(codec);
      let digits = '';
      for (let i = 0; i < bytes.length; i += 160) detector.receive(bytes.subarray(i, i + 160), (d) => (digits += d));
      expect(digits, codec).toBe(ALL_KEYS);
    }
  });
});

describe('in-band DTMF: RtpSession over real UDP', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function bindLoopback(): Promise<Socket> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    return socket;
  }

  async function session(telephoneEventPayloadType: number | null, codec: AudioCodec) {
    const rtp = await bindLoopback();
    const rtcp = await bindLoopback();
    const sockets: RtpSocketPair = { address: '127.0.0.1', rtpPort: rtp.address().port, rtcpPort: rtcp.address().port, rtp, rtcp };
    const rtpSession = new RtpSession({
      sockets,
      remote: null,
      codec: { name: codec, payloadType: codec === 'PCMU' ? 0 : 8 },
      telephoneEventPayloadType,
      clock: new MediaClock({ time: new FakeMediaTime() }),
      logger: silentLogger,
    });
    cleanups.push(() => rtpSession.close());
    const events: [Digit, string][] = [];
    rtpSession.on('telephoneEvent', (digit, method) => events.push([digit, method]));
    const peer = await TestUdpPeer.open();
    cleanups.push(() => peer.close());
    return { rtpSession, events, peer, port: sockets.rtpPort };
  }

  /** Sends `pcm` as 20 ms RTP packets of the codec, in order, one at a time. */
  async function sendAudio(peer: TestUdpPeer, port: number, codec: AudioCodec, pcm: Int16Array): Promise<number> {
    const bytes = encodeG711(codec, pcm);
    let sequenceNumber = 1000;
    let timestamp = 5000;
    let packets = 0;
    for (let i = 0; i + 160 <= bytes.length; i += 160) {
      const packet = encodeRtpPacket({ marker: i === 0, payloadType: codec === 'PCMU' ? 0 : 8, sequenceNumber: sequenceNumber++, timestamp, ssrc: 0x1234 }, bytes.subarray(i, i + 160));
      timestamp += 160;
      await peer.send(packet, port);
      packets++;
    }
    return packets;
  }

  async function until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
  }

  const keys: Digit[] = ['2', '0', '2', '#', '7', '3', '9', '1', '#', '*', 'D'];
  const tones = (): Int16Array => dtmfSignal([{ ms: 40 }, ...keys.flatMap((key): Part[] => [{ key, ms: 60 }, { ms: 60 }])], { snrDb: 25, seed: 4 });

  it('without telephone-event: tones in PCMU and PCMA packets become telephoneEvent digits (method inband)', async () => {
    for (const codec of CODECS) {
      const { rtpSession, events, peer, port } = await session(null, codec);
      const packets = await sendAudio(peer, port, codec, tones());
      await until(() => rtpSession.stats().packetsReceived === packets);
      expect(events).toEqual(keys.map((key) => [key, 'inband']));
      expect(rtpSession.stats()).toMatchObject({ inbandDigits: keys.length, telephoneEvents: 0 });
    }
  });

  it('with telephone-event negotiated: the detector does not run (no double digits)', async () => {
    const { rtpSession, events, peer, port } = await session(101, 'PCMU');
    const packets = await sendAudio(peer, port, 'PCMU', tones());
    await until(() => rtpSession.stats().packetsReceived === packets);
    expect(events).toEqual([]);
    expect(rtpSession.stats().inbandDigits).toBe(0);
  });
});
