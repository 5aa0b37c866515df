/**
 * Message waiting end to end: sipp subscribes to `message-summary` (RFC 3842 over RFC 6665) for a
 * mailbox of a whole vmaccess server (embedded engine, demo tenant, PGlite), checks the counts in
 * the NOTIFY, unsubscribes and gets the final NOTIFY. The counts come from the message store, so
 * a deposited message shows up as 1/0 — in the first NOTIFY of a new subscription, and in the
 * NOTIFY a subscription gets when a message arrives while it runs. A SUBSCRIBE to the access
 * number *97 is for the subscriber's own mailbox, as a call to it is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { runSipp, sippAvailable, sippReport, type SippOptions } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { waitFor } from '../support/wait.js';
import { randomId, TestUac } from '../unit/sip/test-uac.js';

const haveSipp = sippAvailable();

/** 8 kHz mono 16-bit PCM WAV of `ms` silence. */
function silentWav(ms: number): Buffer {
  const data = Buffer.alloc(Math.round((8000 * ms) / 1000) * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

describe('message waiting with sipp (embedded engine)', () => {
  let t: TestServer;
  const subscribe = (voice: string, over: Partial<SippOptions> = {}) => runSipp('mwi-subscribe.xml', {
    target: t.sipTarget, service: '201', caller: '201', domain: 'demo.local', keys: { voice }, timeoutS: 20, ...over,
  });
  const engine = () => t.server.engine as EmbeddedEngine;

  beforeAll(async () => {
    if (haveSipp) t = await startTestServer('pglite');
  });
  afterAll(async () => {
    await t?.stop();
  });

  it.skipIf(!haveSipp)('SUBSCRIBE → 200 → NOTIFY 0/0 → unsubscribe → NOTIFY terminated; nothing is left behind', async () => {
    const run = await subscribe('0/0', { messageTrace: true });
    expect(run.exitCode, sippReport(run)).toBe(0);
    expect(run.messages).toMatch(/^Subscription-State: active;expires=\d+/m);
    expect(run.messages).toMatch(/^Subscription-State: terminated;reason=timeout/m);
    expect(run.messages).toContain('Messages-Waiting: no');
    await waitFor(() => engine().mwiSubscriptions === 0 && engine().sipStats.dialogs === 0);
  });

  /** Resolves once the server has had the first NOTIFY of `mailbox`'s subscription answered. */
  const firstNotifyAnswered = (mailbox: string): Promise<void> => waitFor(
    () => t.logs.records().some((r) => r.msg === 'message-summary NOTIFY' && r.mailbox === mailbox && r.status === 200),
    10_000, `the first NOTIFY for ${mailbox}`);
  const deposit = async (mailbox: string): Promise<void> => {
    const saved = await t.server.core.messages.deposit({ domain: 'demo.local', mailbox, caller: '5551234', wav: silentWav(1500), durationMs: 1500 });
    expect(saved.result).toBe('saved');
  };

  it.skipIf(!haveSipp)('subscribed, then a message arrives: the first NOTIFY says 0/0, the NOTIFY of the change 1/0', async () => {
    const running = runSipp('mwi-subscribe-change.xml', {
      target: t.sipTarget, service: '202', caller: '202', domain: 'demo.local', keys: { voice: '0/0', after: '1/0' }, timeoutS: 30, messageTrace: true,
    });
    await firstNotifyAnswered('202');
    await deposit('202');
    const run = await running;
    expect(run.exitCode, sippReport(run)).toBe(0);
    expect(run.messages).toMatch(/Messages-Waiting: no\r?\nMessage-Account: sip:202@demo\.local\r?\nVoice-Message: 0\/0/);
    expect(run.messages).toMatch(/Messages-Waiting: yes\r?\nMessage-Account: sip:202@demo\.local\r?\nVoice-Message: 1\/0/);
    await waitFor(() => engine().mwiSubscriptions === 0 && engine().sipStats.dialogs === 0);
  });

  it.skipIf(!haveSipp)('a SUBSCRIBE to the access number *97 from a trusted peer is for the subscriber\'s own mailbox', async () => {
    // 202 has the message of the test above; 201 none yet.
    const run = await subscribe('1/0', { service: '*97', caller: '202', messageTrace: true });
    expect(run.exitCode, sippReport(run)).toBe(0);
    expect(run.messages).toContain('Message-Account: sip:202@demo.local');
    await waitFor(() => engine().mwiSubscriptions === 0 && engine().sipStats.dialogs === 0);
  });

  it.skipIf(!haveSipp)('a deposited message: Voice-Message 1/0, Messages-Waiting yes', async () => {
    const saved = await t.server.core.messages.deposit({
      domain: 'demo.local', mailbox: '201', caller: '202', wav: silentWav(1500), durationMs: 1500,
    });
    expect(saved.result).toBe('saved');
    const run = await subscribe('1/0', { messageTrace: true });
    expect(run.exitCode, sippReport(run)).toBe(0);
    expect(run.messages).toContain('Messages-Waiting: yes');
    expect(run.messages).toContain('Message-Account: sip:201@demo.local');
    await waitFor(() => engine().mwiSubscriptions === 0 && engine().sipStats.dialogs === 0);
  });

  it.skipIf(!haveSipp)('another tenant\'s 201 (other.local) has its own counts', async () => {
    const run = await subscribe('0/0', { domain: 'other.local' });
    expect(run.exitCode, sippReport(run)).toBe(0);
    await waitFor(() => engine().mwiSubscriptions === 0 && engine().sipStats.dialogs === 0);
  });

  it.skipIf(!haveSipp)('*97 from a caller who owns no mailbox: 404, as for any unknown mailbox', async () => {
    const phone = await TestUac.open(Number(t.sipTarget.split(':')[1]));
    try {
      const callId = randomId();
      await phone.request({
        method: 'SUBSCRIBE', uri: 'sip:*97@demo.local', toUri: 'sip:*97@demo.local', callId, fromTag: randomId(), cseq: 1,
        headers: [`Contact: ${phone.contact}`, 'Event: message-summary', 'Expires: 600', 'P-Asserted-Identity: <sip:5559999@demo.local>'],
      });
      expect((await phone.response(404, callId, 'SUBSCRIBE')).status).toBe(404);
    } finally {
      await phone.close();
    }
  });

  // Last: sipp stops at the wrong count without answering the NOTIFY or unsubscribing.
  it.skipIf(!haveSipp)('the change scenario fails when the NOTIFY of the change has other counts', async () => {
    const running = runSipp('mwi-subscribe-change.xml', {
      target: t.sipTarget, service: '203', caller: '203', domain: 'demo.local', keys: { voice: '0/0', after: '7/7' }, timeoutS: 30,
    });
    await firstNotifyAnswered('203');
    await deposit('203');
    const run = await running;
    expect(run.exitCode).not.toBe(0);
    expect(run.errors).toContain('NOTIFY after the change says Voice-Message: 1/0, expected 7/7');
  });

  it.skipIf(!haveSipp)('the scenario fails when the counts are not the ones expected', async () => {
    const run = await subscribe('5/5', { domain: 'other.local' });
    expect(run.exitCode).not.toBe(0);
    expect(run.errors).toContain('NOTIFY says Voice-Message: 0/0, expected 5/5');
  });
});
