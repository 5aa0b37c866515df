/**
 * Reset and recycle through the admin API, seen from a phone's message-waiting light: a whole
 * server (demo tenant) on PGlite and on Postgres, with message audio in files and in the
 * database. A mailbox with messages (and a recorded greeting) is reset or recycled; the phone
 * subscribed to it (RFC 3842 over RFC 6665) gets a NOTIFY with 0/0, and the rows and their audio
 * are gone.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken, upsertOperator } from '../../../src/store/accounts.js';
import { encodePcmWav } from '../../../src/messages/wav.js';
import { SipRequest } from '../../../src/telephony/embedded/sip/index.js';
import { describeEachDatabase } from '../store/helpers.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';
import { waitFor } from '../../support/wait.js';
import { randomId, TestUac } from '../../unit/sip/test-uac.js';

const wav = encodePcmWav(new Int16Array(12_000).fill(900));

describeEachDatabase('reset and recycle put the message-waiting light out', (variant) => {
  for (const store of ['file', 'database'] as const) {
    describe(`audio store: ${store}`, () => {
      let t: TestServer;
      let token: string;
      let phone: TestUac;

      const api = async (path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
        const res = await fetch(`http://127.0.0.1:${t.server.http.port}${path}`, {
          method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
        });
        return { status: res.status, body: await res.json() as Record<string, unknown> };
      };
      /** Subscribes the phone to a mailbox; returns the bodies of that subscription's NOTIFYs so far. */
      const subscribe = async (mailbox: string): Promise<() => string[]> => {
        const callId = randomId();
        await phone.request({
          method: 'SUBSCRIBE', uri: `sip:${mailbox}@demo.local`, toUri: `sip:${mailbox}@demo.local`, callId, fromTag: randomId(), cseq: 1,
          headers: [`Contact: ${phone.contact}`, 'Event: message-summary', 'Expires: 600'],
        });
        expect((await phone.response(200, callId, 'SUBSCRIBE')).status).toBe(200);
        return () => phone.received((m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === callId).map((m) => m.body.toString('utf8'));
      };
      const says = (bodies: () => string[], voice: string) => (): boolean => (bodies().at(-1) ?? '').includes(`Voice-Message: ${voice} `);
      const deposit = async (mailbox: string): Promise<void> => {
        expect((await t.server.core.messages.deposit({ domain: 'demo.local', mailbox, caller: '5551234', wav, durationMs: 1500 })).result).toBe('saved');
      };
      const keysOf = async (mailbox: string): Promise<string[]> => (await t.server.core.messages.list('demo.local', mailbox)).map((m) => m.audioKey);
      const audioGone = (key: string): Promise<boolean> => t.server.core.audio.get(key).then(() => false, () => true);

      beforeAll(async () => {
        t = await startTestServer(variant, { TRUSTED_SIP_PEERS: '127.0.0.1/32', MESSAGE_AUDIO_STORE: store });
        const root = await upsertOperator(t.server.core.db, 'root', await t.server.core.passwords.hash('root-password-123'));
        token = randomBytes(32).toString('base64url');
        await createApiToken(t.server.core.db, root.id, 'mwi test', token);
        phone = await TestUac.open(Number(t.sipTarget.split(':')[1]));
        phone.autoRespond('NOTIFY', 200, 'OK');
      });
      afterAll(async () => {
        await phone?.close();
        await t?.stop();
      });

      it('reset of a mailbox with messages: NOTIFY 0/0; its messages, their audio and its greeting are gone', async () => {
        const bodies = await subscribe('204');
        await waitFor(says(bodies, '0/0'), 5000, 'the first NOTIFY');
        await deposit('204');
        await deposit('204');
        // A recorded greeting too: a reset clears it.
        const greeting = t.server.core.audio.newKey();
        await t.server.core.db.transaction(async (tx) => {
          await tx.query(`UPDATE mailboxes SET greeting_key = $1 WHERE number = '204' AND domain_id = (SELECT id FROM domains WHERE name = 'demo.local')`, [greeting]);
          await t.server.core.audio.put(tx, greeting, wav);
        });
        await waitFor(says(bodies, '2/0'), 5000, 'NOTIFY 2/0');
        const keys = await keysOf('204');
        expect(keys).toHaveLength(2);

        expect(await api('/api/domains/demo.local/mailboxes/204/reset', { confirmMessages: 2 })).toMatchObject({ status: 200, body: { messagesDeleted: 2 } });
        await waitFor(says(bodies, '0/0'), 5000, 'NOTIFY 0/0 after the reset');
        expect(bodies().at(-1)).toContain('Messages-Waiting: no');
        expect(await keysOf('204')).toEqual([]);
        for (const key of [...keys, greeting]) expect(await audioGone(key), key).toBe(true);
      });

      it('the API lists each message with its folder (inbox) besides its state', async () => {
        await deposit('201');
        const res = await fetch(`http://127.0.0.1:${t.server.http.port}/api/domains/demo.local/mailboxes/201/messages`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual([expect.objectContaining({ caller: '5551234', state: 'new', folder: 'inbox' })]);
      });

      it('recycle of a mailbox with messages: NOTIFY 0/0; rows and audio are gone', async () => {
        const bodies = await subscribe('202');
        await deposit('202');
        await waitFor(says(bodies, '1/0'), 5000, 'NOTIFY 1/0');
        const keys = await keysOf('202');
        expect(await api('/api/domains/demo.local/mailboxes/202/recycle', { confirmMessages: 1 })).toMatchObject({ status: 200, body: { messagesDeleted: 1 } });
        await waitFor(says(bodies, '0/0'), 5000, 'NOTIFY 0/0 after the recycle');
        expect(await t.server.core.messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 0 });
        expect(await keysOf('202')).toEqual([]);
        for (const key of keys) expect(await audioGone(key), key).toBe(true);
        if (store === 'database') expect(await t.server.core.db.query('SELECT key FROM message_audio WHERE key = ANY($1)', [keys])).toEqual([]);
      });
    });
  }
});
