/**
 * Messages on the drachtio engine, against FakeDrachtioServer and FakeFreeSwitch (named fakes:
 * neither drachtio-server nor FreeSWITCH runs here; drachtio-srf, drachtio-fsmrf and the engine
 * run unchanged), with message audio in files and in the database:
 *
 * - FreeSWITCH records into incoming/ of the message folder (never a name the orphan sweep of
 *   another server could take for a leftover), and the file is gone once the message is stored;
 * - a recording FreeSWITCH ended on its own (silence) has that silence cut, as on the embedded
 *   engine; one the caller ended with # keeps everything;
 * - a recording that is not usable audio: the caller hears "try again later", an error is logged,
 *   nothing is stored — not the silent goodbye of a message too short to keep;
 * - playback: the file store's own file, or (database) a copy in playback/ removed afterwards.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePcmWav } from '../../../src/messages/wav.js';
import type { DrachtioEngine } from '../../../src/telephony/drachtio/engine.js';
import { FakeCaller } from '../../support/fakes/fake-caller.js';
import { FakeDrachtioServer } from '../../support/fakes/fake-drachtio-server.js';
import { FakeFreeSwitch, type FakeChannel } from '../../support/fakes/fake-freeswitch.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';
import { waitFor } from '../../support/wait.js';

const DRACHTIO_SECRET = 'fake-drachtio-secret';
const ESL_PASSWORD = 'fake-esl-password';

/** `ms` of a loud tone (speech level), then `silenceMs` of nothing. */
function speechThenSilence(ms: number, silenceMs: number): Int16Array {
  const pcm = new Int16Array(((ms + silenceMs) * 8000) / 1000);
  for (let i = 0; i < (ms * 8000) / 1000; i++) pcm[i] = Math.round(5000 * Math.sin(i / 3));
  return pcm;
}

for (const store of ['file', 'database'] as const) {
  describe(`drachtio engine messages (audio store: ${store})`, () => {
    let drachtio: FakeDrachtioServer;
    let freeswitch: FakeFreeSwitch;
    let t: TestServer;
    let callerPort = store === 'file' ? 5600 : 5700;
    const engine = (): DrachtioEngine => t.server.engine as DrachtioEngine;
    const played = (channel: FakeChannel, prompt: string): boolean => channel.playbacks.some((p) => p.files.some((f) => f.endsWith(`/${prompt}.wav`)));
    const messagesDir = (): string => t.config.freeswitch.messagesDir;

    /** A caller to `requestUri`; resolves once FreeSWITCH's channel plays the first prompt. */
    async function call(requestUri: string, from: string): Promise<{ caller: FakeCaller; channel: FakeChannel }> {
      const caller = new FakeCaller(drachtio, '127.0.0.1', callerPort++);
      const channelP = freeswitch.nextChannel();
      const final = await caller.invite({ requestUri, from });
      expect(final.status, final.startLine).toBe(200);
      const channel = await channelP;
      await waitFor(() => channel.playbacks.length > 0, 5000, 'the first prompt');
      return { caller, channel };
    }

    /** Leaves a message for `mailbox`: skips the greeting with #, then lets `end` finish the recording. */
    async function leave(mailbox: string, speech: Int16Array | null, end: (channel: FakeChannel) => Promise<void> | void, bytes: Buffer | null = null): Promise<FakeChannel> {
      const { channel } = await call(`sip:vm-${mailbox}@demo.local`, '<sip:5551234@example.net>');
      channel.speech = speech;
      channel.recordingBytes = bytes;
      await channel.pressDigit('#');
      await waitFor(() => channel.recordings.length === 1, 5000, 'record');
      await end(channel);
      return channel;
    }

    beforeAll(async () => {
      drachtio = await FakeDrachtioServer.start({ secret: DRACHTIO_SECRET });
      freeswitch = await FakeFreeSwitch.start(drachtio, { password: ESL_PASSWORD, playbackSpeed: 8 });
      t = await startTestServer('pglite', {
        SIP_ENGINE: 'drachtio', MESSAGE_AUDIO_STORE: store,
        DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(drachtio.port), DRACHTIO_SECRET,
        FREESWITCH_HOST: '127.0.0.1', FREESWITCH_PORT: String(freeswitch.eslPort), FREESWITCH_SECRET: ESL_PASSWORD,
        ESL_LISTEN_ADDRESS: '127.0.0.1', ESL_LISTEN_PORT: '0',
      });
      await drachtio.waitForApp();
      await waitFor(() => engine().mediaServerState === 'ready', 10_000, 'the media server');
    });
    afterAll(async () => {
      await t?.stop();
      await freeswitch?.close();
      await drachtio?.close();
    });

    it('ended by FreeSWITCH\'s silence detection: recorded into incoming/, the silence cut, stored, the file removed', async () => {
      const channel = await leave('201', speechThenSilence(1500, 3000), (c) => c.stopRecording());
      const recording = channel.recordings[0]!;
      expect(recording.path.startsWith(`${messagesDir()}/incoming/`)).toBe(true);
      expect(recording.args).toEqual(['180', '200', '5']);
      await waitFor(() => played(channel, 'message-recorded'), 8000, '"recorded"');
      const [stored] = await t.server.core.messages.list('demo.local', '201');
      expect(stored).toMatchObject({ caller: '5551234', state: 'new', durationMs: 1500 });
      const pcm = decodePcmWav(await t.server.core.messages.audio(stored!));
      expect(pcm.length).toBe(12_000);
      expect(existsSync(recording.path)).toBe(false);
      expect(await readdir(join(t.config.dataDir, 'messages', 'incoming'))).toEqual([]);
    });

    it('ended by # (uuid_break): everything the caller sent is kept, silence included', async () => {
      const channel = await leave('202', speechThenSilence(1500, 1000), (c) => c.pressDigit('#'));
      await waitFor(() => played(channel, 'message-recorded'), 8000, '"recorded"');
      const [stored] = await t.server.core.messages.list('demo.local', '202');
      expect(stored).toMatchObject({ durationMs: 2500 });
    });

    it('nothing but silence: nothing stored, a plain goodbye (nothing was said)', async () => {
      const channel = await leave('203', new Int16Array(16_000), (c) => c.stopRecording());
      await waitFor(() => played(channel, 'goodbye'), 8000, 'goodbye');
      expect(played(channel, 'try-again-later')).toBe(false);
      expect(played(channel, 'message-recorded')).toBe(false);
      expect(await t.server.core.messages.counts('demo.local', '203')).toEqual({ new: 0, saved: 0 });
    });

    it('a recording that is not usable audio: "try again later", an error logged, nothing stored, the file removed', async () => {
      const before = t.logs.records().length;
      const channel = await leave('290', null, (c) => c.pressDigit('#'), Buffer.from('this is no WAV file'));
      await waitFor(() => played(channel, 'try-again-later'), 8000, '"try again later"');
      expect(played(channel, 'message-recorded')).toBe(false);
      expect(await t.server.core.messages.counts('demo.local', '290')).toEqual({ new: 0, saved: 0 });
      const errors = t.logs.records().slice(before).filter((r) => r.level === 50).map((r) => r.msg);
      expect(errors).toEqual(expect.arrayContaining(['FreeSWITCH recording is not 8 kHz mono 16-bit WAV', 'recording unusable: message not stored']));
      expect(existsSync(channel.recordings[0]!.path)).toBe(false);
    });

    it(`listening plays the stored message from ${store === 'file' ? 'its own file' : 'a copy in playback/ that is removed afterwards'}`, async () => {
      const [stored] = await t.server.core.messages.list('demo.local', '201');
      const { caller, channel } = await call('sip:*97@demo.local', '<sip:201@demo.local>');
      await channel.pressDigits('4826#');
      await waitFor(() => played(channel, 'main-menu'), 8000, 'the main menu');
      await channel.pressDigits('1');
      const isMessage = (f: string): boolean => (store === 'file' ? f === `${messagesDir()}/${stored!.audioKey}` : f.startsWith(`${messagesDir()}/playback/`));
      await waitFor(() => channel.playbacks.some((p) => p.files.some(isMessage)), 8000, 'the message played');
      const playback = channel.playbacks.find((p) => p.files.some(isMessage))!;
      expect(playback.startedAt).toBeGreaterThan(0); // FreeSWITCH found the file
      await waitFor(() => playback.finished, 8000, 'the playback to end');
      const file = playback.files.find(isMessage)!;
      if (store === 'database') await waitFor(() => !existsSync(file), 5000, 'the playback copy removed');
      else expect(existsSync(file)).toBe(true);
      expect(await caller.bye()).toBe(200);
    });
  });
}
