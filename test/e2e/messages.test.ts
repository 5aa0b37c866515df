/**
 * Messages end to end (issue 8) on a whole vmaccess server (embedded SIP/RTP engine, demo
 * tenant), driven by the independent test UA over real sockets: a caller leaves a message at
 * 201's deposit address (speech sent as paced G.711), 201 dials *97, presses 1 and hears it —
 * the audio that comes back is compared with what was deposited (length, correlation, energy) —
 * then 7 deletes it: row, audio file and message-waiting count all go — and 201's phone, subscribed
 * to message-summary, is told "1 new" after the deposit and "0" after the delete.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodePcmWav, encodePcmWav } from '../../src/messages/wav.js';
import { listAuditEvents } from '../../src/store/audit.js';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { describeEachDatabase } from '../integration/store/helpers.js';
import { align as alignAll, heard, readPrompt } from '../support/heard.js';

/** Where `reference` is in `received` (every 2nd sample is plenty for seconds of speech). */
const align = (reference: Int16Array, received: Int16Array): { lag: number; correlation: number } =>
  alignAll(reference, received, Number.POSITIVE_INFINITY, 2);
import { expectNoSecretsInLogs } from '../support/secrets.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { frameEnergy, TestUa } from '../support/test-ua.js';
import { sleep, waitFor } from '../support/wait.js';
import { SipRequest } from '../../src/telephony/embedded/sip/index.js';
import { randomId, TestUac } from '../unit/sip/test-uac.js';

/** What the caller says: an espeak-ng + sox recording (a prompt none of these calls plays). */
const SPOKEN = 'auto-attendant-menu';

function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / Math.max(1, pcm.length));
}

/** Milliseconds from the first to the last 20 ms frame louder than speech level. */
function voicedSpanMs(pcm: Int16Array): number {
  const loud = frameEnergy(pcm).map((e, i) => (e > 200 ? i : -1)).filter((i) => i >= 0);
  return loud.length === 0 ? 0 : (loud[loud.length - 1]! - loud[0]! + 1) * 20;
}

describeEachDatabase('messages: deposit, listen, delete', (variant) => {
  let t: TestServer;
  const engine = (): EmbeddedEngine => t.server.engine as EmbeddedEngine;
  const target = (): { address: string; port: number } => {
    const [address, port] = t.sipTarget.split(':');
    return { address: address!, port: Number(port) };
  };

  beforeAll(async () => {
    t = await startTestServer(variant, { TRUSTED_SIP_PEERS: '127.0.0.1/32', TZ: 'UTC' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('a message left at vm-201 is heard back by 201 through *97 → 1, then 7 deletes it', async () => {
    const speech = await readPrompt(SPOKEN);
    const spokenMs = (speech.length / 8000) * 1000;

    // --- 201's phone subscribes to its message-waiting light (RFC 3842 over RFC 6665) ------------
    const phone = await TestUac.open(target().port);
    phone.autoRespond('NOTIFY', 200, 'OK');
    const mwiCallId = randomId();
    await phone.request({
      method: 'SUBSCRIBE', uri: 'sip:201@demo.local', toUri: 'sip:201@demo.local', callId: mwiCallId, fromTag: randomId(), cseq: 1,
      headers: [`Contact: ${phone.contact}`, 'Event: message-summary', 'Expires: 600', 'Accept: application/simple-message-summary'],
    });
    expect((await phone.response(200, mwiCallId, 'SUBSCRIBE')).status).toBe(200);
    const notifies = (): string[] => phone.received((m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === mwiCallId)
      .map((m) => m.body.toString('utf8'));
    await waitFor(() => notifies().length >= 1, 5000, 'the first NOTIFY');
    expect(notifies()[0]).toMatch(/Messages-Waiting: no\r\nMessage-Account: sip:201@demo\.local\r\nVoice-Message: 0\/0/);

    // --- leave a message -------------------------------------------------------------------
    const caller = await TestUa.call({
      target: target(), requestUri: 'sip:vm-201@demo.local', from: 'sip:5551234@demo.local',
    });
    try {
      // The greeting names the mailbox; # skips to the tone and the recording.
      expect((await heard(caller, 0, ['person-at-extension', 'enter-access-code']))[0]![0]).toBe('person-at-extension');
      await caller.pressKeys('#');
      await sleep(300);
      await caller.sendAudio(speech);
      const afterHash = performance.now();
      await caller.pressKeys('#');
      expect((await heard(caller, afterHash, ['message-recorded', 'goodbye']))[0]![0]).toBe('message-recorded');
      await caller.waitForBye(15_000);
    } finally {
      caller.close();
    }

    const messages = t.server.core.messages;
    const [stored] = await messages.list('demo.local', '201');
    expect(stored).toMatchObject({ caller: '5551234', state: 'new' });
    // Everything sent was kept (the recorder takes the packets as they came), to the frame.
    expect(Math.abs(stored!.durationMs - spokenMs)).toBeLessThanOrEqual(100);
    const storedPcm = decodePcmWav(await messages.audio(stored!));
    expect(Math.abs((storedPcm.length / 8) - spokenMs)).toBeLessThanOrEqual(100);
    expect(await messages.counts('demo.local', '201')).toEqual({ new: 1, saved: 0 });
    // The phone's light goes on.
    await waitFor(() => notifies().some((b) => /Messages-Waiting: yes[\s\S]*Voice-Message: 1\/0/.test(b)), 5000, 'NOTIFY 1 new');
    const audioDir = join(t.config.dataDir, 'messages');
    // The file in place under its key; nothing left in incoming/ where it was written.
    const audioFiles = async (): Promise<string[]> => (await readdir(audioDir)).filter((f) => f !== 'incoming');
    expect(await audioFiles()).toEqual([stored!.audioKey]);
    expect(await readdir(join(audioDir, 'incoming'))).toEqual([]);

    // --- listen: *97, code, 1 ------------------------------------------------------------------
    const owner = await TestUa.call({ target: target(), requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    try {
      await owner.pressKeys('4826#');
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).some((e) => e.event === 'login_succeeded'), 10_000, 'login');
      await sleep(300);
      const pressed1 = performance.now();
      await owner.pressKeys('1');
      expect((await heard(owner, pressed1, ['you-have', 'no-messages']))[0]![0]).toBe('you-have');
      // Summary and envelope (≈ 6 s), then the message: wait until all of it can have arrived.
      await waitFor(() => owner.audioSince(pressed1).length >= speech.length + 14 * 8000, 30_000, 'the message played back');
      const received = owner.audioSince(pressed1);
      const { lag, correlation } = align(speech, received);
      expect(correlation, 'the deposited speech, played back').toBeGreaterThan(0.9);
      const played = received.subarray(lag, lag + speech.length);
      // Same loudness (G.711 both ways), same spoken length to the frame.
      expect(Math.abs(rms(played) - rms(speech)) / rms(speech)).toBeLessThan(0.1);
      expect(Math.abs(voicedSpanMs(played) - voicedSpanMs(speech))).toBeLessThanOrEqual(100);
      // After it, the menu of what to do with it.
      // (The message is played as whole 20 ms frames, the last one padded.)
      const menu = (await readPrompt('message-menu')).subarray(0, 16000);
      const messageEnd = lag + Math.ceil(speech.length / 160) * 160;
      await waitFor(() => owner.audioSince(pressed1).length >= messageEnd + menu.length + 8000, 10_000, 'the menu');
      const afterMessage = owner.audioSince(pressed1).subarray(messageEnd, messageEnd + menu.length + 8000);
      expect(align(menu, afterMessage).correlation, 'the message menu right after it').toBeGreaterThan(0.8);

      const pressed7 = performance.now();
      await owner.pressKeys('7');
      expect((await heard(owner, pressed7, ['message-deleted', 'message-saved']))[0]![0]).toBe('message-deleted');
      await waitFor(async () => (await messages.counts('demo.local', '201')).new === 0, 5000, 'the message deleted');
      expect(await messages.list('demo.local', '201')).toEqual([]);
      expect(await audioFiles()).toEqual([]);
      const events = await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' });
      expect(events.filter((e) => e.event === 'message_deleted')).toEqual([
        expect.objectContaining({ channel: 'phone', actor: '201@demo.local', callId: expect.any(String) }),
      ]);
      await owner.hangup();
    } finally {
      owner.close();
    }
    // …and off again once the message is gone.
    await waitFor(() => /Messages-Waiting: no[\s\S]*Voice-Message: 0\/0/.test(notifies().at(-1) ?? ''), 5000, 'NOTIFY 0 new');
    await phone.close();
    await waitFor(() => engine().activeCalls === 0, 10_000, 'calls to end');
    expectNoSecretsInLogs(t.logs.records(), ['4826']);
  }, 90_000);

  it('hanging up keeps what was said; a redirected call (Diversion) lands in the diverting extension\'s mailbox', async () => {
    const speech = (await readPrompt(SPOKEN)).subarray(0, 2 * 8000);
    const caller = await TestUa.call({
      target: target(), requestUri: 'sip:*97@demo.local', from: 'sip:5550000@demo.local',
      headers: [['Diversion', '<sip:202@demo.local>;reason=no-answer;counter=1']],
    });
    try {
      expect((await heard(caller, 0, ['person-at-extension', 'enter-access-code']))[0]![0]).toBe('person-at-extension');
      await caller.pressKeys('#');
      await sleep(300);
      await caller.sendAudio(speech);
      await caller.hangup();
    } finally {
      caller.close();
    }
    await waitFor(async () => (await t.server.core.messages.counts('demo.local', '202')).new === 1, 10_000, 'the message stored');
    const [m] = await t.server.core.messages.list('demo.local', '202');
    expect(m).toMatchObject({ caller: '5550000' });
    expect(Math.abs(m!.durationMs - 2000)).toBeLessThanOrEqual(100);
    expect(await t.server.core.messages.counts('demo.local', '201')).toEqual({ new: 0, saved: 0 });
  }, 60_000);

  it('a mailbox with a recorded greeting: callers hear it instead of the spoken default, then the tone and the recording', async () => {
    // 204's greeting: some recorded speech (here the "main menu" recording), stored like a message.
    const { core } = t.server;
    const greeting = core.audio.newKey();
    await core.db.transaction(async (tx) => {
      await tx.query(`UPDATE mailboxes SET greeting_key = $1 WHERE number = '204' AND domain_id = (SELECT id FROM domains WHERE name = 'demo.local')`, [greeting]);
      await core.audio.put(tx, greeting, encodePcmWav(await readPrompt('main-menu')));
    });
    const caller = await TestUa.call({ target: target(), requestUri: 'sip:vm-204@demo.local', from: 'sip:5557777@demo.local' });
    try {
      expect((await heard(caller, 0, ['main-menu', 'person-at-extension']))[0]![0]).toBe('main-menu');
      await caller.pressKeys('#');
      await sleep(300);
      await caller.sendAudio((await readPrompt(SPOKEN)).subarray(0, 12_000));
      await caller.pressKeys('#');
      await caller.waitForBye(15_000);
    } finally {
      caller.close();
    }
    await waitFor(async () => (await core.messages.counts('demo.local', '204')).new === 1, 10_000, 'the message stored');
  }, 60_000);

  it('a deposit for a mailbox that does not exist is 404; under a second is not kept', async () => {
    await expect(TestUa.call({ target: target(), requestUri: 'sip:vm-999@demo.local', from: 'sip:5551234@demo.local' }))
      .rejects.toMatchObject({ status: 404 });
    const caller = await TestUa.call({ target: target(), requestUri: 'sip:vm-203@demo.local', from: 'sip:5551234@demo.local' });
    try {
      await caller.pressKeys('#');
      await sleep(300);
      await caller.sendAudio((await readPrompt(SPOKEN)).subarray(0, 4000)); // half a second
      await caller.pressKeys('#');
      // Too short to keep: goodbye (not "recorded") and the server hangs up.
      await caller.waitForBye(10_000);
    } finally {
      caller.close();
    }
    expect(await t.server.core.messages.counts('demo.local', '203')).toEqual({ new: 0, saved: 0 });
  }, 60_000);
});
