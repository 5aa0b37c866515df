/**
 * End to end at the media level: a whole vmaccess server (embedded SIP/RTP engine, demo tenant,
 * PGlite) called by the independent test UA in test/support/test-ua.ts. sipp proves the call
 * flows; these tests look at what a caller actually hears: paced G.711 carrying the right
 * prompt, barge-in silencing it, and a nonexistent mailbox sounding exactly like a wrong code.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import wavefile from 'wavefile';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promptsDir } from '../../src/paths.js';
import { listAuditEvents } from '../../src/store/audit.js';
import { decodeG711 } from '../../src/telephony/embedded/rtp/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { bestCorrelation } from '../support/heard.js';
import {
  TestUa, frameEnergy, type ReceivedRtpPacket, type TestUaCodec, type TestUaOptions,
} from '../support/test-ua.js';

const PROMPTS_DIR = join(promptsDir, 'en');
/** A 20 ms frame louder than this is speech (the prompts' spoken frames are RMS 1000–8000). */
const SPEECH_RMS = 200;
/** Quieter than this is silence (G.711 silence decodes to RMS 0 for PCMU, 8 for PCMA). */
const SILENCE_RMS = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function readPrompt(id: string): Promise<Int16Array> {
  const wav = new wavefile.WaveFile(await readFile(join(PROMPTS_DIR, `${id}.wav`)));
  const fmt = wav.fmt as { sampleRate: number; numChannels: number };
  expect([fmt.sampleRate, fmt.numChannels, wav.bitDepth]).toEqual([8000, 1, '16']);
  return wav.getSamples(false, Int16Array) as unknown as Int16Array;
}

function packetRms(ua: TestUa, packet: ReceivedRtpPacket): number {
  return frameEnergy(decodeG711(ua.codec, packet.payload))[0] ?? 0;
}

/** Resolves with the arrival time of the first speech packet that arrived after `sinceMs`. */
async function waitForSpeech(ua: TestUa, sinceMs: number, timeoutMs: number, what: string): Promise<number> {
  let found: ReceivedRtpPacket | undefined;
  await waitUntil(() => {
    found = ua.audioPacketsSince(sinceMs).find((p) => packetRms(ua, p) > SPEECH_RMS);
    return found !== undefined;
  }, timeoutMs, what);
  return found!.arrivalMs;
}

/** Correlation of the first `length` samples of `reference` with `received` (heard.ts align). */
function bestFrameAlignedCorrelation(reference: Int16Array, received: Int16Array, length: number, maxLagFrames: number): number {
  return bestCorrelation(reference.subarray(0, length), received, maxLagFrames);
}

describe('prompt audio heard by a SIP caller (embedded engine, pglite)', () => {
  let t: TestServer;
  let target: { address: string; port: number };

  beforeAll(async () => {
    t = await startTestServer('pglite');
    const [address, port] = t.sipTarget.split(':');
    target = { address: address!, port: Number(port) };
  });
  afterAll(async () => {
    await t?.stop();
  });

  const call = (caller: string, over: Partial<TestUaOptions> = {}): Promise<TestUa> =>
    TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: `sip:${caller}@demo.local`, ...over });

  const events = async (mailbox: string): Promise<string[]> =>
    (await listAuditEvents(t.server.core.db, { domain: 'demo.local' }))
      .filter((e) => e.mailbox === mailbox)
      .map((e) => e.event);

  /** Ends the call from our side unless the server already did; always closes the sockets. */
  async function finish(ua: TestUa): Promise<void> {
    try {
      await ua.hangup();
    } catch {
      // the assertions already said what went wrong
    } finally {
      ua.close();
    }
  }

  it.each([['PCMU', 0], ['PCMA', 8]] as Array<[TestUaCodec, number]>)(
    '%s: the caller hears "enter your access code" as paced G.711 (payload type %i, 50 packets/s)',
    async (codec, payloadType) => {
      const reference = await readPrompt('enter-access-code');
      const ua = await call('201', { codec });
      try {
        await sleep(ua.answeredAtMs + 2100 - performance.now());
        const window = ua.received.filter((p) => p.arrivalMs > ua.answeredAtMs && p.arrivalMs <= ua.answeredAtMs + 2000);
        expect(window.length, 'packets in the first 2 s').toBeGreaterThanOrEqual(90);
        expect(new Set(window.map((p) => p.payloadType))).toEqual(new Set([payloadType]));
        expect(new Set(window.map((p) => p.ssrc)).size).toBe(1);
        expect(window.every((p) => p.payload.length === 160)).toBe(true);
        const gaps = window.slice(1).map((p, i) => ({
          seq: (p.seq - window[i]!.seq) & 0xffff,
          timestamp: (p.timestamp - window[i]!.timestamp) >>> 0,
        }));
        // RFC 3550 §5.1: seq +1 per packet; the timestamp advances 160 per 20 ms slot. A slot the
        // server's clock skipped under load (it never bursts) shows as a jump of a multiple of 160.
        expect(gaps.filter((g) => g.seq !== 1 || g.timestamp % 160 !== 0 || g.timestamp === 0), 'seq +1, timestamp +k*160').toEqual([]);
        expect(gaps.filter((g) => g.timestamp === 160).length / gaps.length, 'share of exact 20 ms steps').toBeGreaterThan(0.9);

        const pcm = ua.audioSince(0);
        const energy = frameEnergy(pcm);
        expect(energy.filter((rms) => rms > SPEECH_RMS).length, 'speech frames').toBeGreaterThan(50);
        expect(Math.max(...energy)).toBeGreaterThan(1000);
        // The first second of the prompt, through a G.711 round trip: same waveform.
        expect(bestFrameAlignedCorrelation(reference, pcm, 8000, 25)).toBeGreaterThan(0.9);
      } finally {
        await finish(ua);
      }
    },
  );

  it('a key pressed during the prompt stops it (barge-in)', async () => {
    const ua = await call('201');
    try {
      await waitForSpeech(ua, 0, 3000, 'the first prompt');
      await sleep(300);
      const pressedAt = performance.now();
      await ua.pressKeys('4');
      // The prompt (3.3 s, no pause longer than 160 ms) would still be playing in this window;
      // the server keeps sending RTP, now silence.
      await sleep(pressedAt + 1600 - performance.now());
      const after = ua.audioPacketsSince(pressedAt + 1000).filter((p) => p.arrivalMs <= pressedAt + 1600);
      expect(after.length, 'RTP keeps flowing after barge-in').toBeGreaterThanOrEqual(20);
      const loud = after.map((p) => packetRms(ua, p)).filter((rms) => rms >= SILENCE_RMS);
      expect(loud, 'frames above silence 1 s after the key').toEqual([]);
      expect(ua.byeReceived).toBe(false);
    } finally {
      await finish(ua);
    }
  });

  it('a nonexistent mailbox and a wrong code sound the same', async () => {
    /** Caller 299 has no mailbox: account number, then a wrong code; returns what followed the last #. */
    async function failLogin(mailbox: string): Promise<{ ua: TestUa; payloads: Buffer[] }> {
      const ua = await call('299');
      const accountPrompt = await readPrompt('enter-account-number');
      await waitForSpeech(ua, 0, 3000, '"enter your account number"');
      await waitUntil(() => ua.audioSince(0).length >= 8000, 3000, 'a second of audio');
      expect(bestFrameAlignedCorrelation(accountPrompt, ua.audioSince(0), 4000, 25), 'first prompt is "enter your account number"')
        .toBeGreaterThan(0.9);
      await ua.pressKeys(`${mailbox}#`);
      const afterAccount = performance.now();
      await waitForSpeech(ua, afterAccount, 3000, '"enter your access code"');
      await ua.pressKeys('0000'); // the first key stops the prompt
      const beforeHash = performance.now();
      await ua.pressKeys('#');
      // Record until the next prompts have ended: speech, then 1.5 s without any (the server
      // waits 5 s for input before it repeats itself).
      await waitForSpeech(ua, beforeHash, 5000, 'the answer to the wrong login');
      await waitUntil(() => {
        const speech = ua.audioPacketsSince(beforeHash).filter((p) => packetRms(ua, p) > SPEECH_RMS);
        return performance.now() - speech[speech.length - 1]!.arrivalMs > 1500;
      }, 15_000, 'the prompts after the wrong login to end');
      const packets = ua.audioPacketsSince(beforeHash);
      const loud = packets.map((p) => packetRms(ua, p) > SPEECH_RMS);
      const first = loud.indexOf(true);
      const last = loud.lastIndexOf(true);
      return { ua, payloads: packets.slice(first, last + 1).map((p) => p.payload) };
    }

    const results = await Promise.allSettled([failLogin('202'), failLogin('298')]);
    try {
      const [wrongCode, noMailbox] = results.map((r) => {
        if (r.status === 'rejected') throw r.reason;
        return r.value;
      }) as [{ ua: TestUa; payloads: Buffer[] }, { ua: TestUa; payloads: Buffer[] }];
      expect(wrongCode.payloads.length, 'speech frames after the wrong code').toBeGreaterThan(50);
      const firstDifference = wrongCode.payloads.findIndex((p, i) => {
        const other = noMailbox.payloads[i];
        return other === undefined || !p.equals(other);
      });
      expect({ frames: noMailbox.payloads.length, firstDifference }, 'the same prompt frames, byte for byte')
        .toEqual({ frames: wrongCode.payloads.length, firstDifference: -1 });
      expect(wrongCode.ua.byeReceived, 'wrong code: the call is still up').toBe(false);
      expect(noMailbox.ua.byeReceived, 'no mailbox: the call is still up').toBe(false);
      expect(await events('202')).toContain('login_failed');
      expect(await events('298')).toContain('login_failed');
    } finally {
      for (const r of results) if (r.status === 'fulfilled') await finish(r.value.ua);
    }
  }, 60_000);

  it('logs in with keys sent by SIP INFO, and * says goodbye with a BYE', async () => {
    const ua = await call('201');
    try {
      await waitForSpeech(ua, 0, 3000, '"enter your access code"');
      for (const key of '4826#') expect(await ua.sendInfo(key), `INFO ${key === '#' ? '#' : 'digit'}`).toBe(200);
      const afterHash = performance.now();
      await waitForSpeech(ua, afterHash, 5000, 'the main menu');
      expect(await ua.sendInfo('*')).toBe(200);
      await ua.waitForBye(10_000);
      expect(await events('201')).toEqual(['login_succeeded']);
    } finally {
      await finish(ua);
    }
  }, 30_000);
});
