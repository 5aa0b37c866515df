/**
 * WAV as the message store keeps it and the prompts are shipped: 8 kHz, mono, 16-bit linear PCM
 * (what G.711 decodes to). One reader with one set of checks for prompts, recordings and
 * uploads; one writer for recordings.
 */
import wavefile from 'wavefile';

export const WAV_SAMPLE_RATE = 8000;
/** WAVE_FORMAT_PCM and WAVE_FORMAT_EXTENSIBLE (whose 16-bit integer subformat is still PCM). */
const PCM_FORMAT_TAGS = new Set([1, 0xfffe]);

/** The WavFormatError reason of a well-formed WAV that holds no audio (a recording of nothing). */
export const NO_AUDIO_SAMPLES = 'no audio samples';

export class WavFormatError extends Error {
  constructor(readonly reason: string) {
    super(`${reason} (expected a WAV file, 8000 Hz, mono, 16-bit PCM)`);
    this.name = 'WavFormatError';
  }
}

/** The samples of an 8 kHz mono 16-bit PCM WAV; WavFormatError for anything else or no audio. */
export function decodePcmWav(bytes: Uint8Array): Int16Array {
  let wav: InstanceType<typeof wavefile.WaveFile>;
  try {
    wav = new wavefile.WaveFile(bytes);
  } catch (error) {
    throw new WavFormatError(`not a readable WAV file (${(error as Error).message})`);
  }
  const fmt = wav.fmt as { audioFormat: number; numChannels: number; sampleRate: number };
  if (!PCM_FORMAT_TAGS.has(fmt.audioFormat) || wav.bitDepth !== '16') {
    throw new WavFormatError(`format tag ${fmt.audioFormat}, ${wav.bitDepth} bits is not 16-bit PCM`);
  }
  if (fmt.numChannels !== 1) throw new WavFormatError(`${fmt.numChannels} channels`);
  if (fmt.sampleRate !== WAV_SAMPLE_RATE) throw new WavFormatError(`${fmt.sampleRate} Hz`);
  const samples = wav.getSamples(false, Int16Array) as unknown as Int16Array;
  if (samples.length === 0) throw new WavFormatError(NO_AUDIO_SAMPLES);
  return samples;
}

/** An 8 kHz mono 16-bit PCM WAV of `samples`. */
export function encodePcmWav(samples: Int16Array): Buffer {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, WAV_SAMPLE_RATE, '16', samples);
  return Buffer.from(wav.toBuffer());
}

/** Length of `samples` at 8 kHz, in milliseconds. */
export function pcmDurationMs(samples: Int16Array | number): number {
  const n = typeof samples === 'number' ? samples : samples.length;
  return (n * 1000) / WAV_SAMPLE_RATE;
}
