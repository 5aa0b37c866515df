/**
 * The message store on PGlite and on Postgres: deposit and delete are all or nothing (no row
 * without audio, no audio without a row), counts and order, tenants apart, the orphan sweep.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import { FileAudioStore, type AudioStore } from '../../../src/messages/audio-store.js';
import { MessageService } from '../../../src/messages/message-service.js';
import { encodePcmWav } from '../../../src/messages/wav.js';
import { listAuditEvents } from '../../../src/store/audit.js';
import { seedDemo } from '../../../src/store/demo.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from './helpers.js';

const wav = (ms: number): Buffer => encodePcmWav(new Int16Array(ms * 8).fill(1000));
const ctx = { channel: 'phone' as const, actor: '201@demo.local', callId: 'call-1' };

describeEachDatabase('message service', (variant) => {
  let t: TestDatabase;
  let dir: string;
  let audio: FileAudioStore;
  let messages: MessageService;
  const changes: string[] = [];
  beforeAll(async () => {
    t = await withTestDatabase(variant);
    await seedDemo(t.db, new AccessCodeHasher(TEST_PEPPER));
    dir = await mkdtemp(join(tmpdir(), 'vmaccess-messages-'));
    audio = new FileAudioStore(dir);
    messages = new MessageService({ db: t.db, audio, logger: silentLogger });
    messages.on('changed', (d, m) => changes.push(`${m}@${d}`));
  });
  afterAll(async () => {
    await t?.cleanup();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a deposit stores audio and row together, counts it new, and announces the change', async () => {
    const r = await messages.deposit({ domain: 'Demo.Local', mailbox: '201', caller: '5551234', callerName: 'Pat', wav: wav(1500), durationMs: 1500 });
    expect(r.result).toBe('saved');
    expect(await messages.counts('demo.local', '201')).toEqual({ new: 1, saved: 0 });
    const [m] = await messages.list('demo.local', '201');
    expect(m).toMatchObject({ id: r.id, caller: '5551234', callerName: 'Pat', durationMs: 1500, state: 'new' });
    expect(Date.now() - m!.receivedAt.getTime()).toBeLessThan(60_000);
    expect(await messages.audio(m!)).toEqual(wav(1500));
    expect(await readdir(dir)).toEqual([m!.audioKey]);
    expect(changes).toContain('201@demo.local');
  });

  it('under a second is dropped: no row, no file', async () => {
    const before = await readdir(dir);
    expect((await messages.deposit({ domain: 'demo.local', mailbox: '202', caller: 'x', wav: wav(900), durationMs: 900 })).result).toBe('tooShort');
    expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 0 });
    expect(await readdir(dir)).toEqual(before);
  });

  it('no row can be written (no such mailbox): the audio goes again', async () => {
    const before = await readdir(dir);
    expect((await messages.deposit({ domain: 'demo.local', mailbox: '999', caller: 'x', wav: wav(1200), durationMs: 1200 })).result).toBe('unavailable');
    expect(await readdir(dir)).toEqual(before);
  });

  it('the audio cannot be written: no row', async () => {
    const failing: AudioStore = { newKey: () => audio.newKey(), put: () => Promise.reject(new Error('disk full')), get: (k) => audio.get(k), delete: (k) => audio.delete(k) };
    const broken = new MessageService({ db: t.db, audio: failing, logger: silentLogger });
    expect((await broken.deposit({ domain: 'demo.local', mailbox: '202', caller: 'x', wav: wav(1200), durationMs: 1200 })).result).toBe('unavailable');
    expect(await messages.counts('demo.local', '202')).toEqual({ new: 0, saved: 0 });
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

  it('delete: row and audit event together, then the audio; no digits or audio in the audit', async () => {
    const [m] = await messages.list('demo.local', '201');
    expect(await messages.delete('demo.local', '201', m!.id, ctx)).toBe(true);
    expect(await messages.get('demo.local', '201', m!.id)).toBeNull();
    expect(await readdir(dir)).not.toContain(m!.audioKey);
    const events = await listAuditEvents(t.db, { domain: 'demo.local', mailbox: '201' });
    const deleted = events.filter((e) => e.event === 'message_deleted');
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ channel: 'phone', actor: '201@demo.local', callId: 'call-1' });
    expect(JSON.stringify(deleted[0])).not.toMatch(/5551234|RIFF|\.wav/);
    expect(await messages.delete('demo.local', '201', m!.id, ctx)).toBe(false); // gone is gone
  });

  it('the orphan sweep removes audio no row refers to, and nothing else', async () => {
    const orphan = audio.newKey();
    await writeFile(join(dir, orphan), wav(1000));
    await writeFile(join(dir, 'README.txt'), 'not audio');
    const kept = (await messages.list('demo.local', '201')).map((m) => m.audioKey);
    expect(await messages.sweepOrphans(dir)).toBe(1);
    const files = await readdir(dir);
    expect(files).not.toContain(orphan);
    expect(files).toEqual(expect.arrayContaining([...kept, 'README.txt']));
  });
});
