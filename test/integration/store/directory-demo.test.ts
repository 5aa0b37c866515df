import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import { AccessCodeService } from '../../../src/mailbox/access-code-service.js';
import type { Database } from '../../../src/store/database.js';
import { seedDemo } from '../../../src/store/demo.js';
import {
  findAccessNumber, findDomain, findMailbox, findMailboxOwnedBy, listAutoAttendantOptions,
} from '../../../src/store/directory.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from './helpers.js';

const ctx = { channel: 'phone' as const, actor: 'sip:bob@demo.local', callId: 'call-demo' };

async function tableCounts(db: Database): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['domains', 'access_numbers', 'auto_attendant_options', 'users', 'mailboxes',
    'mailbox_members', 'access_code_credentials', 'access_code_history']) {
    const rows = await db.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${table}`);
    counts[table] = rows[0]?.n ?? -1;
  }
  return counts;
}

describeEachDatabase('demo tenant and directory', (variant) => {
  let t: TestDatabase;
  let db: Database;
  const hasher = new AccessCodeHasher(TEST_PEPPER);
  let service: AccessCodeService;
  beforeAll(async () => {
    t = await withTestDatabase(variant);
    db = t.db;
    service = new AccessCodeService({ db, hasher, logger: silentLogger });
  });
  afterAll(async () => { await t?.cleanup(); });

  it('seeds the CONTRACT demo tenant, and a second run inserts nothing', async () => {
    const first = await seedDemo(db, hasher);
    expect(first.inserted).toBeGreaterThan(0);
    const before = await tableCounts(db);
    expect(before).toEqual({
      domains: 2, access_numbers: 5, auto_attendant_options: 2, users: 5, mailboxes: 6,
      mailbox_members: 2, access_code_credentials: 5, access_code_history: 0,
    });
    const hashesBefore = await db.query('SELECT mailbox_id, hash, set_at FROM access_code_credentials ORDER BY mailbox_id');
    expect((await seedDemo(db, hasher)).inserted).toBe(0);
    expect(await tableCounts(db)).toEqual(before);
    expect(await db.query('SELECT mailbox_id, hash, set_at FROM access_code_credentials ORDER BY mailbox_id')).toEqual(hashesBefore);
  });

  it('gives every demo mailbox its CONTRACT access code (203 none yet)', async () => {
    const codes: [string, string, string][] = [
      ['demo.local', '201', '4826'], ['demo.local', '202', '7391'], ['demo.local', '204', '5150'],
      ['demo.local', '290', '6042'], ['other.local', '201', '1357'],
    ];
    for (const [domain, mailbox, code] of codes) {
      expect(await service.verifyLogin(domain, mailbox, code, ctx), `${domain} ${mailbox}`).toEqual({ result: 'ok', mustChange: false });
    }
    expect(await service.hasAccessCode('demo.local', '203')).toBe(false);
    // Tenants are separate: other.local's code does not open demo.local 201.
    expect(await service.verifyLogin('demo.local', '201', '1357', ctx)).toEqual({ result: 'rejected' });
    const users = await db.query(
      `SELECT d.name AS domain, u.extension, u.display_name, u.role FROM users u JOIN domains d ON d.id = u.domain_id
        ORDER BY d.name, u.extension`);
    expect(users).toEqual([
      { domain: 'demo.local', extension: '201', display_name: 'Alice Example', role: 'office_manager' },
      { domain: 'demo.local', extension: '202', display_name: 'Bob Rogers', role: 'basic' },
      { domain: 'demo.local', extension: '203', display_name: 'Carol New', role: 'basic' },
      { domain: 'demo.local', extension: '204', display_name: 'Dan Advanced', role: 'advanced_user' },
      { domain: 'other.local', extension: '201', display_name: 'Olga Other', role: 'basic' },
    ]);
    const members = await db.query(
      `SELECT u.extension FROM mailbox_members mm JOIN users u ON u.id = mm.user_id
         JOIN mailboxes m ON m.id = mm.mailbox_id WHERE m.number = '290' ORDER BY u.extension`);
    expect(members).toEqual([{ extension: '201' }, { extension: '202' }]);
  });

  it('keeps a code the user changed when the demo is seeded again', async () => {
    expect(await service.changeAccessCode('demo.local', '202', '3865', ctx)).toEqual({ result: 'ok' });
    expect((await seedDemo(db, hasher)).inserted).toBe(0);
    expect(await service.verifyLogin('demo.local', '202', '3865', ctx)).toEqual({ result: 'ok', mustChange: false });
    expect(await service.verifyLogin('demo.local', '202', '7391', ctx)).toEqual({ result: 'rejected' });
  });

  it('finds the domain of a call: the first known name in the order given, any case', async () => {
    const demo = await findDomain(db, ['192.0.2.10', 'DEMO.local', 'other.local']);
    expect(demo).toMatchObject({ name: 'demo.local', accessCodeMinLength: 4, accessCodeMaxLength: 10 });
    expect(typeof demo?.id).toBe('number');
    expect((await findDomain(db, ['other.local', 'demo.local']))?.name).toBe('other.local');
    expect(await findDomain(db, ['unknown.example', ''])).toBeNull();
    expect(await findDomain(db, [])).toBeNull();
    expect(await findDomain(db, ["demo.local' OR '1'='1"])).toBeNull();
  });

  it('finds access numbers, with and without a leading +', async () => {
    const demo = (await findDomain(db, ['demo.local']))!;
    const other = (await findDomain(db, ['other.local']))!;
    expect(await findAccessNumber(db, demo.id, '*97')).toEqual({ kind: 'voicemail' });
    expect(await findAccessNumber(db, demo.id, 'voicemail')).toEqual({ kind: 'voicemail' });
    expect(await findAccessNumber(db, demo.id, '15550100')).toEqual({ kind: 'autoAttendant' });
    expect(await findAccessNumber(db, demo.id, '+15550100')).toEqual({ kind: 'autoAttendant' });
    expect(await findAccessNumber(db, demo.id, '201')).toBeNull();
    expect(await findAccessNumber(db, demo.id, '')).toBeNull();
    expect(await findAccessNumber(db, other.id, '*97')).toEqual({ kind: 'voicemail' });
    expect(await findAccessNumber(db, other.id, '15550100')).toBeNull();
    // Stored with a +, dialled without.
    await db.query(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, '+4930123', 'voicemail')`, [other.id]);
    expect(await findAccessNumber(db, other.id, '4930123')).toEqual({ kind: 'voicemail' });
  });

  it('lists the Auto Attendant options in digit order', async () => {
    const demo = (await findDomain(db, ['demo.local']))!;
    const expected = [
      { digit: '0', action: 'transfer', target: '201' },
      { digit: '9', action: 'voicemailLogin', target: null },
    ];
    expect(await listAutoAttendantOptions(db, demo.id, '15550100')).toEqual(expected);
    expect(await listAutoAttendantOptions(db, demo.id, '+15550100')).toEqual(expected);
    expect(await listAutoAttendantOptions(db, demo.id, '*97')).toEqual([]);
  });

  it('finds mailboxes by number and by owner extension', async () => {
    const demo = (await findDomain(db, ['demo.local']))!;
    const other = (await findDomain(db, ['other.local']))!;
    expect(await findMailbox(db, demo.id, '201')).toMatchObject({
      domainId: demo.id, number: '201', shared: false, displayName: null, ownerExtension: '201',
    });
    expect(await findMailbox(db, demo.id, '290')).toMatchObject({
      number: '290', shared: true, displayName: 'Support', ownerExtension: null,
    });
    expect(await findMailbox(db, demo.id, '299')).toBeNull();
    expect(await findMailboxOwnedBy(db, demo.id, '203')).toMatchObject({ number: '203', ownerExtension: '203' });
    expect((await findMailboxOwnedBy(db, other.id, '201'))?.domainId).toBe(other.id);
    // Shared mailboxes are nobody's own, and a stranger owns nothing.
    expect(await findMailboxOwnedBy(db, demo.id, '290')).toBeNull();
    expect(await findMailboxOwnedBy(db, demo.id, '999')).toBeNull();
  });
});
