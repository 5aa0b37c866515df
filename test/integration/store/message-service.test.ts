/**
 * The message store on PGlite and on Postgres, with both audio store kinds (files, and bytea in
 * the database): deposit and delete are all or nothing (no row without audio, no audio without a
 * row), counts and order, tenants apart, folders; rows removed by any path take their audio with
 * them; the orphan sweep removes only what is old enough to be a crash's leftover.
 */
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import {
  DatabaseAudioStore, FileAudioStore, INCOMING_DIR, PLAYBACK_DIR, type AudioStore, type AudioStoreKind,
} from '../../../src/messages/audio-store.js';
import { MessageService } from '../../../src/messages/message-service.js';
import { ORPHAN_MIN_AGE_MS, sweepMessageFolder } from '../../../src/messages/orphan-sweep.js';
import { encodePcmWav } from '../../../src/messages/wav.js';
import { listAuditEvents } from '../../../src/store/audit.js';
import { seedDemo } from '../../../src/store/demo.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from './helpers.js';

const wav = (ms: number, level = 1000): Buffer => encodePcmWav(new Int16Array(ms * 8).fill(level));
const ctx = { channel: 'phone' as const, actor: '201@demo.local', callId: 'call-1' };
const KEY = /^[0-9a-f]{32}\.wav$/;

describeEachDatabase('message service', (variant) => {
  for (const kind of ['file', 'database'] as const satisfies readonly AudioStoreKind[]) {
    describe(`audio in ${kind === 'file' ? 'files' : 'the database'}`, () => {
      let t: TestDatabase;
      let dir: string;
      let audio: AudioStore;
      let messages: MessageService;
      const changes: string[] = [];
      /** The audio the store holds: file names in the folder, or keys in message_audio. */
      const held = async (): Promise<string[]> => kind === 'file'
        ? (await readdir(dir)).filter((f) => KEY.test(f)).sort()
        : (await t.db.query<{ key: string }>('SELECT key FROM message_audio ORDER BY key')).map((r) => r.key);
      const incoming = async (): Promise<string[]> => readdir(join(dir, INCOMING_DIR)).catch(() => []);
      /** The store under test with some of its operations replaced. */
      const wrapped = (over: Partial<AudioStore>): AudioStore => ({
        kind: audio.kind, newKey: () => audio.newKey(), put: (tx, k, b) => audio.put(tx, k, b), discard: (k) => audio.discard(k),
        get: (k) => audio.get(k), delete: (k) => audio.delete(k), ...over,
      });

      beforeAll(async () => {
        t = await withTestDatabase(variant);
        await seedDemo(t.db, new AccessCodeHasher(TEST_PEPPER));
        dir = await mkdtemp(join(tmpdir(), 'vmaccess-messages-'));
        audio = kind === 'file' ? new FileAudioStore(dir) : new DatabaseAudioStore(t.db);
        messages = new MessageService({ db: t.db, audio, logger: silentLogger });
        messages.on('changed', (d, m) => changes.push(`${m}@${d}`));
      });
      afterAll(async () => {
        await t?.cleanup();
        if (dir !== undefined) await rm(dir, { recursive: true, force: true });
      });

      it('a deposit stores audio and row together, filed in the inbox, counts it new, and announces the change', async () => {
        const r = await messages.deposit({ domain: 'Demo.Local', mailbox: '201', caller: '5551234', callerName: 'Pat', wav: wav(1500), durationMs: 1500 });
        expect(r.result).toBe('saved');
        expect(await messages.counts('demo.local', '201')).toEqual({ new: 1, saved: 0 });
        const [m] = await messages.list('demo.local', '201');
        expect(m).toMatchObject({ id: r.id, caller: '5551234', callerName: 'Pat', durationMs: 1500, state: 'new', folder: 'inbox' });
        expect(Date.now() - m!.receivedAt.getTime()).toBeLessThan(60_000);
        expect(await messages.audio(m!)).toEqual(wav(1500));
        expect(await held()).toEqual([m!.audioKey]);
        expect(await incoming()).toEqual([]);
        // Nothing of the database kind in the folder; nothing of the file kind in the database.
        if (kind === 'database') expect((await readdir(dir)).filter((f) => KEY.test(f))).toEqual([]);
        else expect(await t.db.query('SELECT key FROM message_audio')).toEqual([]);
        expect(changes).toContain('201@demo.local');
      });

      it('under a second is dropped: no row, no audio', async () => {
        const before = await held();
        expect((await messages.deposit({ domain: 'demo.local', mailbox: '202', caller: 'x', wav: wav(900), durationMs: 900 })).result).toBe('tooShort');
        expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 0 });
        expect(await held()).toEqual(before);
      });

      it('no row can be written (no such mailbox): no audio either, no announcement', async () => {
        const before = await held();
        const announced = changes.length;
        expect((await messages.deposit({ domain: 'demo.local', mailbox: '999', caller: 'x', wav: wav(1200), durationMs: 1200 })).result).toBe('unavailable');
        expect(await held()).toEqual(before);
        expect(await incoming()).toEqual([]);
        expect(changes).toHaveLength(announced);
      });

      it('the audio cannot be written: no row', async () => {
        const failing = wrapped({ put: () => Promise.reject(new Error('disk full')) });
        const broken = new MessageService({ db: t.db, audio: failing, logger: silentLogger });
        expect((await broken.deposit({ domain: 'demo.local', mailbox: '202', caller: 'x', wav: wav(1200), durationMs: 1200 })).result).toBe('unavailable');
        expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 0 });
      });

      it('the transaction fails after the audio was written: neither row nor audio is left', async () => {
        const before = await held();
        // The audio is stored, then the transaction it belongs to fails before COMMIT.
        const failAfterPut = wrapped({
          put: async (tx, key, bytes) => {
            await audio.put(tx, key, bytes);
            throw new Error('connection lost before COMMIT');
          },
        });
        const broken = new MessageService({ db: t.db, audio: failAfterPut, logger: silentLogger });
        expect((await broken.deposit({ domain: 'demo.local', mailbox: '202', caller: 'x', wav: wav(1200), durationMs: 1200 })).result).toBe('unavailable');
        expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 0 });
        expect(await held()).toEqual(before);
        expect(await incoming()).toEqual([]);
      });

      it('newest first; saved moves it from new to saved; shared mailboxes take messages too', async () => {
        await messages.deposit({ domain: 'demo.local', mailbox: '201', caller: '202', wav: wav(1100), durationMs: 1100 });
        const list = await messages.list('demo.local', '201');
        expect(list.map((m) => m.caller)).toEqual(['202', '5551234']);
        expect(await messages.markSaved('demo.local', '201', list[1]!.id)).toBe(true);
        expect(await messages.counts('demo.local', '201')).toEqual({ new: 1, saved: 1 });
        expect(await messages.markSaved('demo.local', '201', 'not-an-id')).toBe(false);
        expect((await messages.deposit({ domain: 'demo.local', mailbox: '290', caller: '5550000', wav: wav(1000), durationMs: 1000 })).result).toBe('saved');
        expect(await messages.counts('demo.local', '290')).toEqual({ new: 1, saved: 0 });
      });

      it('tenants apart: other.local 201 neither sees nor deletes demo.local 201 messages', async () => {
        const [m] = await messages.list('demo.local', '201');
        expect(await messages.list('other.local', '201')).toEqual([]);
        expect(await messages.get('other.local', '201', m!.id)).toBeNull();
        expect(await messages.delete('other.local', '201', m!.id, ctx)).toBe(false);
        expect(await messages.get('demo.local', '201', m!.id)).not.toBeNull();
      });

      it('delete: the audit event cannot be written → the message and its audio stay', async () => {
        const [m] = await messages.list('demo.local', '201');
        await t.db.query(`ALTER TABLE audit_events ADD CONSTRAINT test_refuses_message_deleted CHECK (event <> 'message_deleted') NOT VALID`);
        try {
          await expect(messages.delete('demo.local', '201', m!.id, ctx)).rejects.toThrow();
        } finally {
          await t.db.query('ALTER TABLE audit_events DROP CONSTRAINT test_refuses_message_deleted');
        }
        expect(await messages.get('demo.local', '201', m!.id)).toMatchObject({ id: m!.id, audioKey: m!.audioKey });
        expect(await held()).toContain(m!.audioKey);
        expect(await messages.audio(m!)).toEqual(wav(1100));
      });

      it('delete: row and audit event together, then the audio; no digits or audio in the audit', async () => {
        const [m] = await messages.list('demo.local', '201');
        expect(await messages.delete('demo.local', '201', m!.id, ctx)).toBe(true);
        expect(await messages.get('demo.local', '201', m!.id)).toBeNull();
        expect(await held()).not.toContain(m!.audioKey);
        await expect(messages.audio(m!)).rejects.toThrow();
        const events = await listAuditEvents(t.db, { domain: 'demo.local', mailbox: '201' });
        const deleted = events.filter((e) => e.event === 'message_deleted');
        expect(deleted).toHaveLength(1);
        expect(deleted[0]).toMatchObject({ channel: 'phone', actor: '201@demo.local', callId: 'call-1' });
        expect(JSON.stringify(deleted[0])).not.toMatch(/5551234|RIFF|\.wav/);
        expect(await messages.delete('demo.local', '201', m!.id, ctx)).toBe(false); // gone is gone
      });

      // Only the database kind keeps bytes a trigger can remove (defined, not skipped, for the file kind).
      if (kind === 'database') it('rows removed by any path (reset, recycle, a mailbox removed) take their audio bytes in the same transaction', async () => {
        // A greeting (what reset and recycle clear) and a message of 290.
        const greeting = audio.newKey();
        await t.db.transaction(async (tx) => {
          await tx.query(`UPDATE mailboxes SET greeting_key = $1 WHERE number = '290' AND domain_id = (SELECT id FROM domains WHERE name = 'demo.local')`, [greeting]);
          await audio.put(tx, greeting, wav(1000));
        });
        const [m290] = await messages.list('demo.local', '290');
        expect(await held()).toEqual(expect.arrayContaining([greeting, m290!.audioKey]));
        // What the portal's reset does: rows deleted and keys cleared in one transaction — rolled back here…
        const wipe = async (tx: Parameters<Parameters<TestDatabase['db']['transaction']>[0]>[0]): Promise<void> => {
          await tx.query(`DELETE FROM messages WHERE mailbox_id = (SELECT m.id FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = 'demo.local' AND m.number = '290')`);
          await tx.query(`UPDATE mailboxes SET greeting_key = NULL, name_key = NULL WHERE number = '290' AND domain_id = (SELECT id FROM domains WHERE name = 'demo.local')`);
        };
        await expect(t.db.transaction(async (tx) => { await wipe(tx); throw new Error('rolled back'); })).rejects.toThrow('rolled back');
        expect(await held()).toEqual(expect.arrayContaining([greeting, m290!.audioKey]));
        // …and committed.
        await t.db.transaction(wipe);
        expect(await held()).not.toContain(greeting);
        expect(await held()).not.toContain(m290!.audioKey);
        // A mailbox removed (cascade to its messages) takes its messages' audio too.
        await messages.deposit({ domain: 'other.local', mailbox: '201', caller: '1', wav: wav(1000), durationMs: 1000 });
        const [o] = await messages.list('other.local', '201');
        await t.db.query(`DELETE FROM mailboxes WHERE number = '201' AND domain_id = (SELECT id FROM domains WHERE name = 'other.local')`);
        expect(await held()).not.toContain(o!.audioKey);
      });
    });
  }

  describe('orphan sweep of the message folder', () => {
    let t: TestDatabase;
    let dir: string;
    let messages: MessageService;
    beforeAll(async () => {
      t = await withTestDatabase(variant);
      await seedDemo(t.db, new AccessCodeHasher(TEST_PEPPER));
      dir = await mkdtemp(join(tmpdir(), 'vmaccess-sweep-'));
      messages = new MessageService({ db: t.db, audio: new FileAudioStore(dir), logger: silentLogger });
    });
    afterAll(async () => {
      await t?.cleanup();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    /** Writes a file and sets its last write `ageMs` ago. */
    async function file(path: string, ageMs: number): Promise<string> {
      await writeFile(path, wav(1000));
      const at = new Date(Date.now() - ageMs);
      await utimes(path, at, at);
      return path;
    }
    const OLD = ORPHAN_MIN_AGE_MS + 60_000;
    const key = (): string => new FileAudioStore(dir).newKey();

    it('removes old audio no row names and old leftovers; keeps fresh files (a recording in progress, a deposit about to commit), files rows name, and files not ours', async () => {
      await messages.deposit({ domain: 'demo.local', mailbox: '201', caller: '5551234', wav: wav(1200), durationMs: 1200 });
      const [kept] = await messages.list('demo.local', '201');
      await utimes(join(dir, kept!.audioKey), new Date(Date.now() - OLD), new Date(Date.now() - OLD));
      await mkdir(join(dir, INCOMING_DIR), { recursive: true });
      await mkdir(join(dir, PLAYBACK_DIR), { recursive: true });
      const oldOrphan = await file(join(dir, key()), OLD);
      const freshFinal = await file(join(dir, key()), 1_000); // renamed into place, its row not yet committed
      const recording = await file(join(dir, INCOMING_DIR, key()), 2_000); // FreeSWITCH still writing
      const oldRecording = await file(join(dir, INCOMING_DIR, key()), OLD);
      const oldPlayback = await file(join(dir, PLAYBACK_DIR, key()), OLD);
      const notOurs = await file(join(dir, 'README.txt'), OLD);

      expect(await sweepMessageFolder({ db: t.db, dir, logger: silentLogger })).toEqual({ orphans: 1, leftovers: 2 });
      const exists = async (path: string): Promise<boolean> => (await readdir(join(path, '..'))).includes(path.split('/').at(-1)!);
      expect(await exists(oldOrphan)).toBe(false);
      expect(await exists(oldRecording)).toBe(false);
      expect(await exists(oldPlayback)).toBe(false);
      expect(await exists(freshFinal)).toBe(true);
      expect(await exists(recording)).toBe(true);
      expect(await exists(notOurs)).toBe(true);
      expect(await exists(join(dir, kept!.audioKey))).toBe(true);
    });

    it('a missing folder is nothing to sweep', async () => {
      expect(await sweepMessageFolder({ db: t.db, dir: join(dir, 'nowhere'), logger: silentLogger })).toEqual({ orphans: 0, leftovers: 0 });
    });
  });
});
