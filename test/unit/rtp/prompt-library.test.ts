import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PromptFormatError,
  PromptLibrary,
  PromptNotFoundError,
  SILENCE_BYTE,
  decodeG711,
  encodeG711,
} from '../../../src/telephony/embedded/rtp/index.js';
import { tone, wavBytes } from './helpers.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmaccess-prompts-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PromptLibrary.load', () => {
  it('loads every *.wav, id = file name without .wav; ignores other files and directories', async () => {
    await writeFile(join(dir, 'welcome.wav'), wavBytes({ samples: tone(440, 1000) }));
    await writeFile(join(dir, 'goodbye.WAV'), wavBytes({ samples: tone(440, 160) }));
    await writeFile(join(dir, 'prompts.txt'), 'welcome: Welcome\n');
    await mkdir(join(dir, 'sub.wav'));
    const library = await PromptLibrary.load(dir);
    expect(library.ids()).toEqual(['goodbye', 'welcome']);
    expect(library.has('welcome')).toBe(true);
    expect(library.has('prompts')).toBe(false);
    expect(library.has('sub')).toBe(false);
  });

  it('pre-encodes 160-byte frames per codec, last frame padded with silence', async () => {
    const pcm = tone(440, 1000); // 6 full frames + 40 samples
    await writeFile(join(dir, 'tone.wav'), wavBytes({ samples: pcm }));
    const library = await PromptLibrary.load(dir);
    expect(library.durationMs('tone')).toBe(7 * 20);
    for (const codec of ['PCMU', 'PCMA'] as const) {
      const frames = library.frames('tone', codec);
      expect(frames).toHaveLength(7);
      for (const frame of frames) expect(frame.length).toBe(160);
      const joined = Buffer.concat(frames);
      expect(joined.subarray(0, 1000).equals(encodeG711(codec, pcm))).toBe(true);
      expect(joined.subarray(1000).every((byte) => byte === SILENCE_BYTE[codec])).toBe(true);
      // The audio survives: the decoded first frame is close to the tone.
      const decoded = decodeG711(codec, frames[0]!);
      for (let i = 0; i < 160; i++) expect(Math.abs(decoded[i]! - pcm[i]!)).toBeLessThanOrEqual(Math.abs(pcm[i]!) / 16 + 16);
    }
    expect(library.frames('tone', 'PCMU')[0]!.equals(library.frames('tone', 'PCMA')[0]!)).toBe(false);
  });

  it('returns the same frame array every time (encoded once, at load) and a frozen one', async () => {
    await writeFile(join(dir, 'tone.wav'), wavBytes({ samples: tone(440, 320) }));
    const library = await PromptLibrary.load(dir);
    const frames = library.frames('tone', 'PCMU');
    expect(library.frames('tone', 'PCMU')).toBe(frames);
    expect(Object.isFrozen(frames)).toBe(true);
    expect(frames).toHaveLength(2);
  });

  it.each([
    ['stereo', { channels: 2, samples: [tone(440, 160), tone(440, 160)] }, /2 channels/],
    ['16 kHz', { sampleRate: 16000, samples: tone(440, 320) }, /16000 Hz/],
    ['8-bit', { bitDepth: '8', samples: new Uint8Array(160).fill(128) }, /8 bits/],
    ['32-bit float', { bitDepth: '32f', samples: new Float64Array(160) }, /32f bits/],
  ])('rejects %s WAV naming the file', async (_name, options, reason) => {
    await writeFile(join(dir, 'ok.wav'), wavBytes({ samples: tone(440, 160) }));
    await writeFile(join(dir, 'bad.wav'), wavBytes(options as Parameters<typeof wavBytes>[0]));
    const error = await PromptLibrary.load(dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PromptFormatError);
    expect((error as Error).message).toContain(join(dir, 'bad.wav'));
    expect((error as Error).message).toMatch(reason);
    expect((error as PromptFormatError).code).toBe('PROMPT_FORMAT');
  });

  it('rejects a file that is not a WAV at all', async () => {
    await writeFile(join(dir, 'noise.wav'), Buffer.from('definitely not RIFF data'));
    await expect(PromptLibrary.load(dir)).rejects.toThrow(/noise\.wav: not a readable WAV file/);
  });

  it('rejects an empty WAV', async () => {
    await writeFile(join(dir, 'empty.wav'), wavBytes({ samples: new Int16Array(0) }));
    await expect(PromptLibrary.load(dir)).rejects.toThrow(/empty\.wav: no audio samples/);
  });

  it('rejects a missing directory', async () => {
    await expect(PromptLibrary.load(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('PromptLibrary.fromPcm', () => {
  it('builds a library from in-memory PCM', () => {
    const library = PromptLibrary.fromPcm({ beep: tone(1000, 160), long: tone(440, 161) });
    expect(library.ids().sort()).toEqual(['beep', 'long']);
    expect(library.frames('beep', 'PCMA')).toHaveLength(1);
    expect(library.frames('long', 'PCMU')).toHaveLength(2);
    expect(library.durationMs('long')).toBe(40);
  });

  it('accepts a Map', () => {
    const library = PromptLibrary.fromPcm(new Map([['x', tone(440, 10)]]));
    expect(library.frames('x', 'PCMU')[0]!.length).toBe(160);
  });

  it('unknown ids throw PromptNotFoundError', () => {
    const library = PromptLibrary.fromPcm({});
    expect(library.has('x')).toBe(false);
    expect(() => library.frames('x', 'PCMU')).toThrow(PromptNotFoundError);
    expect(() => library.durationMs('x')).toThrow(/unknown prompt "x"/);
  });
});
