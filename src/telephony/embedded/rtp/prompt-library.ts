/**
 * Prompts, pre-encoded once at load into 20 ms G.711 frames for both codecs, so the send path
 * only copies a ready 160-byte frame per packet: no encoding, no allocation per packet.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodePcmWav, WavFormatError } from '../../../messages/wav.js';
import {
  AUDIO_CODECS,
  FRAME_MS,
  SAMPLES_PER_FRAME,
  SILENCE_BYTE,
  encodeG711,
  type AudioCodec,
} from './g711.js';

export class PromptNotFoundError extends Error {
  readonly code = 'PROMPT_NOT_FOUND';
  constructor(readonly promptId: string) {
    super(`unknown prompt "${promptId}"`);
    this.name = 'PromptNotFoundError';
  }
}

export class PromptFormatError extends Error {
  readonly code = 'PROMPT_FORMAT';
  constructor(readonly file: string, reason: string) {
    super(`prompt ${file}: ${reason} (expected a WAV file, 8000 Hz, mono, 16-bit PCM)`);
    this.name = 'PromptFormatError';
  }
}

interface EncodedPrompt {
  readonly frames: Readonly<Record<AudioCodec, readonly Buffer[]>>;
  readonly durationMs: number;
}

const WAV_EXTENSION = /\.wav$/i;

export class PromptLibrary {
  private constructor(private readonly prompts: ReadonlyMap<string, EncodedPrompt>) {}

  /**
   * Reads every `*.wav` in `dir` (8 kHz mono 16-bit PCM). Prompt id = file name without
   * `.wav`. Rejects with a PromptFormatError naming the file for anything else, so a bad
   * prompt stops the server at start instead of failing in a call.
   */
  static async load(dir: string): Promise<PromptLibrary> {
    const entries = await readdir(dir, { withFileTypes: true });
    const files = entries
      .filter((entry) => entry.isFile() && WAV_EXTENSION.test(entry.name))
      .map((entry) => entry.name)
      .sort();
    const decoded = await Promise.all(
      files.map(async (name) => {
        const path = join(dir, name);
        const pcm = decodeWav(path, await readFile(path));
        return [name.replace(WAV_EXTENSION, ''), pcm, path] as const;
      }),
    );
    const prompts = new Map<string, EncodedPrompt>();
    for (const [id, pcm, path] of decoded) {
      if (prompts.has(id)) throw new PromptFormatError(path, `duplicate prompt id "${id}"`);
      prompts.set(id, encodePrompt(id, pcm));
    }
    return new PromptLibrary(prompts);
  }

  /** Builds a library from in-memory 8 kHz 16-bit PCM (tests, generated tones). */
  static fromPcm(prompts: Readonly<Record<string, Int16Array>> | ReadonlyMap<string, Int16Array>): PromptLibrary {
    const entries = prompts instanceof Map ? [...prompts.entries()] : Object.entries(prompts);
    const encoded = new Map<string, EncodedPrompt>();
    for (const [id, pcm] of entries) encoded.set(id, encodePrompt(id, pcm));
    return new PromptLibrary(encoded);
  }

  has(id: string): boolean {
    return this.prompts.has(id);
  }

  /** The prompt's 160-byte frames for `codec` (shared, never modify). Throws PromptNotFoundError. */
  frames(id: string, codec: AudioCodec): readonly Buffer[] {
    return this.get(id).frames[codec];
  }

  /** Playback time: frames × 20 ms (the last frame is padded with silence). */
  durationMs(id: string): number {
    return this.get(id).durationMs;
  }

  ids(): string[] {
    return [...this.prompts.keys()];
  }

  private get(id: string): EncodedPrompt {
    const prompt = this.prompts.get(id);
    if (!prompt) throw new PromptNotFoundError(id);
    return prompt;
  }
}

function decodeWav(path: string, bytes: Buffer): Int16Array {
  try {
    return decodePcmWav(bytes);
  } catch (error) {
    if (error instanceof WavFormatError) throw new PromptFormatError(path, error.reason);
    throw error;
  }
}

/** `pcm` as 20 ms frames of `codec`, the last one padded with silence; views into one buffer. */
export function pcmFrames(codec: AudioCodec, pcm: Int16Array): Buffer[] {
  const frameCount = Math.ceil(pcm.length / SAMPLES_PER_FRAME);
  const all = Buffer.alloc(frameCount * SAMPLES_PER_FRAME, SILENCE_BYTE[codec]);
  encodeG711(codec, pcm).copy(all, 0);
  const views: Buffer[] = [];
  for (let i = 0; i < frameCount; i++) views.push(all.subarray(i * SAMPLES_PER_FRAME, (i + 1) * SAMPLES_PER_FRAME));
  return views;
}

function encodePrompt(id: string, pcm: Int16Array): EncodedPrompt {
  if (pcm.length === 0) throw new PromptFormatError(id, 'no audio samples');
  const frames = {} as Record<AudioCodec, readonly Buffer[]>;
  // One contiguous buffer per prompt and codec; frames are views into it.
  for (const codec of AUDIO_CODECS) frames[codec] = Object.freeze(pcmFrames(codec, pcm));
  return { frames, durationMs: Math.ceil(pcm.length / SAMPLES_PER_FRAME) * FRAME_MS };
}
